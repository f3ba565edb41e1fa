"""The package's shape: formats stay behind their interface, imports follow the data flow."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "assembler"
FORMAT_PACKAGES = ("debian", "alpine")
# Pipeline order (docs/architecture.md). A module may import its own stage, an
# earlier one, or the shared infrastructure; never a later stage.
STAGES = ["spec", "distro", "packages", "lock", "fetch", "slices", "rootfs", "linkcheck",
          "image", "sbom", "push"]
INFRA = {"errors", "progress", "cache", "transport", "options", "untrusted", "__init__"}
TOP = {"build": len(STAGES) - 1, "cli": len(STAGES)}
# Data models every stage may speak: the lock's records, the image tree, the slice
# definitions (read at resolve time, cut at unpack time).
MODELS = {"lock.model", "rootfs.tree", "slices.catalog"}


def _modules() -> list[tuple[Path, str]]:
    return [(p, ".".join(p.relative_to(PACKAGE).with_suffix("").parts))
            for p in sorted(PACKAGE.rglob("*.py"))]


def _rank(module: str) -> int | None:
    head = module.split(".")[0]
    if module in MODELS or head in INFRA or head in FORMAT_PACKAGES or head == "repos":
        return None
    if head in TOP:
        return TOP[head]
    return STAGES.index(head)


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("assembler."):
            out.append((node.lineno, node.module.removeprefix("assembler.")))
    return out


def test_no_family_branches_outside_the_format_packages():
    found = [f"{p.relative_to(PACKAGE)}:{n}" for p, m in _modules()
             if m.split(".")[0] not in FORMAT_PACKAGES
             for n, line in enumerate(p.read_text().splitlines(), 1)
             if "family ==" in line or "family !=" in line]
    assert found == []


def test_generic_code_does_not_import_a_format():
    found = [f"{m}:{n} imports {imp}" for p, m in _modules()
             if m.split(".")[0] not in FORMAT_PACKAGES
             for n, imp in _imports(p) if imp.split(".")[0] in FORMAT_PACKAGES]
    assert found == []


def test_imports_follow_the_pipeline():
    backwards = []
    for path, module in _modules():
        rank = _rank(module)
        if rank is None:
            continue
        for line, imp in _imports(path):
            other = _rank(imp)
            if other is not None and other > rank:
                backwards.append(f"{module}:{line} imports {imp}")
    assert backwards == []


def test_every_stage_is_a_package():
    for stage in STAGES:
        assert (PACKAGE / stage / "__init__.py").is_file(), stage

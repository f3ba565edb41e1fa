"""Helpers for tests that run `assemble` against the served test archive."""

from __future__ import annotations

from pathlib import Path

from assembler.cli import main


def write_distro(tmp: Path, key_path: Path, suites: list[str], name: str = "test",
                 merged_usr: bool = False, slices: Path | None = None) -> Path:
    d = tmp / "testdistro.yaml"
    d.write_text(
        "family: debian\nrelease: test\n"
        f"merged-usr: {'true' if merged_usr else 'false'}\n"
        + (f"slices: {slices}\n" if slices else "") +
        "archives:\n"
        f"  - name: {name}\n"
        f"    suites: [{', '.join(suites)}]\n"
        "    components: [main]\n"
        "    available-components: [main, contrib]\n"
        f"    keys: [{key_path}]\n")
    return d


def write_spec(tmp: Path, body: str, name: str = "image.yaml") -> Path:
    p = tmp / name
    p.write_text(body)
    return p


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def cache_files(cache: Path) -> list[str]:
    if not cache.exists():
        return []
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def write_bookworm_like(tmp: Path, key_path: Path, name: str = "test") -> Path:
    """A definition with bookworm's identity (os-release template) over a local archive
    whose suite is `bookworm`: images get what real bookworm images get."""
    import yaml

    from assembler.distro.definition import REPOS_DIR

    real = yaml.safe_load((REPOS_DIR / "debian" / "bookworm.yaml").read_text())
    d = tmp / "bookworm-local.yaml"
    d.write_text(yaml.safe_dump({
        "family": "debian", "release": "bookworm", "version": real["version"],
        "os-release": real["os-release"],
        "archives": [{"name": name, "suites": ["bookworm"], "components": ["main"],
                      "keys": [str(key_path)]}]}))
    return d


def image_file(tar: Path, path: str) -> bytes | str:
    """A path's bytes (or a symlink's target) in the first image of an image tar."""
    import json
    import tarfile

    with tarfile.open(tar) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        with tarfile.open(fileobj=outer.extractfile(manifest["Layers"][0])) as inner:
            m = inner.getmember(path)
            return m.linkname if m.issym() else inner.extractfile(m).read()

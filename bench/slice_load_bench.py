"""Time to load and check a chisel-releases-sized slice catalog (issue 17: <= 1 s).

With no argument a catalog shaped like a chisel-releases branch is generated in a
temporary directory: 700 packages, about 2,200 slices and 7,200 paths of which 4,000
are globs (library globs through `*-linux-*`, `**` trees, module globs with a wildcard
early in the path), essentials chains, text/symlink/make paths, arch lists, a prefer
chain, `generate: manifest` and mutate scripts, in format v3. Give the `slices/`
directory of a chisel-releases checkout (a branch exported with `git archive`) to time
a real release instead. Prints the best of five runs of the whole load with every
static check, and the lazy read of a ten-slice selection; exits 1 over the budget.

Run: .venv/bin/python bench/slice_load_bench.py [CHISEL_RELEASES/slices]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assembler.slices.catalog import Catalog  # noqa: E402

BUDGET = 1.0
PACKAGES = 700
KEY = """\
format: v3
archives:
  ubuntu: {version: "26.04", suites: [resolute], components: [main], priority: 10,
           public-keys: [none]}
public-keys: {}
"""


def _package(i: int) -> str:
    name = f"lib{'abcdefghij'[i % 10]}pkg{i}"
    up = i // 8   # essentials form a shallow tree, as libraries do
    dep = f"lib{'abcdefghij'[up % 10]}pkg{up}_libs" if i else "base-files_base"
    out = [f"package: {name}", "", "essential:", f"  {name}_copyright:", "", "slices:"]
    out += ["  libs:", "    essential:", f"      {dep}:", "    contents:",
            f"      /usr/lib/*-linux-*/{name}.so.*:",
            f"      /usr/lib/*-linux-*/{name}/plugins/*.so:",
            f"      /usr/lib/*-linux-*/{name}-private-{i % 4}.so.*:",
            f"      /usr/share/{name}/locale/*/LC_MESSAGES/{name}.mo:",
            f"      /usr/lib/*-linux-*/{name}/modules.conf:"]
    if i % 2 == 0:
        config = [f"      {name}_config: {{arch: [amd64, arm64]}}"] if i % 4 == 0 else []
        out += ["  bins:", "    hint: Command line tools", "    essential:",
                f"      {name}_libs:", *config, "    contents:", f"      /usr/bin/{name}-tool:",
                f"      /usr/bin/{name}-alias: {{symlink: {name}-tool}}",
                f"      /usr/sbin/{name}d:", f"      /usr/share/man/man1/{name}-tool.1.gz:",
                f"      /usr/libexec/{name}/helper: {{arch: [amd64, arm64, s390x]}}"]
    if i % 4 == 0:
        out += ["  config:", "    contents:",
                f"      /etc/{name}/{name}.conf: {{text: \"x=1\\n\", mode: 0644}}",
                f"      /etc/{name}/conf.d/: {{make: true}}",
                f"      /etc/{name}/state: {{text: FIXME, mutable: true}}"]
    if i % 5 == 0:
        out += ["  data:", "    contents:", f"      /usr/share/{name}/**:",
                f"      /usr/lib/*-linux-*/perl5/5.40/{name.title()}/**.pm:",
                f"      /usr/lib/python3/dist-packages/{name}/**/*.py:"]
    if i % 7 == 0:
        out += ["  scripts:", "    contents:",
                f"      /usr/share/{name}-scripts/defaults: {{until: mutate}}",
                f"      /etc/{name}-scripts.conf: {{text: FIXME, mutable: true}}",
                "    mutate: |",
                f"      content.write(\"/etc/{name}-scripts.conf\", \"ok\")"]
    if i % 11 == 0:
        out += ["  headers:", "    contents:", f"      /usr/include/{name}/*.h:",
                f"      /usr/include/*-linux-*/{name}/config.h:"]
    out += ["  copyright:", "    contents:", f"      /usr/share/doc/{name}/copyright:", ""]
    return "\n".join(out)


BASE = """\
package: base-files
slices:
  base:
    contents:
      /etc/os-release:
      /tmp/: {make: true, mode: 01777}
      /usr/bin/which: {prefer: debianutils}
  chisel:
    contents:
      /var/lib/chisel/**: {generate: manifest}
  copyright:
    contents:
      /usr/share/doc/base-files/copyright:
"""
DEBIANUTILS = """\
package: debianutils
slices:
  bins:
    contents:
      /usr/bin/which: {prefer: busybox}
"""
BUSYBOX = """\
package: busybox
slices:
  bins:
    contents:
      /usr/bin/which:
      /usr/bin/busybox:
"""


def generate(root: Path) -> Path:
    """A chisel-releases-shaped checkout; its chisel.yaml has no key (the catalog does not
    read archives), so the catalog below is opened on slices/ with the v3 format."""
    slices = root / "slices"
    slices.mkdir(parents=True)
    for i in range(PACKAGES - 3):
        (slices / f"lib{'abcdefghij'[i % 10]}pkg{i}.yaml").write_text(_package(i))
    for name, text in (("base-files", BASE), ("debianutils", DEBIANUTILS),
                       ("busybox", BUSYBOX)):
        (slices / f"{name}.yaml").write_text(text)
    return slices


def _open(slices: Path) -> Catalog:
    if (slices.parent / "chisel.yaml").is_file():
        return Catalog.open(slices)
    from assembler.slices.catalog import _index

    return Catalog(None, _index((slices,)), "v3", None)


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        slices = Path(argv[0]) if argv else generate(Path(tmp))
        full = []
        for _ in range(5):
            t = time.perf_counter()
            cat = _open(slices)
            cat.read_all()
            cat.check()
            full.append(time.perf_counter() - t)
        paths = [p for ss in cat.packages.values() for s in ss for p in s.contents.values()]
        globs = sum(1 for p in paths if "*" in p.path or "?" in p.path)
        chosen = sorted(cat.slices)[:: max(1, len(cat.slices) // 10)][:10]
        chosen = [n for n in chosen if not cat.slices[n].mutate][:10]
        lazy = []
        for _ in range(5):
            t = time.perf_counter()
            small = _open(slices)
            small.closure(chosen, "amd64")
            lazy.append(time.perf_counter() - t)
        print(f"{slices}: {len(cat.packages)} packages, {len(cat.slices)} slices, "
              f"{len(paths)} paths ({globs} globs), format {cat.format}")
        print(f"load and check the whole release: {min(full):.3f} s (best of 5; "
              f"worst {max(full):.3f} s; budget {BUDGET} s)")
        print(f"ten slices and their essentials: {min(lazy):.3f} s, "
              f"{len(small.packages)} of {len(small.files)} files read")
        return 0 if min(full) <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

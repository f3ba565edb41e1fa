"""What the link check costs inside a build: python3 and python3 + include-essential.

Builds each image's tree the way `assemble build` does (lock, fetch, unpack:
warm cache after the first run), then times `linkcheck.scan_tree` on it: the
first run (as in a build) and the best of five. Uses the host's apt sources mirror.
Run: .venv/bin/python bench/linkcheck_bench.py [SPEC ...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assembler.cache import Cache  # noqa: E402
from assembler.debian.install import build_tree  # noqa: E402
from assembler.distro.mirror import resolve_mirrors  # noqa: E402
from assembler.fetch.packagefiles import Wanted, fetch_all  # noqa: E402
from assembler.linkcheck.check import scan_tree  # noqa: E402
from assembler.lock.lockfile import load_or_lock  # noqa: E402
from assembler.options import Options  # noqa: E402
from assembler.packages.universes import distro_for  # noqa: E402
from assembler.progress import Progress  # noqa: E402
from assembler.spec.document import load_spec  # noqa: E402


def measure(spec_path: Path, options: Options) -> None:
    spec = load_spec(spec_path)
    lock, _ = load_or_lock(spec, options)
    distro = distro_for(spec)
    mirrors = resolve_mirrors(distro.archives, options.mirrors, spec.mirrors, str(spec.path))
    arch = spec.archs[0]
    packages = lock.archs[arch].packages
    progress = Progress(True)
    files = fetch_all([Wanted(p.name, mirrors[p.archive], p.filename, p.sha256, p.size)
                       for p in packages], options.cache, False, progress)
    tree, _ = build_tree(spec, packages, files, distro.merged_usr, options.cache, progress)
    with tree:
        regular = [e for e in tree.entries() if e.kind in ("file", "hardlink")]
        size = sum(e.size for e in regular)
        times = []
        for _ in range(6):
            t = time.perf_counter()
            report = scan_tree(tree)
            times.append(time.perf_counter() - t)
    print(f"{spec_path.stem}: {len(packages)} packages, {len(regular)} files, {size / 1e6:.0f} MB;"
          f" {report.checked} ELF files checked, {len(report.missing)} missing, "
          f"{len(report.unreadable)} unreadable; first {times[0] * 1000:.0f} ms, "
          f"best of 5 {min(times[1:]) * 1000:.0f} ms")
    for m in report.missing[:20]:
        print(f"  missing: {m}")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="assembler-linkcheck-bench-"))
    specs = [Path(a) for a in sys.argv[1:]]
    if not specs:
        base = (ROOT / "specs" / "python3.yaml").read_text()
        specs = [work / "python3.yaml", work / "python3-essential.yaml"]
        specs[0].write_text(base)
        specs[1].write_text(base.replace("contents:\n", "contents:\n  include-essential: true\n"))
    options = Options(cache=Cache(None), quiet=True)
    for spec in specs:
        measure(spec, options)


if __name__ == "__main__":
    main()

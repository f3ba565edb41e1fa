"""python3 startup as uid 65532: the image as built (stdlib bytecode included) against
the same root file system without bytecode and with bytecode compiled in the image
(`python3 -m compileall`, as a post-install step would), each in a chroot with /proc.

The build's bytecode must start within 1.3x of the compiled reference; exit code 1
if it does not. Needs root (chroot, mount). Run:
    .venv/bin/python bench/python_startup.py [--release bookworm|trixie] [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = "import json, ssl, sqlite3, urllib.request"
LIMIT = 1.3
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"


def build(release: str, tmp: Path, cache: Path) -> Path:
    shutil.copy(ROOT / "specs" / release / "python3-nonroot.yaml", tmp / "image.yaml")
    subprocess.run([sys.executable, "-m", "assembler.cli", "build", str(tmp / "image.yaml"),
                    "-q", "--compression", "none", "--cache-dir", str(cache)], check=True,
                   stdout=subprocess.DEVNULL)
    rootfs = tmp / "rootfs"
    rootfs.mkdir()
    with tarfile.open(tmp / "image.tar") as t:
        layer = json.load(t.extractfile("manifest.json"))[0]["Layers"][0]
        t.extract(layer, tmp, filter="data")
    subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-xpf", str(tmp / layer)],
                   check=True)
    return rootfs


def chroot(rootfs: Path, *argv: str, user: str = "65532:65532") -> float:
    start = time.perf_counter()
    subprocess.run([CHROOT, f"--userspec={user}", str(rootfs), *argv], check=True,
                   env={"PATH": "/usr/bin:/bin", "HOME": "/home/nonroot", "LANG": "C.UTF-8"})
    return time.perf_counter() - start


def startup(rootfs: Path, runs: int) -> float:
    """Median wall time of the import set, after one warm-up run (page cache)."""
    chroot(rootfs, "/usr/bin/python3", "-c", IMPORTS)
    return statistics.median(chroot(rootfs, "/usr/bin/python3", "-c", IMPORTS)
                             for _ in range(runs))


def pycs(rootfs: Path) -> list[Path]:
    return list(rootfs.glob("usr/lib/python3*/**/__pycache__/*.pyc"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--release", default="bookworm", choices=["bookworm", "trixie"])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "assembler")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        rootfs = build(args.release, Path(d), args.cache_dir)
        (rootfs / "proc").mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "proc", "proc", str(rootfs / "proc")], check=True)
        try:
            # The build's files are measured last, when the first runs have warmed the
            # machine: on a loaded machine the first series is the slowest.
            ours = {f: f.read_bytes() for f in pycs(rootfs)}
            shipped = len(ours)
            for f in ours:
                f.unlink()
            none = startup(rootfs, args.runs)   # uid 65532 cannot write __pycache__
            chroot(rootfs, "/usr/bin/python3", "-m", "compileall", "-q",
                   "--invalidation-mode", "unchecked-hash", "/usr/lib", user="0:0")
            reference = startup(rootfs, args.runs)
            for f in pycs(rootfs):
                f.unlink()
            for f, data in ours.items():
                f.write_bytes(data)
            built = startup(rootfs, args.runs)
        finally:
            subprocess.run(["umount", "-l", str(rootfs / "proc")], check=True)
    ratio = built / reference
    print(f"python3 ({args.release}) `{IMPORTS}` as uid 65532, median of {args.runs}:")
    print(f"  as built ({shipped} .pyc):        {built * 1000:7.1f} ms")
    print(f"  without bytecode:              {none * 1000:7.1f} ms")
    print(f"  compileall in the image:       {reference * 1000:7.1f} ms")
    print(f"  as built / compiled: {ratio:.2f}x (limit {LIMIT}x)")
    return 0 if ratio <= LIMIT and shipped else 1


if __name__ == "__main__":
    sys.exit(main())

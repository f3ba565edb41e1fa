"""Inner-loop costs, as processes: start-up, unchanged rebuild, one package added, a large
image, and a family of specs in one invocation vs one process each. One run, ratios printed.

Each figure is the median of several runs, wall and CPU (user + system of the process
tree, from wait4), since the build machine is shared and wall time alone says more
about the neighbours than about us. Needs the host's mirror (the first build fills
the cache) unless --cache-dir points at a filled one.
A cold build of the large image is not repeated here (it downloads 261 MB); time it
with `assemble build bench/specs/libreoffice.yaml --cache-dir EMPTY_DIR`.
Run: .venv/bin/python bench/rebuild_bench.py [--cache-dir DIR] [--runs N] [--large]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).with_name("assemble"))
LARGE = ROOT / "bench" / "specs" / "libreoffice.yaml"


# As a user runs it: an installed package has its bytecode (pip compiles it), so a
# PYTHONDONTWRITEBYTECODE in the bench's environment would time recompiling the tool
# from source on every run of an editable install (~0.1 s).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one process tree."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def median(n: int, cmd: list[str], before=None) -> tuple[float, float, int]:
    runs = []
    for _ in range(n):
        if before:
            before()
        runs.append(timed(cmd))
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
            max(r[2] for r in runs))


def forget_results(cache: Path) -> None:
    """Drop the cached layers' records (not the .debs): the next build writes its layers."""
    for kind in ("images", "layers"):
        shutil.rmtree(cache / kind, ignore_errors=True)


def packages_in(lock: Path) -> int:
    import json

    return sum(len(a["packages"]) for a in json.loads(lock.read_text())["archs"].values())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache-dir", help="a cache to reuse (default: a fresh one, filled first)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--large", action="store_true", help="also the 300-package image")
    ap.add_argument("--family", default=str(ROOT / "specs" / "bookworm"),
                    help="a directory of specs with their locks (default: specs/bookworm)")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="assembler-rebuild-bench-"))
    cache = Path(a.cache_dir) if a.cache_dir else work / "cache"
    c = ["--cache-dir", str(cache), "-q"]
    rows: list[tuple[str, float, float, int, str]] = []

    def row(name: str, r: tuple[float, float, int], target: str = "") -> tuple[float, float, int]:
        rows.append((name, *r, target))
        return r

    row("python3 -c pass (interpreter floor)", median(a.runs, [sys.executable, "-c", "pass"]))
    row("assemble --version", median(a.runs, [EXE, "--version"]), "<= 0.1 s")
    row("assemble --help", median(a.runs, [EXE, "--help"]), "<= 0.1 s")

    for name in ("python3",):
        for suffix in (".yaml", ".lock.json"):
            shutil.copy(ROOT / "specs" / (name + suffix), work / (name + suffix))
    py = work / "python3.yaml"
    timed([EXE, "build", str(py), "-o", str(work / "py.tar"), "--locked", *c])   # fill
    row("python3, unchanged rebuild", median(a.runs, [EXE, "build", str(py), "-o",
                                                      str(work / "py.tar"), "--locked", *c]),
        "<= 0.3 s")
    w_tree = row("python3, images rewritten (tree re-tarred, blocks reused)",
                 median(a.runs, [EXE, "build", str(py), "-o", str(work / "py.tar"), "--locked",
                                 *c], before=lambda: forget_results(cache)))

    plus = work / "python3plus.yaml"
    plus.write_text(py.read_text().replace("    - ca-certificates\n",
                                           "    - ca-certificates\n    - netbase\n"))
    timed([EXE, "lock", str(plus), *c])
    timed([EXE, "build", str(plus), "-o", str(work / "plus.tar"), *c])   # fetch netbase once

    def changed() -> None:
        # As if netbase had just been added: python3's results cached, python3plus's not.
        forget_results(cache)
        timed([EXE, "build", str(py), "-o", str(work / "py.tar"), "--locked", *c])

    row("python3 + netbase, warm (one package added)",
        median(a.runs, [EXE, "build", str(plus), "-o", str(work / "plus.tar"), "--locked", *c],
               before=changed), "<= 1 s")

    # The family: every spec of one release (default specs/bookworm/, as distroless
    # publishes it), warm cache, as one process per spec and as one invocation.
    fam_dir = work / "family"
    fam_dir.mkdir()
    for f in sorted(Path(a.family).glob("*.yaml")):
        shutil.copy(f, fam_dir / f.name)
        shutil.copy(f.with_suffix(".lock.json"), fam_dir / f.with_suffix(".lock.json").name)
    family = sorted(fam_dir.glob("*.yaml"))
    out = work / "fam"
    timed([EXE, "build", str(fam_dir), "-o", str(out), "--locked", *c])   # fill

    def each(before=None) -> tuple[float, float, int]:
        runs = []
        for s in family:
            if before:
                before()
            runs.append(timed([EXE, "build", str(s), "-o", str(out / (s.stem + ".tar")),
                               "--locked", *c]))
        return sum(r[0] for r in runs), sum(r[1] for r in runs), max(r[2] for r in runs)

    together_cmd = [EXE, "build", str(fam_dir), "-o", str(out), "--locked", *c]
    family_rows = []
    for label, before in (("unchanged", None),
                          ("images rewritten", lambda: forget_results(cache))):
        runs = max(1, a.runs // 2)
        # Forgetting before each spec's process costs it what the one invocation pays once
        # per spec: its own images' layers.
        per = [each(before) for _ in range(runs)]
        one_each = (statistics.median(r[0] for r in per), statistics.median(r[1] for r in per),
                    max(r[2] for r in per))
        row(f"family ({len(family)} specs, {label}), one process per spec", one_each)
        together = row(f"family ({len(family)} specs, {label}), one invocation",
                       median(runs, together_cmd, before=before))
        family_rows.append((label, one_each, together))

    large_rows = []
    if a.large:
        big = work / "libreoffice.yaml"
        shutil.copy(LARGE, big)
        timed([EXE, "lock", str(big), *c])
        n = packages_in(work / "libreoffice.lock.json")
        timed([EXE, "build", str(big), "-o", str(work / "big.tar"), *c])   # fetch if new
        lw = row(f"large ({n} packages), images rewritten",
                 median(3, [EXE, "build", str(big), "-o", str(work / "big.tar"), *c],
                        before=lambda: forget_results(cache)), "RSS <= 300 MB")
        row(f"large ({n} packages), unchanged rebuild",
            median(3, [EXE, "build", str(big), "-o", str(work / "big.tar"), *c]))
        npy = packages_in(work / "python3.lock.json")
        large_rows = [(n, lw, npy)]

    print(f"{'what':56} {'wall s':>7} {'CPU s':>7} {'RSS MB':>7}  target")
    for name, wall, cpu, rss, target in rows:
        print(f"{name:56} {wall:7.2f} {cpu:7.2f} {rss:7d}  {target}")
    for label, one_each, together in family_rows:
        print(f"ratio family ({label}) one-process-each / one invocation: wall "
              f"{one_each[0] / together[0]:.2f}x, CPU {one_each[1] / together[1]:.2f}x")
    for n, lw, npy in large_rows:
        per100 = lw[1] / n * 100
        py100 = w_tree[1] / npy * 100
        print(f"warm CPU per 100 packages (images rewritten): large {per100:.2f} s, python3 "
              f"{py100:.2f} s ({npy} packages); ratio {per100 / py100:.2f}")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

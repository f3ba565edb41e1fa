"""python3 image: assemble cold / warm, and include-essential vs mmdebstrap, in one run.

The apples-to-apples pair: `include-essential: true` + python3 (assemble)
against `mmdebstrap --variant=essential --include=python3` writing a tar, both
from the mirror in the host's apt sources, each cold (nothing cached) and warm
(assemble's cache filled; mmdebstrap's .debs synced in as its manual shows).
Prints wall time, ratios, image size (compressed and not) and peak RSS.
Run: .venv/bin/python bench/build_bench.py
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assembler.distro.definition import load_distro  # noqa: E402
from assembler.distro.mirror import resolve_mirrors  # noqa: E402

# As a user runs it: an installed package has its bytecode (pip compiles it at install);
# PYTHONDONTWRITEBYTECODE would time compiling an editable checkout on every run.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (MB) of one command (its own process tree's max)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env or ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss // 1024


def best_of(n: int, cmd: list[str]) -> tuple[float, int]:
    """Warm runs repeat identically: the fastest of n is the least disturbed by the machine."""
    runs = [timed(cmd) for _ in range(n)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def layer_sizes(tar: Path) -> tuple[int, int]:
    import json
    import tarfile

    with tarfile.open(tar) as t:
        m = json.load(t.extractfile("manifest.json"))[0]
        comp = t.getmember(m["Layers"][0]).size
        with gzip.open(t.extractfile(m["Layers"][0])) as g:
            raw = sum(len(c) for c in iter(lambda: g.read(1 << 20), b""))
    return comp, raw


def _package_sets(lock: Path, mm_tar: Path) -> str:
    """'identical (N)' or what differs: the ratio means something only for the same work."""
    import json
    import tarfile

    doc = json.loads(lock.read_text())
    ours = {p["name"] for a in doc["archs"].values() for p in a["packages"]}
    with tarfile.open(mm_tar) as t:
        status = t.extractfile("./var/lib/dpkg/status").read().decode()  # type: ignore[union-attr]
    theirs = {line.split(":", 1)[1].strip() for line in status.splitlines()
              if line.startswith("Package:")}
    if ours == theirs:
        return f"identical ({len(ours)} packages)"
    return (f"DIFFERENT: only assemble {sorted(ours - theirs)}, "
            f"only mmdebstrap {sorted(theirs - ours)}")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="assembler-build-bench-"))
    exe = str(Path(sys.executable).with_name("assemble"))
    spec = work / "python3.yaml"
    shutil.copy(ROOT / "specs" / "python3.yaml", spec)
    ess = work / "python3-essential.yaml"
    # The same package set as mmdebstrap's: Essential, python3 and what it depends on
    # (python3.yaml's ca-certificates would add it and openssl to our side only).
    text = (ROOT / "specs" / "python3.yaml").read_text()
    assert "    - ca-certificates\n" in text
    ess.write_text(text.replace("contents:\n", "contents:\n  include-essential: true\n")
                   .replace("    - ca-certificates\n", ""))
    rows = []
    cache = work / "cache"
    # Untimed: the host's mirror may be a caching proxy, and whichever run came first
    # would pay for filling it. Every timed run below then downloads from a warm mirror.
    timed([exe, "build", str(ess), "-q", "-o", str(work / "prime.tar"), "--cache-dir",
           str(work / "cache-prime")])
    shutil.rmtree(work / "cache-prime")
    t, rss = timed([exe, "build", str(spec), "-q", "-o", str(work / "cold.tar"),
                    "--cache-dir", str(cache)])
    rows.append(("assemble python3, cold cache", t, rss, *layer_sizes(work / "cold.tar")))
    t, rss = best_of(3, [exe, "build", str(spec), "-q", "-o", str(work / "warm.tar"),
                         "--cache-dir", str(cache)])
    rows.append(("assemble python3, warm (unchanged rebuild)", t, rss,
                 *layer_sizes(work / "warm.tar")))
    t_ess, rss = timed([exe, "build", str(ess), "-q", "-o", str(work / "ess.tar"),
                        "--cache-dir", str(work / "cache-ess")])
    rows.append(("assemble include-essential, cold", t_ess, rss,
                 *layer_sizes(work / "ess.tar")))
    t_essw, rss = best_of(3, [exe, "build", str(ess), "-q", "-o", str(work / "ess2.tar"),
                              "--cache-dir", str(work / "cache-ess")])
    rows.append(("assemble include-essential, warm (unchanged)", t_essw, rss,
                 *layer_sizes(work / "ess2.tar")))

    # mmdebstrap writes an uncompressed tar: the same kind of output is an image whose
    # layer is not compressed either.
    t_essn, rss = timed([exe, "build", str(ess), "-q", "-o", str(work / "essn.tar"),
                         "--compression", "none", "--cache-dir", str(work / "cache-essn")])
    rows.append(("assemble include-essential, cold, tar layer", t_essn, rss, 0, 0))
    mirrors = resolve_mirrors(load_distro("debian/bookworm").archives, {}, {})
    sources = [f"deb {mirrors['debian']} bookworm main",
               f"deb {mirrors['debian']} bookworm-updates main",
               f"deb {mirrors['debian-security']} bookworm-security main"]
    mm = ["mmdebstrap", "--quiet", "--variant=essential", "--include=python3",
          "--architectures=amd64", "--components=main"]
    mm_tar = work / "mmdebstrap.tar"
    t_mm, rss = timed([*mm, "bookworm", str(mm_tar), *sources])
    raw = mm_tar.stat().st_size
    same_set = _package_sets(work / "python3-essential.lock.json", mm_tar)
    comp = len(gzip.compress(mm_tar.read_bytes(), 6))
    rows.append(("mmdebstrap --variant=essential python3, cold", t_mm, rss, comp, raw))
    # mmdebstrap keeps no cache of its own; its manual's recipe for one is to
    # sync /var/cache/apt/archives in and out. Prime it once (untimed), then time
    # a run that finds every .deb already there: the warm peer of a warm assemble.
    debs = work / "mmdebstrap-debs"
    debs.mkdir()
    cache_hooks = ["--skip=essential/unlink",
                   '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/']
    timed([*mm, *cache_hooks, f"--customize-hook=sync-out /var/cache/apt/archives {debs}",
           "bookworm", str(work / "prime.tar"), *sources])
    t_mmw, rss = timed([*mm, *cache_hooks, f"--setup-hook=sync-in {debs} /var/cache/apt/archives/",
                        "bookworm", str(mm_tar), *sources])
    rows.append(("mmdebstrap --variant=essential python3, warm", t_mmw, rss, comp,
                 mm_tar.stat().st_size))

    print(f"{'what':46} {'wall s':>7} {'RSS MB':>7} {'gz MB':>7} {'raw MB':>7}")
    for name, t, rss, comp, raw in rows:
        print(f"{name:46} {t:7.2f} {rss:7d} {comp / 1e6:7.1f} {raw / 1e6:7.1f}")
    print(f"package sets (assemble's lock / mmdebstrap's dpkg status): {same_set}")
    print(f"ratio mmdebstrap / assemble, include-essential, both cold: {t_mm / t_ess:.1f}x")
    print(f"ratio mmdebstrap / assemble, include-essential, both cold, both an "
          f"uncompressed tar: {t_mm / t_essn:.1f}x")
    print(f"ratio mmdebstrap / assemble, include-essential, both warm: {t_mmw / t_essw:.1f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

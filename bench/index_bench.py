"""Index, resolve and lock timings on real bookworm main amd64, beside apt as a peer.

Prints: cold index load (download shown apart from verify + parse), warm load
from cache, resolve time for python3, `assemble lock` end to end warm, and
apt-get --simulate on the same request with warm lists, with ratios.
Run: .venv/bin/python bench/index_bench.py   (or `make bench`)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from assembler.cache import Cache  # noqa: E402
from assembler.debian.resolver import AptResolver as Resolver  # noqa: E402
from assembler.options import Options  # noqa: E402
from assembler.packages.resolution import Want  # noqa: E402
from assembler.packages.universes import Universes  # noqa: E402
from assembler.spec.document import load_spec  # noqa: E402

TARGETS = {"warm load": 0.3, "resolve python3": 0.1, "assemble lock warm": 1.0,
           "cold verify+parse": 4.0}


def best(fn, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="assembler-bench-"))
    spec_path = work / "image.yaml"
    spec_path.write_text("distro: debian/bookworm\narchs: [amd64]\n"
                         "contents:\n  packages: [python3]\n")
    spec = load_spec(spec_path)
    cache = Cache(work / "cache")

    t = time.perf_counter()
    cold = Universes(spec, Options(cache=cache, quiet=True))
    u = cold.universe("amd64")
    cold_total = time.perf_counter() - t
    ct = cold.timings
    print(f"packages in universe: {len(u)} (bookworm + updates + security, main, amd64)")

    def warm_load() -> None:
        Universes(spec, Options(cache=cache, quiet=True)).universe("amd64")

    warm = best(warm_load)
    warm_a = Universes(spec, Options(cache=cache, quiet=True))
    warm_a.universe("amd64")
    wt = warm_a.timings

    def resolve() -> None:
        Resolver(u, [Want("python3")]).resolve()

    # The first resolve of a fresh universe builds Package objects: time that, not a rerun.
    def fresh_resolve() -> float:
        uni = Universes(spec, Options(cache=cache, quiet=True)).universe("amd64")
        t0 = time.perf_counter()
        Resolver(uni, [Want("python3")]).resolve()
        return time.perf_counter() - t0

    res = min(fresh_resolve() for _ in range(3))

    exe = str(Path(sys.executable).with_name("assemble"))
    lock_cmd = [exe, "lock", str(spec_path), "--update", "-q", "--cache-dir", str(cache.root)]
    subprocess.run(lock_cmd, check=True)
    lock = best(lambda: subprocess.run(lock_cmd, check=True), 5)

    apt = None
    try:
        from aptsim import apt_simulate, real_apt_root

        root = real_apt_root()
        apt_simulate(["python3"])
        apt = best(lambda: root.simulate(["python3"]), 5)
    except Exception as e:  # the peer is optional: report, do not fail the bench
        print(f"(apt peer unavailable: {e})")

    rows = [
        ("cold: download", ct.download, None),
        ("cold verify+parse", ct.verify + ct.parse, TARGETS["cold verify+parse"]),
        ("cold total", cold_total, None),
        ("warm load", warm, TARGETS["warm load"]),
        ("  of which cache read", wt.load, None),
        ("resolve python3", res, TARGETS["resolve python3"]),
        ("assemble lock warm", lock, TARGETS["assemble lock warm"]),
    ]
    if apt is not None:
        rows.append(("apt-get -s install python3 (peer)", apt, None))
    print(f"{'step':38} {'seconds':>8} {'target':>8}")
    for name, secs, target in rows:
        tgt = f"<= {target}" if target else ""
        flag = "" if target is None or secs <= target else "  MISSED"
        print(f"{name:38} {secs:8.3f} {tgt:>8}{flag}")
    if apt is not None:
        print(f"ratio apt-get -s / assemble lock (warm): {apt / lock:.2f}x")
    print(f"best of 5 where repeated; python {sys.version.split()[0]}; cache {cache.root}")


if __name__ == "__main__":
    main()

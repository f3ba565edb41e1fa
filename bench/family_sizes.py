"""The distroless family's sizes and build times, from the real archive.

For each specs/<release>/<flavour>.yaml: compressed layer size, uncompressed size,
a cold build (empty cache: indexes and packages downloaded) and a warm one (the
same cache, the lock kept), and the -debug variant's compressed size; beside the
compressed sizes commonly quoted for gcr.io/distroless (approximate: no registry is
reachable from the build machine, so they are not measured here). Prints a
Markdown table (docs/slices.md, "The distroless family").
Run: .venv/bin/python bench/family_sizes.py [--release bookworm] [--flavour java]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAVOURS = ("static", "base-nossl", "base", "cc", "python3", "java", "nodejs")
# gcr.io/distroless/<name>-debian12, compressed MB, approximate public figures
# (java21 and nodejs20: the newest debian12 tags); none found for base-nossl and cc.
DISTROLESS_MB: dict[str, float | None] = {"static": 2.0, "base-nossl": None, "base": 20.0,
                                          "cc": None, "python3": 50.0, "java": 220.0,
                                          "nodejs": 55.0}


def layer_sizes(tar: Path) -> tuple[int, int]:
    with tarfile.open(tar) as t:
        manifest = json.load(t.extractfile("manifest.json"))[0]
        member = t.getmember(manifest["Layers"][0])
        with gzip.open(t.extractfile(member)) as g:
            raw = sum(len(c) for c in iter(lambda: g.read(1 << 20), b""))
    return member.size, raw


def build(spec: Path, cache: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "assembler.cli", "build", str(spec), "-q",
                    "-o", str(spec.with_suffix(".tar")), "--cache-dir", str(cache)],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(release: str, flavour: str, tmp: Path) -> dict:
    d = tmp / f"{release}-{flavour}"
    d.mkdir()
    cache = d / "cache"
    shutil.copy(ROOT / "specs" / release / f"{flavour}.yaml", d / "image.yaml")
    cold = build(d / "image.yaml", cache)
    (d / "image.tar").unlink()
    warm = build(d / "image.yaml", cache)
    gz, raw = layer_sizes(d / "image.tar")
    shutil.copy(ROOT / "specs" / release / f"{flavour}-debug.yaml", d / "debug.yaml")
    build(d / "debug.yaml", cache)
    debug_gz, _ = layer_sizes(d / "debug.tar")
    shutil.rmtree(cache)
    return {"gz": gz, "raw": raw, "cold": cold, "warm": warm, "debug_gz": debug_gz}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--release", action="append", choices=["bookworm", "trixie"])
    ap.add_argument("--flavour", action="append", choices=FLAVOURS)
    args = ap.parse_args()
    mb = 1024 * 1024
    print("| image | release | gz MiB | raw MiB | :debug gz MiB | cold s | warm s "
          "| distroless gz MB (debian12, approx.) |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as t:
        for release in args.release or ["bookworm", "trixie"]:
            for flavour in args.flavour or FLAVOURS:
                m = measure(release, flavour, Path(t))
                ref = DISTROLESS_MB[flavour]
                quoted = f"~{ref:g}" if ref else "n/a"
                print(f"| {flavour} | {release} | {m['gz'] / mb:.1f} | {m['raw'] / mb:.1f} | "
                      f"{m['debug_gz'] / mb:.1f} | {m['cold']:.1f} | {m['warm']:.1f} | "
                      f"{quoted} |", flush=True)


if __name__ == "__main__":
    main()

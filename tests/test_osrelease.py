"""Every image names its OS: os-release and the version file are generated from the
distro definition and the signed Release when the base package is not in the image,
and the package's own files win when it is (issue 12, Build 1)."""

from __future__ import annotations

import json

import pytest
from aptrepo import Pkg
from hermetic import image_file, run, write_bookworm_like, write_spec

pytestmark = pytest.mark.integration

# What base-files 12.4+deb12u15 ships as /usr/lib/os-release (checked byte for byte
# against the real package by tests/test_scanners_network.py).
BOOKWORM_OS_RELEASE = (
    b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
    b'VERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
    b'HOME_URL="https://www.debian.org/"\nSUPPORT_URL="https://www.debian.org/support"\n'
    b'BUG_REPORT_URL="https://bugs.debian.org/"\n')


def _build(tmp_path, apt_repo, apt_key, capsys, pkgs, request, version="12.15"):
    repo = apt_repo({"bookworm": pkgs}, release_fields={"bookworm": {"Version": version}})
    distro = write_bookworm_like(tmp_path, apt_key.public_path)
    spec = write_spec(tmp_path, f"distro: {distro}\narchs: [amd64]\n"
                      f"contents:\n  packages: [{request}]\n")
    out = tmp_path / "out" / "image.tar"
    code, _, err = run(["build", str(spec), "-o", str(out), "--mirror", f"test={repo.url}",
                        "--cache-dir", str(tmp_path / "cache"), "-q"], capsys)
    return code, err, out


def test_identity_generated_without_base_files(tmp_path, apt_repo, apt_key, capsys):
    code, err, out = _build(tmp_path, apt_repo, apt_key, capsys,
                            [Pkg("hello", "1.0", files={"usr/bin/hello": b"hi"})], "hello")
    assert code == 0, err
    assert image_file(out, "usr/lib/os-release") == BOOKWORM_OS_RELEASE
    assert image_file(out, "etc/os-release") == "../usr/lib/os-release"
    # The point release comes from the signed Release, as base-files' does.
    assert image_file(out, "etc/debian_version") == b"12.15\n"
    lock = json.loads((tmp_path / "image.lock.json").read_text())
    assert lock["archs"]["amd64"]["indexes"][0]["version"] == "12.15"


def test_base_package_files_win(tmp_path, apt_repo, apt_key, capsys):
    shipped = {"usr/lib/os-release": b"ID=debian\nVERSION_ID=\"12\"\n",
               "etc/debian_version": b"12.14\n"}
    code, err, out = _build(tmp_path, apt_repo, apt_key, capsys,
                            [Pkg("base-files", "12.4", files=shipped)], "base-files")
    assert code == 0, err
    assert image_file(out, "usr/lib/os-release") == shipped["usr/lib/os-release"]
    assert image_file(out, "etc/debian_version") == b"12.14\n"
    # The package has no link: the generated one points at the package's file.
    assert image_file(out, "etc/os-release") == "../usr/lib/os-release"


def test_release_of_another_version_is_refused(tmp_path, apt_repo, apt_key, capsys):
    code, err, out = _build(tmp_path, apt_repo, apt_key, capsys,
                            [Pkg("hello", "1.0", files={"usr/bin/hello": b"hi"})], "hello",
                            version="13.1")
    assert code == 1 and "13.1" in err and "Traceback" not in err, err
    assert not out.exists()


def test_definition_without_template_warns(tmp_path, apt_repo, apt_key, capsys):
    from hermetic import write_distro

    repo = apt_repo({"stable": [Pkg("hello", "1.0", files={"usr/bin/hello": b"hi"})]})
    distro = write_distro(tmp_path, apt_key.public_path, ["stable"])
    spec = write_spec(tmp_path, f"distro: {distro}\narchs: [amd64]\n"
                      "contents:\n  packages: [hello]\n")
    code, _, err = run(["build", str(spec), "-o", str(tmp_path / "i.tar"), "--mirror",
                        f"test={repo.url}", "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 0 and "no os-release template" in err, err

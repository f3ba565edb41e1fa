"""Multi-arch locks: per-arch resolution, aligned on the versions every arch offers (apko)."""

from __future__ import annotations

import json

import pytest
from aptrepo import Pkg
from hermetic import run, write_distro, write_spec

pytestmark = pytest.mark.integration


def _lock(tmp_path, apt_repo, apt_key, capsys, pkgs, request="app"):
    repo = apt_repo({"stable": pkgs}, archs=("amd64", "arm64", "all"))
    distro = write_distro(tmp_path, apt_key.public_path, ["stable"])
    spec = write_spec(tmp_path, f"distro: {distro}\narchs: [amd64, arm64]\n"
                      f"contents:\n  packages: [{request}]\n")
    code, _, err = run(["lock", str(spec), "--mirror", f"test={repo.url}",
                        "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 0, err
    lock = json.loads((tmp_path / "image.lock.json").read_text())
    return {arch: {p["name"]: (p["version"], p["arch"]) for p in entry["packages"]}
            for arch, entry in lock["archs"].items()}


def test_versions_aligned_to_what_every_arch_offers(tmp_path, apt_repo, apt_key, capsys):
    # app 2.0 is built for amd64 only so far (and needs libnew); 1.0 exists for both.
    pkgs = [Pkg("app", "1.0", arch=a, depends="libold") for a in ("amd64", "arm64")]
    pkgs += [Pkg("app", "2.0", arch="amd64", depends="libnew"),
             Pkg("libold", "1.0", arch="all"), Pkg("libnew", "1.0", arch="all")]
    got = _lock(tmp_path, apt_repo, apt_key, capsys, pkgs)
    assert got["amd64"] == {"app": ("1.0", "amd64"), "libold": ("1.0", "all")}
    assert got["arm64"] == {"app": ("1.0", "arm64"), "libold": ("1.0", "all")}


def test_versions_differ_only_where_the_archive_has_no_common_one(tmp_path, apt_repo, apt_key,
                                                                   capsys):
    # A binNMU: amd64 was rebuilt (+b1), arm64 was not; nothing common to align on.
    pkgs = [Pkg("app", "1.0+b1", arch="amd64", depends="lib"),
            Pkg("app", "1.0", arch="arm64", depends="lib"),
            Pkg("lib", "1.0", arch="amd64"), Pkg("lib", "1.0", arch="arm64"),
            Pkg("lib", "2.0", arch="arm64")]
    got = _lock(tmp_path, apt_repo, apt_key, capsys, pkgs)
    assert got["amd64"]["app"] == ("1.0+b1", "amd64")
    assert got["arm64"]["app"] == ("1.0", "arm64")
    # lib: 2.0 on arm64 only, 1.0 on both: aligned on 1.0.
    assert got["amd64"]["lib"] == ("1.0", "amd64") and got["arm64"]["lib"] == ("1.0", "arm64")
    assert {a for _, a in got["arm64"].values()} <= {"arm64", "all"}

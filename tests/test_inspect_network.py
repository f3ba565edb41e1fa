"""`assemble inspect` and `assemble diff` on real Debian images: the static example built
from its committed lock, and a sliced image carrying chisel's manifest (so slices own files);
and the docker save tar skopeo makes of one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.network
SPECS = Path(__file__).resolve().parent.parent / "specs"
SLICED = """distro: debian/bookworm
archs: [amd64]
contents:
  packages: [base-files_base, base-files_chisel, tzdata_zoneinfo, ca-certificates_data]
"""


def assemble(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assembler.cli", *args], capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def real(tmp_path_factory, shared_cache):
    tmp = tmp_path_factory.mktemp("real")
    shutil.copy(SPECS / "static.yaml", tmp / "static.yaml")
    shutil.copy(SPECS / "static.lock.json", tmp / "static.lock.json")
    (tmp / "sliced.yaml").write_text(SLICED)
    for name, extra in (("static", ["--locked"]), ("sliced", [])):
        r = assemble("build", str(tmp / f"{name}.yaml"), *extra, "-q", "--cache-dir",
                     str(shared_cache), "-o", str(tmp / f"{name}.tar"))
        assert r.returncode == 0, r.stderr
    return tmp


def _json(*args: str) -> dict:
    r = assemble(*args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_inspect_real_images(real):
    static = _json("inspect", str(real / "static.tar"))["platforms"][0]
    names = {p["name"] for p in static["packages"]}
    assert names == {"base-files", "netbase", "tzdata", "media-types", "ca-certificates"}
    assert static["config"]["user"] == "65532:65532"
    files = {f["path"]: f for f in static["files"]}
    assert files["/usr/lib/os-release"]["owners"] == ["base-files"]
    assert files["/etc/os-release"]["link"] == "../usr/lib/os-release"
    assert files["/usr/share/zoneinfo/Etc/UTC"]["owners"] == ["tzdata"]
    # status.d's md5sums list regular files: what the build generated is unclaimed.
    assert "/etc/passwd" in static["unowned"] and "/usr/lib/os-release" not in static["unowned"]
    assert "/tmp" in {f["path"] for f in static["world-writable"]}
    assert static["setuid-setgid"] == []
    assert static["biggest"][0]["size"] >= static["biggest"][-1]["size"] > 0

    sliced = _json("inspect", str(real / "sliced.tar"))["platforms"][0]
    assert "/var/lib/chisel/manifest.wall" in sliced["package-databases"]
    pkgs = {p["name"]: p for p in sliced["packages"]}
    assert {"base", "chisel"} <= set(pkgs["base-files"]["slices"])
    assert "zoneinfo" in pkgs["tzdata"]["slices"] and "data" not in pkgs["tzdata"]["slices"]
    assert pkgs["tzdata"]["size-in-image"] < pkgs["tzdata"]["installed-size"]
    files = {f["path"]: f for f in sliced["files"]}
    assert files["/usr/share/zoneinfo/Etc/UTC"]["owners"] == ["tzdata_zoneinfo"]


def test_diff_real_images_and_a_skopeo_docker_save(real):
    docker = real / "static-docker.tar"
    subprocess.run(["skopeo", "copy", "-q", f"oci-archive:{real / 'static.tar'}",
                    f"docker-archive:{docker}:static:1"], check=True, capture_output=True)
    ours = _json("inspect", str(real / "static.tar"))["platforms"][0]
    theirs = _json("inspect", str(docker))["platforms"][0]
    assert theirs["files"] == ours["files"] and theirs["packages"] == ours["packages"]

    d = _json("diff", str(docker), str(real / "sliced.tar"))["platforms"][0]
    removed = {e["name"] for e in d["packages"]["removed"]}
    assert {"netbase", "media-types"} <= removed
    changed = {e["name"]: e for e in d["packages"]["changed"]}
    assert changed["tzdata"]["slices"]["from"] == []
    assert "zoneinfo" in changed["tzdata"]["slices"]["to"]
    assert "/var/lib/chisel/manifest.wall" in {f["path"] for f in d["files"]["added"]}
    assert "/etc/services" in {f["path"] for f in d["files"]["removed"]}
    assert d["layers"]["from"][0]["compressed-size"] > 0
    r = assemble("diff", str(SPECS / "static.yaml"), str(SPECS / "slices" / "static.yaml"))
    assert r.returncode == 0 and "- netbase " not in r.stdout and "~ tzdata" in r.stdout, \
        r.stdout

"""What Debian's own installer leaves, against what our stand-ins leave (real archive).

mmdebstrap --variant=essential --include=python3 runs the packages' maintainer scripts
with dpkg; assemble runs none and makes what they would have made (debian/scripts.py).
For the same package set, the two images must agree on what the stand-ins claim to
make: every update-alternatives link (but man pages', which assemble strips), the
bytecode py3compile leaves, and python3's /etc/python3/debian_config. What the scripts
make that assemble does not make is listed in docs/decisions.md ("Maintainer-script
stand-ins").
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from test_build_network import assemble

from assembler.distro.definition import load_distro
from assembler.distro.mirror import resolve_mirrors

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.network


def _members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    return {m.name.removeprefix("./").rstrip("/"): m for m in tar.getmembers()}


@pytest.fixture(scope="module")
def both(tmp_path_factory, shared_cache):
    d = tmp_path_factory.mktemp("essential")
    spec = d / "essential.yaml"
    spec.write_text("distro: debian/bookworm\narchs: [amd64]\n"
                    "contents:\n  include-essential: true\n  packages: [python3]\n")
    assemble(["build", str(spec), "-q", "--cache-dir", str(shared_cache),
              "-o", str(d / "image"), "--format", "oci-dir"])
    ours_dir = d / "image"
    rootfs = d / "rootfs.tar"
    # The single layer, as a tar: the same reader then sees both images.
    index = json.loads((ours_dir / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].removeprefix("sha256:")
    manifest = json.loads((ours_dir / "blobs/sha256" / manifest_digest).read_text())
    assert len(manifest["layers"]) == 1
    layer = ours_dir / "blobs/sha256" / manifest["layers"][0]["digest"].removeprefix("sha256:")
    subprocess.run(f"gzip -dc {layer} > {rootfs}", shell=True, check=True)
    mirrors = resolve_mirrors(load_distro("debian/bookworm").archives, {}, {})
    theirs = d / "mmdebstrap.tar"
    subprocess.run(["mmdebstrap", "--quiet", "--variant=essential", "--include=python3",
                    "--architectures=amd64", "--components=main", "bookworm", str(theirs),
                    f"deb {mirrors['debian']} bookworm main",
                    f"deb {mirrors['debian']} bookworm-updates main",
                    f"deb {mirrors['debian-security']} bookworm-security main"],
                   check=True, capture_output=True)
    with tarfile.open(rootfs) as a, tarfile.open(theirs) as b:
        ours, mm = _members(a), _members(b)
        status = b.extractfile("./var/lib/dpkg/status").read().decode()  # type: ignore[union-attr]
        config = a.extractfile("etc/python3/debian_config").read() \
            if "etc/python3/debian_config" in ours else None  # type: ignore[union-attr]
        mm_config = b.extractfile("./etc/python3/debian_config").read()  # type: ignore[union-attr]
    lock = json.loads((d / "essential.lock.json").read_text())
    yield {"ours": ours, "mm": mm, "status": status, "lock": lock, "config": config,
           "mm_config": mm_config}
    shutil.rmtree(d, ignore_errors=True)


def test_the_same_packages(both):
    ours = {p["name"] for p in both["lock"]["archs"]["amd64"]["packages"]}
    theirs = {line.split(":", 1)[1].strip() for line in both["status"].splitlines()
              if line.startswith("Package:")}
    assert ours == theirs


def test_every_alternative_dpkg_made(both):
    made = {name: m.linkname for name, m in both["mm"].items()
            if name.startswith("etc/alternatives/") and m.issym()
            and "/share/man/" not in m.linkname}
    assert made, "mmdebstrap made no alternatives: the comparison would prove nothing"
    ours = {name: both["ours"][name].linkname for name in made if name in both["ours"]}
    assert ours == made


def test_the_same_bytecode(both):
    def pycs(members: dict[str, tarfile.TarInfo]) -> set[str]:
        return {name for name in members if name.endswith(".pyc")}

    assert len(pycs(both["mm"])) > 500
    assert pycs(both["ours"]) == pycs(both["mm"])


def test_python3s_config(both):
    assert both["config"] == both["mm_config"]

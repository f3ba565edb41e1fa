"""Must-show: a real arm64 image from the real Debian archive (the host's apt mirror).

Every ELF file in it is an AArch64 binary, and its lock lists arm64 or all
packages only. The amd64 host cannot run it; e_machine is what matters.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import tarfile

import pytest

pytestmark = pytest.mark.network

EM_AARCH64 = 183


def test_arm64_image_is_aarch64_only(tmp_path, shared_cache):
    spec = tmp_path / "image.yaml"
    spec.write_text("distro: debian/bookworm\narchs: [arm64]\n"
                    "contents:\n  packages: [libc6, zlib1g, libzstd1]\n")
    out = tmp_path / "image.tar"
    r = subprocess.run([sys.executable, "-m", "assembler.cli", "build", str(spec), "-q",
                        "-o", str(out), "--cache-dir", str(shared_cache)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    lock = json.loads((tmp_path / "image.lock.json").read_text())
    assert list(lock["archs"]) == ["arm64"]
    packages = lock["archs"]["arm64"]["packages"]
    assert {"libc6", "zlib1g", "libzstd1"} <= {p["name"] for p in packages}
    assert {p["arch"] for p in packages} <= {"arm64", "all"}
    assert all(p["filename"].endswith(("_arm64.deb", "_all.deb")) for p in packages)

    machines: dict[str, int] = {}
    with tarfile.open(out) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        assert len(manifest) == 1
        config = json.load(outer.extractfile(manifest[0]["Config"]))
        assert (config["os"], config["architecture"]) == ("linux", "arm64")
        for name in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(name), mode="r:*") as layer:
                for m in layer:
                    if m.isfile() and m.size >= 20:
                        head = layer.extractfile(m).read(20)
                        if head[:4] == b"\x7fELF":
                            machines[m.name] = struct.unpack(
                                "<H" if head[5] == 1 else ">H", head[18:20])[0]
    # libc6 alone ships dozens of shared objects: the check looked at real binaries.
    assert len(machines) > 20, sorted(machines)
    wrong = {n: m for n, m in machines.items() if m != EM_AARCH64}
    assert not wrong, wrong

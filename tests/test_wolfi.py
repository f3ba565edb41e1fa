"""Issue 18, must-show 2: Wolfi is a distro. A Wolfi-layout repository (one `os`
repository, no branch or component) is built here, signed with a local key and served
on 127.0.0.1: the real fixture hello-wolfi (a melange build, re-signed as a mirror
would) plus a glibc package the test makes from the host's loader and libc. The
shipped `wolfi` definition locks and builds it; the binary runs as uid 65532 in a
chroot with /proc mounted; skopeo, umoci, Syft and Trivy accept the image and see
Wolfi."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hermetic import skopeo_inspect, umoci_unpack
from test_apk_support import Signer
from wolfirepo import HELLO, KEY, serve_wolfi

from assembler.cli import main
from assembler.distro.definition import load_distro

pytestmark = [pytest.mark.integration, pytest.mark.needs_shared]

def seed_key(cache: Path, signer: Signer) -> None:
    """Put the test key where keyring.py keeps the definition's key URL once fetched:
    this machine 'trusted it before'. No Wolfi host is reachable from the tests."""
    from assembler.cache import Cache
    from assembler.distro.keyring import cached_key

    url = load_distro("wolfi").archives[0].key_urls[0]
    path = Cache(cache).derived_path("keyring", hashlib.sha256(url.encode()).hexdigest()) / KEY
    path.parent.mkdir(parents=True)
    path.write_bytes(signer.public_pem)
    assert cached_key(url, Cache(cache), offline=True) == path


@pytest.fixture(scope="module")
def wolfi(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wolfi")
    signer = Signer.new(KEY)
    server = serve_wolfi(tmp / "srv", signer)
    seed_key(tmp / "cache", signer)
    spec = tmp / "image.yaml"
    spec.write_text("distro: wolfi\narchs: [x86_64]\n"
                    "contents:\n  packages: [hello-wolfi]\n"
                    f"mirrors: {{wolfi: {server.url.rstrip('/')}}}\n"
                    "accounts:\n  users: [{username: nonroot, uid: 65532}]\n"
                    "  run-as: nonroot\n"
                    "entrypoint: [/usr/bin/hello]\n")
    out = tmp / "image.tar"
    try:
        assert main(["lock", str(spec), "--cache-dir", str(tmp / "cache"), "-q"]) == 0
        assert main(["build", str(spec), "-o", str(out), "--cache-dir", str(tmp / "cache"),
                     "-q"]) == 0
    finally:
        server.stop()
    return tmp, out


def test_lock_is_wolfi_layout(wolfi):
    tmp, _ = wolfi
    lock = json.loads((tmp / "image.lock.json").read_text())
    assert lock["distro"] == "wolfi"
    entries = {p["name"]: p for p in lock["archs"]["x86_64"]["packages"]}
    assert sorted(entries) == ["glibc", "hello-wolfi"]
    hello = entries["hello-wolfi"]
    assert hello["repository"] == "os" and hello["archive"] == "wolfi"
    assert hello["filename"] == f"os/x86_64/{HELLO}"
    # the melange build's own datahash (from its .PKGINFO), verified against its data
    assert hello["datahash"] == \
        "3a6c21f20a07bebf261162b5ab13cb041d7c1cc3e1edc644aaa99f109f87d887"
    assert hello["reason"] == ["requested"] and entries["glibc"]["reason"] == ["hello-wolfi"]
    assert lock["archs"]["x86_64"]["indexes"][0]["signed-by"] == KEY
    assert "127.0.0.1" not in json.dumps(lock)


def test_skopeo_accepts_image(wolfi):
    info = skopeo_inspect(wolfi[1])
    assert (info["Architecture"], info["Os"]) == ("amd64", "linux")


@pytest.fixture(scope="module")
def rootfs(wolfi, tmp_path_factory):
    return umoci_unpack(wolfi[1], tmp_path_factory.mktemp("wolfi-unpacked"))


def test_image_contents(rootfs):
    assert "ID=wolfi" in (rootfs / "etc/os-release").read_text()
    assert (rootfs / "etc/apk/repositories").read_text().startswith("http://127.0.0.1:")
    assert (rootfs / "etc/apk/repositories").read_text().rstrip().endswith("/os")
    assert (rootfs / "etc/apk/keys" / KEY).is_file()
    assert "hello-wolfi" in (rootfs / "etc/apk/world").read_text()
    installed = (rootfs / "lib/apk/db/installed").read_text()
    assert "P:hello-wolfi\nV:2.12.1-r0\n" in installed


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
def test_hello_runs_as_nonroot(rootfs):
    (rootfs / "proc").mkdir(exist_ok=True)
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    r = subprocess.run(["unshare", "--mount", "--fork", "sh", "-c",
                        f'mount -t proc proc "$1/proc" && exec {chroot} '
                        f'--userspec=65532:65532 "$1" /usr/bin/hello', "sh", str(rootfs)],
                       capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "Hello, world!"


def test_syft_sees_wolfi(wolfi, tmp_path):
    _, out = wolfi
    syft = shutil.which("syft") or str(Path(sys.executable).parent / "syft")
    r = subprocess.run([syft, "scan", f"oci-archive:{out}", "-o", "json", "-q"],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false",
                            "XDG_CACHE_HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["distro"]["id"] == "wolfi"
    names = {a["name"] for a in doc["artifacts"] if a["type"] == "apk"}
    assert names == {"glibc", "hello-wolfi"}


def test_trivy_sees_wolfi(wolfi, tmp_path):
    _, out = wolfi
    trivy = shutil.which("trivy") or str(Path(sys.executable).parent / "trivy")
    r = subprocess.run([trivy, "image", "--input", str(out), "--format", "cyclonedx",
                        "--cache-dir", str(tmp_path), "--skip-db-update", "--offline-scan",
                        "--quiet"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    oses = [c for c in doc["components"] if c["type"] == "operating-system"]
    assert [c["name"] for c in oses] == ["wolfi"]
    libs = {c["name"] for c in doc["components"] if c["type"] == "library"}
    assert {"glibc", "hello-wolfi"} <= libs

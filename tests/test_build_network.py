"""Must-show: real images from the real archive (through the host's apt sources mirror).

python3: skopeo (oci-archive and docker-archive) and umoci accept it; as uid
65532 in a chroot it imports ssl/sqlite3/json/zlib/ctypes/urllib.request and
loads >= 100 CA certificates. Two builds in different environments give one
digest. static: every package is in status.d and every md5sums line matches.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.network


def assemble(args: list[str], env: dict | None = None, cwd: Path | None = None,
             umask: int | None = None) -> subprocess.CompletedProcess:
    def pre() -> None:
        if umask is not None:
            os.umask(umask)

    r = subprocess.run([sys.executable, "-m", "assembler.cli", *args], capture_output=True,
                       text=True, env=env, cwd=cwd, preexec_fn=pre)
    assert r.returncode == 0, r.stderr
    return r


def unpack(tar: Path, dest: Path) -> Path:
    layout = dest / "layout"
    layout.mkdir(parents=True)
    subprocess.run(["tar", "-C", str(layout), "-xf", str(tar)], check=True)
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:latest", str(dest / "bundle")],
                   check=True, capture_output=True)
    return dest / "bundle" / "rootfs"


@pytest.fixture(scope="module")
def python_image(tmp_path_factory, shared_cache):
    d = tmp_path_factory.mktemp("py")
    shutil.copy(ROOT / "specs" / "python3.yaml", d / "image.yaml")
    assemble(["build", str(d / "image.yaml"), "-q", "--cache-dir", str(shared_cache)])
    return d


def test_tools_accept_python_image(python_image):
    tar = python_image / "image.tar"
    for transport in ("oci-archive", "docker-archive"):
        r = subprocess.run(["skopeo", "inspect", f"{transport}:{tar}"], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        assert '"Architecture": "amd64"' in r.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
def test_python_runs_as_nonroot(python_image, tmp_path):
    rootfs = unpack(python_image / "image.tar", tmp_path)
    code = ("import ssl, sqlite3, json, zlib, ctypes, urllib.request\n"
            "c = ssl.create_default_context(); print(len(c.get_ca_certs()))")
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    r = subprocess.run([chroot, "--userspec=65532:65532", str(rootfs), "/usr/bin/python3",
                        "-c", code], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "HOME": "/home/nonroot"})
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip()) >= 100
    assert (rootfs / "etc/passwd").read_text().count("nonroot:x:65532:65532") == 1
    assert oct((rootfs / "tmp").stat().st_mode & 0o7777) == "0o1777"
    assert not (rootfs / "usr/share/man").exists()
    assert list((rootfs / "usr/share/doc").glob("*/copyright"))


def test_reproducible_across_environments(python_image, tmp_path):
    """Same spec + lock, different cache, umask, TZ, locale and cwd: same digest.

    The second locale is a real Latin-1 one where it can be made: ca-certificates
    ships file names that are not ASCII (NetLock_..._Főtanúsítvány.crt)."""
    from repro import latin1_env

    spec = python_image / "image.yaml"
    first = (python_image / "image.tar").read_bytes()
    latin1 = latin1_env(tmp_path / "locale") or {"LANG": "de_DE.UTF-8"}
    outs = []
    for i, (umask, tz, lang, extra) in enumerate([
            (0o022, "UTC", "C.UTF-8", {}),
            (0o077, "Pacific/Kiritimati", latin1["LANG"], latin1)]):
        cwd = tmp_path / f"cwd{i}"
        cwd.mkdir()
        env = {**os.environ, "TZ": tz, "LANG": lang, "LC_ALL": lang,
               "PYTHONHASHSEED": str(i + 7), **extra}
        env.pop("SOURCE_DATE_EPOCH", None)
        out = tmp_path / f"image{i}.tar"
        r = assemble(["build", str(spec), "-o", str(out), "--locked", "-q",
                      "--cache-dir", str(tmp_path / f"cache{i}")], env=env, cwd=cwd, umask=umask)
        outs.append((r.stdout.strip(), hashlib.sha256(out.read_bytes()).hexdigest()))
    assert outs[0] == outs[1]
    assert hashlib.sha256(first).hexdigest() == outs[0][1]


@pytest.mark.skipif(os.geteuid() != 0, reason="umoci unpack keeps ownership as root")
def test_static_status_d_and_md5sums(tmp_path, shared_cache):
    shutil.copy(ROOT / "specs" / "static.yaml", tmp_path / "image.yaml")
    assemble(["build", str(tmp_path / "image.yaml"), "-q", "--cache-dir", str(shared_cache)])
    import json

    lock = json.loads((tmp_path / "image.lock.json").read_text())
    rootfs = unpack(tmp_path / "image.tar", tmp_path / "u")
    status = rootfs / "var/lib/dpkg/status.d"
    checked = 0
    for p in lock["archs"]["amd64"]["packages"]:
        text = (status / p["name"]).read_text()
        assert f"Package: {p['name']}\n" in text
        assert f"Version: {p['version']}\n" in text
        assert f"Architecture: {p['arch']}\n" in text
        for line in (status / f"{p['name']}.md5sums").read_text().splitlines():
            md5, path = line.split("  ", 1)
            assert hashlib.md5((rootfs / path).read_bytes()).hexdigest() == md5, path
            checked += 1
    assert checked > 50
    assert (rootfs / "etc/ssl/certs/ca-certificates.crt").stat().st_size > 100_000
    assert (rootfs / "usr/share/zoneinfo/UTC").exists() or (rootfs / "usr/share/zoneinfo").exists()

"""Must-show: the link check on real bookworm images (through the host's apt sources mirror).

The python3 and static images pass (their builds run the check); `assemble
check` passes python3's tar and fails a copy whose top layer deletes
libssl.so.3; a python3 build that excludes libssl3 fails naming _ssl's module.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.network
SSL = "usr/lib/x86_64-linux-gnu/libssl.so.3"
SSL_MODULE = "/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so"


def assemble(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assembler.cli", *args], capture_output=True,
                          text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def python_tar(tmp_path_factory, shared_cache) -> Path:
    d = tmp_path_factory.mktemp("py")
    shutil.copy(ROOT / "specs" / "python3.yaml", d / "image.yaml")
    r = assemble("build", str(d / "image.yaml"), "-q", "--cache-dir", str(shared_cache))
    assert r.returncode == 0, r.stderr
    return d / "image.tar"


def test_python_image_passes(python_tar):
    r = assemble("check", str(python_tar))
    assert r.returncode == 0, r.stdout + r.stderr
    checked = int(r.stdout.split("): ")[1].split()[0])
    assert checked > 100  # python, its lib-dynload modules, libc, libssl, ...


def test_static_image_builds(tmp_path, shared_cache):
    shutil.copy(ROOT / "specs" / "static.yaml", tmp_path / "image.yaml")
    r = assemble("build", str(tmp_path / "image.yaml"), "-q", "--cache-dir", str(shared_cache))
    assert r.returncode == 0, r.stderr
    assert assemble("check", str(tmp_path / "image.tar")).returncode == 0


def _with_whiteout_layer(image_tar: Path, dest: Path, deleted: str) -> Path:
    """A copy of the image as an OCI layout directory with one more layer deleting `deleted`."""
    with tarfile.open(image_tar) as tf:
        tf.extractall(dest, filter="data")
    blobs = dest / "blobs" / "sha256"

    def put(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as layer:
        parent, _, name = deleted.rpartition("/")
        layer.addfile(tarfile.TarInfo(f"{parent}/.wh.{name}"))
    index = json.loads((dest / "index.json").read_text())
    mdesc = index["manifests"][0]
    manifest = json.loads((blobs / mdesc["digest"][7:]).read_bytes())
    config = json.loads((blobs / manifest["config"]["digest"][7:]).read_bytes())
    config["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(raw.getvalue()).hexdigest())
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                               **put(gzip.compress(raw.getvalue(), mtime=0))})
    manifest["config"] = {**manifest["config"], **put(json.dumps(config).encode())}
    index["manifests"] = [{**mdesc, **put(json.dumps(manifest).encode())}]
    (dest / "index.json").write_text(json.dumps(index))
    (dest / "manifest.json").unlink()  # the docker view would still name the old layers
    return dest


def test_copy_without_libssl_fails(python_tar, tmp_path):
    layout = _with_whiteout_layer(python_tar, tmp_path / "nossl", SSL)
    r = assemble("check", str(layout))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"  {SSL_MODULE}: library libssl.so.3" in r.stdout
    assert "libssl.so.3 (needed by " in r.stdout
    assert "libcrypto.so.3" not in r.stdout  # only what was deleted is missing


def test_build_excluding_libssl3_fails(tmp_path, shared_cache):
    spec = (ROOT / "specs" / "python3.yaml").read_text()
    (tmp_path / "image.yaml").write_text(spec.replace("contents:\n",
                                                      "contents:\n  exclude: [libssl3]\n"))
    r = assemble("build", str(tmp_path / "image.yaml"), "-q", "--cache-dir", str(shared_cache))
    assert r.returncode == 1, r.stderr
    assert "Link check of the amd64 image failed" in r.stderr
    assert "libssl.so.3 (needed by " in r.stderr and "libcrypto.so.3 (needed by " in r.stderr
    # What would provide them: the catalog's slice, and the package the archive's
    # Contents index names.
    assert r.stderr.count("provided by slice libssl3_libs or package libssl3") == 2, r.stderr
    assert not (tmp_path / "image.tar").exists()

"""Hostile or broken images read back by `assemble check` and `assemble inspect`.

An image on disk is the user's input, and may come from anywhere: a few-MB file
whose layer inflates to gigabytes, or whose tar declares a header of 1.5 GB, or
whose manifest.json is 2 GiB, must be refused in one paragraph naming the image
(and the layer), exit 2, with memory bounded. Each command runs in a child
capped at 2 GiB of address space and 1 MiB per written file (hostiletar), so a
regression fails the test, not the machine.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from elfmaker import library, program
from hermetic import run
from hostiletar import header, member, run_bounded, tar, zst_stream

MB, GiB = 1 << 20, 1 << 30
RSS_CAP = 100 * MB
MAGIC = b"\x7fELF"


def _gz_stream(prefix: bytes, size: int) -> bytes:
    """gzip of `prefix` then `size` zero bytes: one gzip member per MiB of zeros, all the
    same (a multi-member gzip is one stream to every reader), so 5 GiB cost 5 MB."""
    zeros = gzip.compress(b"\0" * MB, mtime=0)
    return gzip.compress(prefix, mtime=0) + zeros * (size // MB)


def _blob(blobs: dict[str, bytes], data: bytes) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs["blobs/sha256/" + digest[7:]] = data
    return {"digest": digest, "size": len(data)}


def _oci(layers: list[bytes], layer_type: str) -> dict[str, bytes]:
    """The files of an OCI layout holding one linux/amd64 image of these layer blobs."""
    blobs: dict[str, bytes] = {}
    config = _blob(blobs, json.dumps({"architecture": "amd64", "os": "linux",
                                      "rootfs": {"type": "layers", "diff_ids": []}}).encode())
    manifest = {"schemaVersion": 2, "config": {"mediaType":
                                               "application/vnd.oci.image.config.v1+json",
                                               **config},
                "layers": [{"mediaType": layer_type, **_blob(blobs, b)} for b in layers]}
    desc = _blob(blobs, json.dumps(manifest).encode())
    top = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **desc,
           "platform": {"architecture": "amd64", "os": "linux"}}
    return {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
            "index.json": json.dumps({"schemaVersion": 2, "manifests": [top]}).encode(),
            **blobs}


def _write_tar(path: Path, files: dict[str, bytes], sparse: tuple[str, int, bytes] | None = None
               ) -> Path:
    """An image archive of `files`, then optionally one member (name, declared size, type)
    whose data is a hole in a sparse file: a 1.5 GB header that costs no disk."""
    members = [(member(name, len(data)), data) for name, data in files.items()]
    with open(path, "wb") as f:
        f.write(tar(members, tarfile.USTAR_FORMAT, end=sparse is None))
        if sparse is not None:
            name, size, type_ = sparse
            f.write(header(name, size, type_))
            f.truncate(f.tell() + size + 1024)   # the data, then end-of-archive zeros
    return path


GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
ZST = "application/vnd.oci.image.layer.v1.tar+zstd"
LIB = "usr/lib/x86_64-linux-gnu"


def _normal_layer() -> bytes:
    members = [(f"{LIB}/ld-linux-x86-64.so.2", library("ld-linux-x86-64.so.2")),
               (f"{LIB}/libc.so.6", library("libc.so.6")),
               ("usr/bin/app", program("libc.so.6"))]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("lib64/ld-linux-x86-64.so.2")
        link.type, link.linkname = tarfile.SYMTYPE, f"/{LIB}/ld-linux-x86-64.so.2"
        tf.addfile(link)
    return buf.getvalue()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("hostile-images")
    normal = _normal_layer()
    elf = header(f"{LIB}/libhuge.so", 5 * GiB, tarfile.REGTYPE) + MAGIC
    plain = header("usr/share/zeros", 160 * MB, tarfile.REGTYPE)
    pax = header("./PaxHeaders/x", 512 * MB, tarfile.XHDTYPE)
    return {
        "normal-gzip": _write_tar(tmp / "normal-gzip.tar", _oci([gzip.compress(normal)], GZ)),
        "normal-zstd": _write_tar(tmp / "normal-zstd.tar", _oci(
            [zst_stream(normal, b"\0", 0)], ZST)),
        # A 5 GiB library in a 5 MB layer: kept (it is ELF), it would fill the disk.
        "gzip-member": _write_tar(tmp / "gzip-member.tar", _oci(
            [gzip.compress(normal), _gz_stream(elf, 5 * GiB)], GZ)),
        # 160 MiB of a file nobody keeps, against a 64 MiB bound on a layer's stream.
        "gzip-stream": _write_tar(tmp / "gzip-stream.tar", _oci([_gz_stream(plain, 160 * MB)],
                                                                GZ)),
        "zstd-stream": _write_tar(tmp / "zstd-stream.tar", _oci(
            [zst_stream(plain, b"\0", 160 * MB)], ZST)),
        # A real 512 MB PAX header inside a zstd layer; tarfile would hold it in memory.
        "layer-pax": _write_tar(tmp / "layer-pax.tar", _oci(
            [zst_stream(pax, b"0", 512 * MB)], ZST)),
        # A 1.5 GB PAX header in the image archive itself.
        "archive-pax": _write_tar(tmp / "archive-pax.tar", _oci([gzip.compress(normal)], GZ),
                                  ("./PaxHeaders/y", 1536 * MB, tarfile.XHDTYPE)),
        "two-layers": _write_tar(tmp / "two-layers.tar", _oci(
            [gzip.compress(normal), zst_stream(normal, b"\0", 0)], GZ)),
        # docker save's manifest.json, 2 GiB of it.
        "manifest": _write_tar(tmp / "manifest.tar", {"cfg.json": b"{}"},
                               ("manifest.json", 2 * GiB, tarfile.REGTYPE)),
    }


STREAM_LIMIT = {"ASSEMBLER_MAX_LAYER_STREAM": "64M"}


@pytest.mark.parametrize("command", ["check", "inspect"])
@pytest.mark.parametrize("name, words, env", [
    ("gzip-member", ["layer blobs/sha256/", "5,368,709,120", "ASSEMBLER_MAX_MEMBER_SIZE"], {}),
    ("gzip-stream", ["layer blobs/sha256/", "ASSEMBLER_MAX_LAYER_STREAM"], STREAM_LIMIT),
    ("zstd-stream", ["layer blobs/sha256/", "ASSEMBLER_MAX_LAYER_STREAM"], STREAM_LIMIT),
    ("layer-pax", ["layer blobs/sha256/", "extension header", "ASSEMBLER_MAX_TAR_HEADER"], {}),
    ("archive-pax", ["(image archive)", "extension header", "ASSEMBLER_MAX_TAR_HEADER"], {}),
    ("manifest", ["manifest.json", "4,194,304 bytes"], {}),
])
def test_hostile_image_refused_with_bounded_memory(images, command, name, words, env):
    code, err, rss = run_bounded([command, str(images[name])], env=env)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(images[name]) in err and "refusing the package" not in err, err
    for w in words:
        assert w in err, err
    print(f"{command} {name}: peak RSS {rss / MB:.0f} MB")
    assert rss < RSS_CAP, f"peak RSS {rss / MB:.0f} MB"


@pytest.mark.parametrize("name", ["normal-gzip", "normal-zstd"])
@pytest.mark.parametrize("command", ["check", "inspect"])
def test_normal_image_still_reads(images, name, command):
    """The same limits (and the lowered stream bound) leave an ordinary image alone."""
    code, err, rss = run_bounded([command, str(images[name])], env=STREAM_LIMIT)
    assert code == 0, err
    assert rss < RSS_CAP, f"peak RSS {rss / MB:.0f} MB"




@pytest.mark.parametrize("command", ["check", "inspect"])
def test_layers_are_bounded_together(images, command, capsys, monkeypatch):
    """ASSEMBLER_MAX_MEMBERS bounds the entries of all layers together (they are all held
    at once), not of each: the second layer, which alone is within it, is refused."""
    normal = _normal_layer()
    with tarfile.open(fileobj=io.BytesIO(normal)) as tf:
        per_layer = len(tf.getmembers())
    with tarfile.open(images["two-layers"]) as tf:
        limit = max(per_layer, len(tf.getmembers()))   # the archive itself passes
    assert limit < 2 * per_layer
    second = hashlib.sha256(zst_stream(normal, b"\0", 0)).hexdigest()
    monkeypatch.setenv("ASSEMBLER_MAX_MEMBERS", str(limit))
    path = images["two-layers"]
    code, _, err = run([command, str(path)], capsys)
    assert code == 2 and "ASSEMBLER_MAX_MEMBERS" in err and "Traceback" not in err, err
    assert f"{path}: layer blobs/sha256/{second}: refusing the image" in err, err
    monkeypatch.setenv("ASSEMBLER_MAX_MEMBERS", str(2 * per_layer))
    assert run([command, str(path)], capsys)[0] == 0

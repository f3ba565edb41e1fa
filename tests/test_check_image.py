"""`assemble check IMAGE`: OCI and docker-save archives, layer order, whiteouts, bad input."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard
from elfmaker import EM_AARCH64, library, program
from hermetic import run

from assembler.image.reader import open_image

LIBDIR = "usr/lib/x86_64-linux-gnu"
Member = tuple[str, bytes | str | None]  # (path, file bytes | symlink target "->x" | None: dir)


def glibc() -> list[Member]:
    return [("usr/", None), ("usr/lib/", None), (f"{LIBDIR}/", None),
            (f"{LIBDIR}/ld-linux-x86-64.so.2", library("ld-linux-x86-64.so.2")),
            ("lib64/", None),
            ("lib64/ld-linux-x86-64.so.2", f"->/{LIBDIR}/ld-linux-x86-64.so.2"),
            (f"{LIBDIR}/libc.so.6", library("libc.so.6"))]


def app(*needed: str) -> list[Member]:
    return [("usr/bin/", None), ("usr/bin/app", program(*needed))]


def layer_tar(members: list[Member]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, value in members:
            info = tarfile.TarInfo(name.rstrip("/"))
            if value is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            elif isinstance(value, str):
                info.type, info.linkname = tarfile.SYMTYPE, value[2:]
                tf.addfile(info)
            else:
                info.size, info.mode = len(value), 0o755
                tf.addfile(info, io.BytesIO(value))
    return buf.getvalue()


def compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


class Layout:
    """Writes an OCI layout (directory or tar) of one or several platform images."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def blob(self, data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    def image(self, layers: list[list[Member]], arch: str = "amd64",
              how: str = "gzip") -> dict:
        raw = [layer_tar(m) for m in layers]
        config = {"architecture": arch, "os": "linux", "rootfs": {
            "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(r).hexdigest() for r in raw]}}
        manifest = {"schemaVersion": 2, "config": self.blob(json.dumps(config).encode()),
                    "layers": [self.blob(compress(r, how)) for r in raw]}
        desc = self.blob(json.dumps(manifest).encode())
        return {"mediaType": "application/vnd.oci.image.manifest.v1+json", **desc,
                "platform": {"architecture": arch, "os": "linux"}}

    def files(self, top: list[dict]) -> dict[str, bytes]:
        out = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
               "index.json": json.dumps({"schemaVersion": 2, "manifests": top}).encode()}
        for digest, data in self.blobs.items():
            out["blobs/sha256/" + digest[7:]] = data
        return out


def write_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def write_dir(path: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


def oci_tar(tmp_path: Path, layers: list[list[Member]], how: str = "gzip") -> Path:
    lay = Layout()
    return write_tar(tmp_path / "image.tar", lay.files([lay.image(layers, how=how)]))


def check(argv: list[str], capsys) -> tuple[int, str, str]:
    return run(["check", *argv], capsys)


@pytest.mark.parametrize("how", ["gzip", "zstd", "none"])
def test_complete_image_passes(tmp_path, capsys, how):
    image = oci_tar(tmp_path, [glibc() + app("libc.so.6")], how)
    code, out, err = check([str(image)], capsys)
    assert code == 0, err
    assert "(linux/amd64): 1 dynamically linked ELF file;" in out


def test_missing_library_fails_naming_file_and_soname(tmp_path, capsys):
    image = oci_tar(tmp_path, [glibc() + app("libc.so.6", "libssl.so.3")])
    code, out, _ = check([str(image)], capsys)
    assert code == 1
    assert "libssl.so.3 (needed by /usr/bin/app)" in out
    assert "  /usr/bin/app: library libssl.so.3" in out
    assert check([str(image), "--ignore", "/usr/bin/*"], capsys)[0] == 0


def test_later_layer_supplies_and_whiteout_removes(tmp_path, capsys):
    lib = [(f"{LIBDIR}/libssl.so.3", library("libssl.so.3"))]
    image = oci_tar(tmp_path, [glibc() + app("libssl.so.3"), lib])
    assert check([str(image)], capsys)[0] == 0
    gone = [(f"{LIBDIR}/.wh.libssl.so.3", b"")]
    image = oci_tar(tmp_path, [glibc() + app("libssl.so.3"), lib, gone])
    code, out, _ = check([str(image)], capsys)
    assert code == 1 and "libssl.so.3" in out


def test_opaque_directory_hides_lower_layers_only(tmp_path, capsys):
    lower = glibc() + app("libold.so.1", "libnew.so.1") + [
        ("opt/", None), ("opt/lib/", None), ("opt/lib/libold.so.1", library("libold.so.1")),
        (f"{LIBDIR}/libold.so.1", "->/opt/lib/libold.so.1")]
    # The upper layer's own entry in the opaque directory may even precede the marker.
    upper = [("opt/", None), ("opt/lib/", None), ("opt/lib/libnew.so.1", library("libnew.so.1")),
             ("opt/lib/.wh..wh..opq", b""), (f"{LIBDIR}/libnew.so.1", "->/opt/lib/libnew.so.1")]
    image = oci_tar(tmp_path, [lower, upper])
    code, out, _ = check([str(image)], capsys)
    assert code == 1
    assert "libold.so.1" in out and "libnew.so.1" not in out


def test_upper_file_replaces_lower_symlink_and_directory(tmp_path, capsys):
    lower = glibc() + app("libz.so.1") + [(f"{LIBDIR}/libz.so.1", "->nowhere"),
                                          ("usr/lib/x/", None), ("usr/lib/x/y", b"")]
    upper = [(f"{LIBDIR}/libz.so.1", library("libz.so.1")), ("usr/lib/x", b"now a file")]
    assert check([str(oci_tar(tmp_path, [lower, upper]))], capsys)[0] == 0
    with open_image(tmp_path / "image.tar") as f:
        (image,) = f.images()
        with f.load_tree(image) as tree:
            assert tree.get("usr/lib/x").kind == "file" and tree.get("usr/lib/x/y") is None


def test_oci_layout_directory_and_multi_arch_index(tmp_path, capsys):
    lay = Layout()
    arm = [(n, library(n.rpartition("/")[2], machine=EM_AARCH64) if isinstance(v, bytes) else v)
           for n, v in glibc()] + app("libc.so.6")
    top = [lay.image([glibc() + app("libc.so.6")], "amd64"), lay.image([arm], "arm64")]
    index = lay.blob(json.dumps({"schemaVersion": 2, "manifests": top}).encode())
    root = write_dir(tmp_path / "layout", lay.files([
        {"mediaType": "application/vnd.oci.image.index.v1+json", **index}]))
    code, out, _ = check([str(root)], capsys)
    # arm64's app is x86-64 (as program() makes it) while its loader is aarch64.
    assert code == 1
    assert "(linux/amd64): 1 dynamically linked" in out
    assert "(linux/arm64)" in out and "interpreter /lib64/ld-linux-x86-64.so.2" in out
    assert check([str(root), "--arch", "amd64"], capsys)[0] == 0
    code, _, err = check([str(root), "--arch", "s390x"], capsys)
    assert code == 2 and "has no s390x image; it has linux/amd64, linux/arm64" in err


def test_docker_save_format(tmp_path, capsys):
    raw = layer_tar(glibc() + app("libc.so.6", "libgone.so.1"))
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    files = {"abc/layer.tar": raw, "cfg.json": config,
             "manifest.json": json.dumps([{"Config": "cfg.json", "RepoTags": ["x:1"],
                                           "Layers": ["abc/layer.tar"]}]).encode()}
    code, out, _ = check([str(write_tar(tmp_path / "saved.tar", files))], capsys)
    assert code == 1 and "(linux/amd64)" in out and "libgone.so.1" in out


@pytest.mark.parametrize("how, where", [
    ("gzip", -1),  # gzip's CRC trailer, which tar reading never reaches: the digest notices
    ("none", -1),  # tar padding, which changes no member: only the digest notices
    ("gzip", 300),  # inside the deflate stream: decompression fails (or the digest)
])
def test_damaged_layer_is_refused(tmp_path, capsys, how, where):
    lay = Layout()
    files = lay.files([lay.image([glibc() + app("libc.so.6")], how=how)])
    name = max((n for n in files if n.startswith("blobs/")), key=lambda n: len(files[n]))
    data = bytearray(files[name])
    data[where] ^= 0x55
    files[name] = bytes(data)
    words = "does not match its digest" if where == -1 else "layer"
    code, _, err = check([str(write_tar(tmp_path / "image.tar", files))], capsys)
    assert code == 2 and words in err and "Traceback" not in err


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_text("distro: x\n"), "not an image"),
    (lambda p: p.mkdir(), "not an OCI image layout"),
    (lambda p: write_tar(p, {"hello.txt": b"hi"}), "neither index.json"),
    (lambda p: p.write_bytes(oci_tar(p.parent, [glibc()]).read_bytes()[:3000]), "error"),
    (lambda p: write_tar(p, {"oci-layout": b"{}", "index.json": b"[1"}), "not a JSON"),
    (lambda p: None, "does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, make, words):
    target = tmp_path / "thing"
    make(target)
    code, out, err = check([str(target)], capsys)
    assert code == 2, (out, err)
    assert words in err and err.count("\n") == 1 and "Traceback" not in err

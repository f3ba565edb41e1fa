"""assembler.debian.deb: streaming .deb reading, built with the real dpkg-deb."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from assembler.debian import deb
from assembler.errors import IntegrityError

needs_dpkg_deb = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")

CONTROL = b"""Package: demo
Version: 1.0-1
Architecture: all
Maintainer: Test <test@example.org>
Description: demo package
"""


def build_deb(tmp_path: Path, compression: str, big: bytes = b"") -> Path:
    root = tmp_path / f"root-{compression}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_bytes(CONTROL)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "demo").write_bytes(b"#!/bin/sh\necho demo\n")
    (root / "usr" / "bin" / "demo").chmod(0o755)
    (root / "usr" / "share" / "demo").mkdir(parents=True)
    (root / "usr" / "share" / "demo" / "big").write_bytes(big)
    (root / "usr" / "bin" / "demo-link").symlink_to("demo")
    md5 = hashlib.md5(b"#!/bin/sh\necho demo\n").hexdigest()
    (root / "DEBIAN" / "md5sums").write_text(f"{md5}  usr/bin/demo\n")
    out = tmp_path / f"demo-{compression}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(root), str(out)],
        check=True,
        capture_output=True,
    )
    return out


def ar_archive(members: list[tuple[str, bytes]]) -> bytes:
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        out += data
        if len(data) % 2:
            out += b"\n"
    return bytes(out)


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


@needs_dpkg_deb
@pytest.mark.parametrize("compression", ["xz", "gzip", "zstd", "none"])
def test_streaming_read_each_compression(tmp_path: Path, compression: str) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB: several buffer refills
    path = build_deb(tmp_path, compression, big)
    assert deb.read_control(path) == CONTROL
    seen = {}
    for info, f in deb.iter_data(path):
        seen[info.name] = (info.type, f.read() if f is not None else None)
    assert seen["./usr/bin/demo"] == (tarfile.REGTYPE, b"#!/bin/sh\necho demo\n")
    assert seen["./usr/share/demo/big"][1] == big
    assert seen["./usr/bin/demo-link"] == (tarfile.SYMTYPE, None)
    assert seen["./usr"][0] == tarfile.DIRTYPE


@needs_dpkg_deb
def test_members_can_be_skipped_unread(tmp_path: Path) -> None:
    path = build_deb(tmp_path, "xz", b"x" * 100_000)
    names = [info.name for info, _ in deb.iter_data(path)]
    assert "./usr/bin/demo" in names and "./usr/share/demo/big" in names


@pytest.fixture
def handmade(tmp_path: Path):
    def make(members: list[tuple[str, bytes]], name: str = "hand.deb") -> Path:
        p = tmp_path / name
        p.write_bytes(ar_archive(members))
        return p

    return make


def _control_tar() -> bytes:
    ctrl = tarfile.TarInfo("./control")
    ctrl.size = len(CONTROL)
    return tar_bytes([(ctrl, CONTROL)])


def test_handmade_deb_with_extra_member(handmade) -> None:
    data_file = tarfile.TarInfo("./etc/demo.conf")
    data_file.size = 3
    dev = tarfile.TarInfo("./dev/null")
    dev.type = tarfile.CHRTYPE
    path = handmade(
        [
            ("debian-binary", b"2.0\n"),
            ("_extra", b"ignored"),
            ("control.tar", _control_tar()),
            ("data.tar", tar_bytes([(data_file, b"a=1"), (dev, None)])),
        ]
    )
    assert deb.read_control(path) == CONTROL
    got = [(i.name, f.read() if f else None) for i, f in deb.iter_data(path)]
    assert got == [("./etc/demo.conf", b"a=1"), ("./dev/null", None)]


def test_not_a_deb(tmp_path: Path) -> None:
    p = tmp_path / "junk.deb"
    p.write_bytes(b"this is not an ar archive at all")
    with pytest.raises(IntegrityError, match="junk.deb"):
        deb.read_control(p)
    with pytest.raises(IntegrityError, match="junk.deb"):
        list(deb.iter_data(p))


def test_missing_file_is_integrity_error(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="nope.deb"):
        deb.read_control(tmp_path / "nope.deb")


@needs_dpkg_deb
@pytest.mark.parametrize("compression", ["xz", "gzip", "zstd", "none"])
def test_truncated_deb(tmp_path: Path, compression: str) -> None:
    path = build_deb(tmp_path, compression, bytes(range(256)) * 2048)
    data = path.read_bytes()
    cut = tmp_path / "cut.deb"
    cut.write_bytes(data[: len(data) - 300])
    with pytest.raises(IntegrityError, match="cut.deb"):
        for _info, f in deb.iter_data(cut):
            if f is not None:
                f.read()


@needs_dpkg_deb
@pytest.mark.parametrize("compression", ["xz", "gzip", "zstd"])
def test_corrupt_compressed_data(tmp_path: Path, compression: str) -> None:
    path = build_deb(tmp_path, compression, bytes(range(256)) * 2048)
    data = bytearray(path.read_bytes())
    # Flip bytes in the middle of data.tar.*, which is the last member.
    for i in range(len(data) - 400, len(data) - 300):
        data[i] ^= 0x5A
    bad = tmp_path / "bad.deb"
    bad.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="bad.deb"):
        for _info, f in deb.iter_data(bad):
            if f is not None:
                f.read()


def test_no_data_member(handmade) -> None:
    path = handmade([("debian-binary", b"2.0\n"), ("control.tar", _control_tar())])
    with pytest.raises(IntegrityError, match="no data.tar"):
        list(deb.iter_data(path))


def test_wrong_first_member(handmade) -> None:
    path = handmade([("control.tar", _control_tar())])
    with pytest.raises(IntegrityError, match="debian-binary"):
        deb.read_control(path)


@needs_dpkg_deb
def test_real_deb_into_merged_usr_tree(tmp_path: Path) -> None:
    from assembler.rootfs.tree import Tree

    root = tmp_path / "root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_bytes(CONTROL)
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_bytes(b"tool")
    (root / "bin" / "tool").chmod(0o4755)
    (root / "bin" / "tool-again").hardlink_to(root / "bin" / "tool")
    (root / "sbin").mkdir()
    (root / "sbin" / "t").symlink_to("/bin/tool")
    out = tmp_path / "tool.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(out)],
        check=True,
        capture_output=True,
    )
    with Tree(merged_usr=True) as tree:
        warnings = tree.add_tar(deb.iter_data(out), "tool")
        kinds = {e.path: e.kind for e in tree}
        assert kinds["usr/bin/tool"] == "file"
        assert kinds["usr/bin/tool-again"] == "hardlink"
        assert kinds["usr/sbin/t"] == "symlink"
        assert kinds["bin"] == kinds["sbin"] == "symlink"
        assert tree.read("/sbin/t") == b"tool"
        assert tree.get("usr/bin/tool").mode == 0o755  # type: ignore[union-attr]
        assert any("setuid" in w for w in warnings)


@pytest.mark.parametrize("ext", ["", ".gz", ".xz", ".zst", ".bz2", ".lzma"])
def test_handmade_compressions(handmade, ext: str) -> None:
    import bz2
    import gzip
    import lzma

    import zstandard

    info = tarfile.TarInfo("./usr/share/x")
    info.size = 5
    plain = tar_bytes([(info, b"hello")])
    compress = {
        "": lambda b: b,
        ".gz": gzip.compress,
        ".xz": lzma.compress,
        ".zst": zstandard.ZstdCompressor().compress,
        ".bz2": bz2.compress,
        ".lzma": lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE),
    }[ext]
    path = handmade(
        [
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", gzip.compress(_control_tar())),
            ("data.tar" + ext, compress(plain)),
        ]
    )
    assert deb.read_control(path) == CONTROL
    assert [(i.name, f.read() if f else None) for i, f in deb.iter_data(path)] == [
        ("./usr/share/x", b"hello")
    ]
    broken = handmade(
        [
            ("debian-binary", b"2.0\n"),
            ("control.tar", _control_tar()),
            ("data.tar" + ext, compress(plain)[:40] + b"\0" * 200),
        ],
        name="broken.deb",
    )
    with pytest.raises(IntegrityError, match="broken.deb"):
        for _i, f in deb.iter_data(broken):
            if f is not None:
                f.read()

"""assembler.image.layer: reproducible layer blobs."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zlib
from pathlib import Path

import pytest
import zstandard
from zlib_ng import gzip_ng

from assembler.image.layer import GZIP_BLOCK, ParallelGzipWriter, write_layer
from assembler.rootfs.tree import Tree

SDE = 1_700_000_000

FILES = [
    ("usr/bin/hello", b"#!/bin/sh\necho hello\n", 0o755, 1_800_000_000),  # newer than SDE
    ("usr/share/doc/hello/copyright", b"GPL" * 1000, 0o644, 1_500_000_000),
    ("etc/hello.conf", b"greeting=hi\n", 0o640, None),
    ("usr/lib/" + "long-name-" * 15 + "/x", b"deep", 0o644, 0),  # > 100 chars: PAX path
    ("usr/share/ünïcode", b"u", 0o644, 1),
]


def build(order: list[int] | None = None) -> Tree:
    t = Tree(merged_usr=True)
    items = [FILES[i] for i in order] if order else FILES
    for path, data, mode, mtime in items:
        t.add_file(path, data, mode, origin="hello", mtime=mtime)
    t.add_symlink("usr/bin/hi", "hello", origin="hello")
    t.add_hardlink("usr/bin/hello2", "usr/bin/hello", origin="hello")
    t.add_dir("tmp", mode=0o1777)
    t.add_dir("home/nonroot", mode=0o700, uid=65532, gid=65532)
    return t


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_same_tree_twice_same_digest(tmp_path: Path, compression: str) -> None:
    with build() as a, build([4, 3, 2, 1, 0]) as b:
        la = write_layer(a, tmp_path / "a", compression, SDE)
        lb = write_layer(b, tmp_path / "b", compression, SDE)
    assert la.digest == lb.digest and la.diff_id == lb.diff_id
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    blob = (tmp_path / "a").read_bytes()
    assert la.size == len(blob)
    assert la.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    suffix = {"gzip": "+gzip", "zstd": "+zstd", "none": ""}[compression]
    assert la.media_type == "application/vnd.oci.image.layer.v1.tar" + suffix


def _plain(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return data


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_diff_id_is_uncompressed_digest(tmp_path: Path, compression: str) -> None:
    with build() as t:
        layer = write_layer(t, tmp_path / "l", compression, SDE)
    assert layer.diff_id == "sha256:" + hashlib.sha256(_plain(tmp_path / "l")).hexdigest()


def test_gzip_header_is_fixed(tmp_path: Path) -> None:
    with build() as t:
        write_layer(t, tmp_path / "layer.tar.gz", "gzip", SDE)
    head = (tmp_path / "layer.tar.gz").read_bytes()[:10]
    assert head[:3] == b"\x1f\x8b\x08"
    assert head[3] == 0  # flags: no FNAME, no FEXTRA, no comment
    assert head[4:8] == b"\0\0\0\0"  # mtime 0
    assert head[8] == 0  # XFL: no level hint, whatever GZIP_LEVEL is
    assert head[9] == 255  # OS "unknown", same everywhere


def test_tar_contents(tmp_path: Path) -> None:
    with build() as t:
        write_layer(t, tmp_path / "l", "none", SDE)
    with tarfile.open(tmp_path / "l") as tf:
        members = tf.getmembers()
        names = [m.name for m in members]
        by = {m.name: m for m in members}
        assert names.index("usr") < names.index("usr/bin") < names.index("usr/bin/hello")
        for m in members:
            assert m.uname == "" and m.gname == ""
            assert m.mtime <= SDE
            assert not {"mtime", "atime", "ctime"} & set(m.pax_headers)
        assert by["usr/bin/hello"].mtime == SDE  # clamped
        assert by["usr/share/doc/hello/copyright"].mtime == 1_500_000_000  # kept
        assert by["etc/hello.conf"].mtime == SDE  # no own time
        assert by["etc/hello.conf"].mode == 0o640
        assert by["tmp"].mode == 0o1777
        assert (by["home/nonroot"].uid, by["home/nonroot"].gid) == (65532, 65532)
        assert by["bin"].issym() and by["bin"].linkname == "usr/bin"
        assert by["usr/bin/hi"].issym()
        # usr/bin/hello sorts first, so it carries the data and hello2 links to it.
        assert by["usr/bin/hello"].isreg() and by["usr/bin/hello2"].islnk()
        assert by["usr/bin/hello2"].linkname == "usr/bin/hello"
        assert "usr/share/ünïcode" in by
        long = "usr/lib/" + "long-name-" * 15 + "/x"
        assert tf.extractfile(long).read() == b"deep"  # type: ignore[union-attr]


def test_hardlink_sorting_before_its_target(tmp_path: Path) -> None:
    with Tree() as t:
        t.add_file("usr/bin/z-real", b"data", 0o755)
        t.add_hardlink("usr/bin/a-link", "usr/bin/z-real")
        write_layer(t, tmp_path / "l", "none", SDE)
    with tarfile.open(tmp_path / "l") as tf:
        a = tf.getmember("usr/bin/a-link")
        z = tf.getmember("usr/bin/z-real")
        assert a.isreg() and z.islnk() and z.linkname == "usr/bin/a-link"
        assert tf.extractfile(z).read() == b"data"  # type: ignore[union-attr]


def test_different_sde_changes_digest(tmp_path: Path) -> None:
    with build() as t:
        a = write_layer(t, tmp_path / "a", "gzip", SDE)
        b = write_layer(t, tmp_path / "b", "gzip", SDE + 1)
    assert a.digest != b.digest


def test_subset_layer_includes_parents(tmp_path: Path) -> None:
    with build() as t:
        write_layer(t, tmp_path / "l", "none", SDE, paths=["usr/share/doc/hello/copyright"])
    with tarfile.open(tmp_path / "l") as tf:
        assert tf.getnames() == [
            "usr",
            "usr/share",
            "usr/share/doc",
            "usr/share/doc/hello",
            "usr/share/doc/hello/copyright",
        ]


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(entry: object) -> None:
        raise OSError("disk on fire")

    with build() as t:
        monkeypatch.setattr(t, "open_entry", boom)
        with pytest.raises(OSError, match="disk on fire"):
            write_layer(t, tmp_path / "l", "gzip", SDE)
    assert list(tmp_path.iterdir()) == []


def _pgzip(data: bytes, threads: int, pieces: int = 7) -> bytes:
    out = io.BytesIO()
    with ParallelGzipWriter(out, threads=threads) as gz:
        step = max(1, len(data) // pieces)
        for i in range(0, len(data), step):
            gz.write(data[i:i + step])
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, GZIP_BLOCK - 1, GZIP_BLOCK, 3 * GZIP_BLOCK + 12345])
def test_parallel_gzip_is_one_valid_member_independent_of_threads(size: int) -> None:
    # Compressible but not trivial: repeated text with a counter, across block edges.
    data = b"".join(b"line %d of a layer\n" % i for i in range(size // 16 + 1))[:size]
    one = _pgzip(data, threads=1)
    assert _pgzip(data, threads=4, pieces=3) == one
    assert gzip.decompress(one) == data
    # One member: the trailer's CRC and size are the whole input's.
    assert int.from_bytes(one[-8:-4], "little") == zlib.crc32(data)
    assert int.from_bytes(one[-4:], "little") == size


def test_parallel_gzip_matches_a_single_stream_in_size() -> None:
    data = b"".join(b"%08d some text that repeats a bit %d\n" % (i, i % 97)
                    for i in range(200_000))
    ours = len(_pgzip(data, threads=2))
    # Against one stream of the same deflate: what cutting into blocks costs.
    single = len(gzip_ng.compress(data, 5))
    assert ours <= single * 1.01

"""The unpacked-package cache: written once, read back exactly, never trusted when damaged."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from assembler.cache import Cache
from assembler.fetch.unpacked import unpacked
from assembler.image.layer import write_layer
from assembler.rootfs.tree import Tree

SHA = "ab" * 32


def _data_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        def add(name: str, kind: bytes, data: bytes = b"", link: str = "", mode: int = 0o644):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.linkname = kind, mode, 1_700_000_000, link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tf.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        add("./usr/", tarfile.DIRTYPE, mode=0o755)
        add("./usr/bin/", tarfile.DIRTYPE, mode=0o755)
        add("./usr/bin/tool", tarfile.REGTYPE, b"#!tool\n" * 1000, mode=0o4755)
        add("./usr/bin/alias", tarfile.SYMTYPE, link="tool")
        add("./usr/bin/hard", tarfile.LNKTYPE, link="./usr/bin/tool")
        add("./usr/share/empty", tarfile.REGTYPE, b"")
        add("./dev/null", tarfile.CHRTYPE)
    return buf.getvalue()


def _members(data: bytes) -> Iterator[tuple[tarfile.TarInfo, io.BufferedReader | None]]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tf:
        for info in tf:
            yield info, tf.extractfile(info) if info.isreg() else None


def _never() -> Iterator:
    raise AssertionError("a cache hit must not read the package")


def test_second_use_reads_only_the_cache_and_gives_the_same_table(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    data = _data_tar()
    first = unpacked(cache, SHA, lambda: _members(data), lambda: {"control": b"Package: x\n"})
    again = unpacked(cache, SHA, _never, _never)
    assert again.members == first.members
    assert again.extras == {"control": b"Package: x\n"}
    blob = again.path.read_bytes()
    tool = next(m for m in again.members if m[0] == "./usr/bin/tool")
    assert blob[tool[8]:tool[8] + tool[5]] == b"#!tool\n" * 1000


def test_damaged_cache_file_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    data = _data_tar()
    first = unpacked(cache, SHA, lambda: _members(data), lambda: {"control": b"c"})
    whole = first.path.read_bytes()
    first.path.write_bytes(whole[: len(whole) // 2])   # e.g. a power cut mid-write
    calls = []

    def members() -> Iterator:
        calls.append(1)
        return _members(data)

    again = unpacked(cache, SHA, members, lambda: {"control": b"c"})
    assert calls == [1]
    assert again.members == first.members
    assert again.path.read_bytes() == whole


def test_failure_while_unpacking_leaves_no_entry(tmp_path: Path) -> None:
    cache = Cache(tmp_path)

    def broken() -> Iterator:
        yield from list(_members(_data_tar()))[:2]
        raise OSError("disk went away")

    with pytest.raises(OSError):
        unpacked(cache, SHA, broken, lambda: {})
    assert [p.name for p in (tmp_path / "unpacked").rglob("*") if p.is_file()] == []


def test_tree_from_cache_equals_tree_from_the_tar(tmp_path: Path) -> None:
    data = _data_tar()
    with Tree(merged_usr=True) as direct:
        direct.add_tar(_members(data), "pkg")
        a = write_layer(direct, tmp_path / "a", "none", 1_800_000_000)
    got = unpacked(Cache(tmp_path / "c"), SHA, lambda: _members(data), lambda: {})
    with Tree(merged_usr=True) as cached:
        store = cached.attach(got.path)
        for m in got.members:
            cached.add_member(m, store, "pkg")
        b = write_layer(cached, tmp_path / "b", "none", 1_800_000_000)
        assert cached.warnings == direct.warnings
        assert any("setuid" in w for w in cached.warnings)
        assert any("device node" in w for w in cached.warnings)
    assert a.digest == b.digest

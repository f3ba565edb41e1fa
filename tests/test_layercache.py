"""assembler.image.layercache: layers reused by content key, never wrongly, never damaged."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from test_layer import SDE, build

from assembler.cache import Cache
from assembler.image import layer as layer_module
from assembler.image.layer import write_layer
from assembler.image.layercache import LayerCache
from assembler.rootfs.tree import Entry


def _key(entries: list[Entry], compression: str = "gzip", sde: int = SDE) -> str | None:
    return layer_module._key(entries, compression, sde)  # type: ignore[arg-type]


def test_every_field_that_reaches_the_bytes_changes_the_key():
    with build() as t:
        entries = t.entries()
    base = _key(entries)
    assert base == _key([dataclasses.replace(e) for e in entries])   # same inputs, same key
    target = next(i for i, e in enumerate(entries) if e.path == "usr/bin/hello")
    changes = [{"path": "usr/bin/hellp"}, {"mode": 0o700}, {"uid": 1}, {"gid": 1},
               {"size": 1}, {"sha256": "0" * 64}, {"mtime": 1_600_000_000},
               {"kind": "hardlink", "link": "usr/bin/hi"}]
    keys = {base}
    for change in changes:
        changed = list(entries)
        changed[target] = dataclasses.replace(entries[target], **change)
        keys.add(_key(changed))
    keys |= {_key(entries, "zstd"), _key(entries, "none"), _key(entries[:-1]),
             _key(entries, sde=SDE - 10**8)}
    assert len(keys) == len(changes) + 5   # all distinct


def test_a_file_without_a_content_hash_is_never_cached():
    with build() as t:
        entries = t.entries()
    i = next(i for i, e in enumerate(entries) if e.kind == "file")
    entries[i] = dataclasses.replace(entries[i], sha256="")
    assert _key(entries) is None


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_second_write_reuses_the_blob_and_a_damaged_one_is_rebuilt(tmp_path: Path, monkeypatch,
                                                                  compression: str):
    cache = LayerCache(Cache(tmp_path / "cache"))
    with build() as t:
        uncached = write_layer(t, tmp_path / "plain", compression, SDE)
        first = write_layer(t, tmp_path / "a", compression, SDE, cache=cache)
    assert (first.digest, first.diff_id, first.size) == \
        (uncached.digest, uncached.diff_id, uncached.size)
    assert first.path.read_bytes() == (tmp_path / "plain").read_bytes()
    assert not (tmp_path / "a").exists()                 # the blob went straight to the cache

    def no_stream(*a, **k):
        raise AssertionError("rewrote a cached layer")

    with monkeypatch.context() as m, build() as t:
        m.setattr(layer_module, "_stream", no_stream)
        again = write_layer(t, tmp_path / "b", compression, SDE, cache=cache)
    assert again == first

    data = bytearray(first.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    first.path.write_bytes(bytes(data))
    with build() as t:
        rebuilt = write_layer(t, tmp_path / "c", compression, SDE, cache=cache)
    assert rebuilt == first and rebuilt.path.read_bytes() == (tmp_path / "plain").read_bytes()


def test_a_changed_tree_is_not_served_the_old_layer(tmp_path: Path):
    cache = LayerCache(Cache(tmp_path / "cache"))
    with build() as t:
        old = write_layer(t, tmp_path / "a", "gzip", SDE, cache=cache)
    with build() as t:
        t.add_file("etc/hello.conf", b"greeting=bye\n", 0o640, origin="x", replace=True)
        new = write_layer(t, tmp_path / "b", "gzip", SDE, cache=cache)
        plain = write_layer(t, tmp_path / "p", "gzip", SDE)
    assert new.digest != old.digest and new.digest == plain.digest


def test_a_damaged_record_is_a_miss_not_a_path(tmp_path: Path):
    cache = LayerCache(Cache(tmp_path / "cache"))
    with build() as t:
        first = write_layer(t, tmp_path / "a", "gzip", SDE, cache=cache)
    (record,) = (tmp_path / "cache" / "layers").glob("*.json")
    record.write_text(record.read_text().replace(first.digest, "sha256:../../../etc/passwd"))
    with build() as t:
        again = write_layer(t, tmp_path / "b", "gzip", SDE, cache=cache)
    assert again == first and first.digest in record.read_text()

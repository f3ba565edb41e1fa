"""assembler.image.blockcache: a layer that changed in one place deflates only the blocks
around the change, and the bytes are those of a layer written without any cache."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from assembler.cache import Cache
from assembler.image import layer as layer_module
from assembler.image.layer import CUT_EVERY, MIN_CUT, cuts_before, write_layer
from assembler.image.layercache import LayerCache
from assembler.rootfs.tree import Tree

SDE = 1_700_000_000


def _tree(skip: int | None = None, changed: int | None = None) -> Tree:
    """~12 MB in 300 files of random (incompressible) and text (compressible) bytes."""
    rng = random.Random(7)
    t = Tree(merged_usr=True)
    for i in range(300):
        size = rng.randrange(10_000, 70_000)
        data = rng.randbytes(size) if i % 3 else (b"line %d of file %d\n" % (i, i)) * (size // 20)
        if i == changed:
            data = b"new" + data[3:]
        if i != skip:
            t.add_file(f"usr/share/f{i:03}", data, 0o644, origin="p", mtime=SDE)
    return t


@pytest.fixture
def deflated(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every block actually deflated (not taken from the block cache)."""
    sizes: list[int] = []
    real = layer_module.deflate_block

    def counting(data: bytes, dictionary: bytes, level: int) -> bytes:
        sizes.append(len(data))
        return real(data, dictionary, level)

    monkeypatch.setattr(layer_module, "deflate_block", counting)
    return sizes


def test_boundaries_are_content_defined():
    names = [f"usr/share/f{i:03}" for i in range(2000)]
    share = sum(cuts_before(n) for n in names) / len(names)
    assert 0.5 / CUT_EVERY < share < 2 / CUT_EVERY
    assert MIN_CUT < layer_module.GZIP_BLOCK


@pytest.mark.parametrize("change", [{"skip": 150}, {"changed": 150}])
def test_a_change_deflates_only_nearby_blocks(tmp_path: Path, deflated: list[int],
                                              change: dict[str, int]):
    cache = LayerCache(Cache(tmp_path / "cache"))
    with _tree() as t:
        write_layer(t, tmp_path / "unused", "gzip", SDE, cache=cache)
    total = sum(deflated)
    deflated.clear()
    with _tree(**change) as t:
        again = write_layer(t, tmp_path / "unused", "gzip", SDE, cache=cache)
        redone = sum(deflated)
        plain = write_layer(t, tmp_path / "plain", "gzip", SDE)   # no cache at all
    # The change's blocks were deflated again, and only those: the rest came from the
    # first layer's blob.
    assert 0 < redone < total / 4, (redone, total)
    assert again.path.read_bytes() == (tmp_path / "plain").read_bytes()
    assert again.digest == plain.digest and again.diff_id == plain.diff_id
    assert gzip.decompress(again.path.read_bytes())[:512]


def test_a_damaged_blob_is_deflated_again_not_copied(tmp_path: Path, deflated: list[int]):
    cache = LayerCache(Cache(tmp_path / "cache"))
    with _tree() as t:
        first = write_layer(t, tmp_path / "unused", "gzip", SDE, cache=cache)
    data = bytearray(first.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    first.path.write_bytes(bytes(data))
    deflated.clear()
    with _tree(changed=10) as t:
        again = write_layer(t, tmp_path / "unused", "gzip", SDE, cache=cache)
        write_layer(t, tmp_path / "plain", "gzip", SDE)
    assert again.path.read_bytes() == (tmp_path / "plain").read_bytes()
    gzip.decompress(again.path.read_bytes())   # whole and valid

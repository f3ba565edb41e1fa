"""Deflated gzip blocks of earlier layers, reused when a new layer holds the same bytes.

A gzip layer is deflated in blocks (image/layer.py), each primed with the 32 KiB
before it, so a block's compressed bytes are a function of the level, that
dictionary and the block's own bytes (and of the deflate implementation,
image/deflate.py, which the key names too). Block boundaries follow the tar members
(content-defined, not fixed offsets), so a layer that gained or lost a package
has the same blocks as before except around the change. A block is found by a
digest of (level, dictionary, data); its record names where its bytes already
lie, in a layer blob of the cache, so nothing is stored twice. Every hit is read
back and checked against the record's sha256: a damaged or vanished blob is a
miss, and the block is deflated again.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import suppress
from pathlib import Path

from assembler.cache import Cache, atomic_writer, is_sha256
from assembler.errors import DiskError
from assembler.image.deflate import IDENTITY

# Bump when the record's layout changes.
FORMAT = 1


def block_key(level: int, dictionary: bytes, data: bytes) -> str:
    h = hashlib.sha256(b"deflate-block %d %s %d %d\n" % (FORMAT, IDENTITY.encode(), level,
                                                          len(dictionary)))
    h.update(dictionary)
    h.update(data)
    return h.hexdigest()


class BlockCache:
    """`gzblocks/<key>` -> (layer blob, offset, size, sha256) of a block's deflated bytes."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    def _record_path(self, key: str) -> Path:
        return self.cache.derived_path("gzblocks", f"{key[:2]}/{key}")

    def get(self, key: str) -> bytes | None:
        """The deflated bytes recorded under `key`, verified; None when there are none."""
        try:
            doc = json.loads(self._record_path(key).read_bytes())
            blob, offset, size, sha = (str(doc["blob"]), int(doc["offset"]), int(doc["size"]),
                                       str(doc["sha256"]))
            if not is_sha256(blob) or offset < 0 or not 0 < size <= 64 << 20:
                return None
            fd = os.open(self.cache.blob_path(blob), os.O_RDONLY)
            try:
                data = os.pread(fd, size, offset)
            finally:
                os.close(fd)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        return data if hashlib.sha256(data).hexdigest() == sha else None

    def record(self, blob_digest: str, placed: list[tuple[str, int, int, str]]) -> None:
        """Note where each (key, offset, size, sha256) block lies in the stored blob; a
        record that cannot be written only costs a later build a deflate."""
        blob = blob_digest.removeprefix("sha256:")
        for key, offset, size, sha in placed:
            doc = {"blob": blob, "offset": offset, "size": size, "sha256": sha}
            with suppress(OSError, DiskError), \
                    atomic_writer(self._record_path(key), durable=False) as f:
                f.write(json.dumps(doc, sort_keys=True).encode())

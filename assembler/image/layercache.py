"""Layer blobs reused across builds, found by a digest of everything that reaches their bytes.

A layer's bytes are a function of its entries (paths, kinds, modes, owners,
sizes, link targets, content hashes, clamped mtimes), the compression and its
parameters, and the code that writes the tar. `layer_key` digests exactly
that, canonically serialised, with a format version and the writer's own
source, so two different layers cannot share a key short of a sha256
collision. The blob itself lives in the cache's content-addressed blob store;
`layers/<key>.json` records which blob a key made. Every hit re-hashes the
blob before use: a damaged one is deleted and the layer rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from assembler import __version__
from assembler.cache import Cache, atomic_write, is_sha256, sha256_file

# Bump when anything about the key's serialisation changes.
FORMAT = 1
_WRITER = Path(__file__).with_name("layer.py")


@dataclass(frozen=True)
class Recorded:
    """What a key made: the blob's digest, its plain tar's diff_id, size and media type."""

    digest: str
    diff_id: str
    size: int
    media_type: str

    @staticmethod
    def from_json(doc: dict) -> Recorded:
        """Read back a record; ValueError if it is not one (a damaged cache file)."""
        found = Recorded(str(doc["digest"]), str(doc["diff_id"]), int(doc["size"]),
                         str(doc["media_type"]))
        for d in (found.digest, found.diff_id):
            if not (d.startswith("sha256:") and is_sha256(d.removeprefix("sha256:"))):
                raise ValueError(f"{d[:80]!r} is not a sha256 digest")
        return found


def _writer_digest() -> str:
    # The writer's code decides the bytes as much as the entries do, and a
    # development tree changes it without changing the version.
    return hashlib.sha256(_WRITER.read_bytes()).hexdigest()


def layer_key(rows: list[list[object]], compression: str, params: dict[str, object]) -> str:
    """The content key of a layer whose members are `rows`: per entry, the tar header
    fields the writer will emit plus the entry's kind, link and content hash."""
    doc = {"format": FORMAT, "assembler": __version__, "writer": _writer_digest(),
           "python": list(sys.version_info[:2]), "compression": compression,
           "params": params, "entries": rows}
    # ASCII escapes keep non-UTF-8 names (surrogate-escaped bytes) distinct and encodable.
    data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(data.encode()).hexdigest()


class LayerCache:
    """`layers/<key>.json` -> a blob in the content-addressed store, verified on every use."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    def _record_path(self, key: str) -> Path:
        return self.cache.derived_path("layers", key + ".json")

    def blob_path(self, digest: str) -> Path:
        return self.cache.blob_path(digest.removeprefix("sha256:"))

    def get(self, key: str) -> Recorded | None:
        """The layer `key` made, if its blob is still intact; else None (and forget it)."""
        path = self._record_path(key)
        try:
            found = Recorded.from_json(json.loads(path.read_bytes()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if self.intact(found) is None:
            with suppress(OSError):
                path.unlink()
            return None
        return found

    def intact(self, found: Recorded) -> Path | None:
        """The blob `found` names, if it is there with its recorded hash; a damaged one goes."""
        blob = self.blob_path(found.digest)
        try:
            if blob.stat().st_size == found.size and "sha256:" + sha256_file(blob) == found.digest:
                return blob
        except OSError:
            return None
        with suppress(OSError):
            blob.unlink()
        return None

    @contextmanager
    def writing(self) -> Iterator[tuple[IO[bytes], Path] | None]:
        """A temporary file inside the cache (so `put` is a rename, not a copy); None
        when the cache takes no new files (read-only): the caller writes uncached."""
        tmp_dir = self.cache.root / "layers"
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=tmp_dir, prefix=".tmp-", suffix=".layer")
        except OSError:
            yield None
            return
        try:
            with os.fdopen(fd, "wb") as f:
                yield f, Path(name)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(name)
            raise

    def put(self, key: str, written: Path, recorded: Recorded) -> Path:
        """Move the finished blob into the store and record it under `key`."""
        blob = self.blob_path(recorded.digest)
        blob.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(written, 0o644)
        os.replace(written, blob)
        with suppress(OSError):   # unrecorded, the blob is still this build's layer
            atomic_write(self._record_path(key),
                         json.dumps(recorded.__dict__, sort_keys=True).encode())
        return blob

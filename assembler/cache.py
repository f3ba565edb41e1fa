"""The on-disk cache: content addressed, written atomically, verified on the way in.

A file only ever appears under its final name after it was fully written,
fsynced and its hash checked, so an interrupted run can leave at most a stray
temporary file (ignored, and swept on the next write), never a poisoned entry.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from assembler.errors import IntegrityError


def default_cache_dir() -> Path:
    env = os.environ.get("ASSEMBLER_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "assembler"


@contextmanager
def atomic_writer(path: Path, mode: int = 0o644, durable: bool = True) -> Iterator[IO[bytes]]:
    """Write to a temp file beside `path`, rename over it only if the block succeeds.

    `durable=False` skips the fsync: only for entries whose reader validates
    them (a power cut may leave such a file empty, never a killed process).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix="." + path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    with atomic_writer(path, mode) as f:
        f.write(data)



class Cache:
    """`root/blobs/sha256/<hex>` holds downloaded files; `root/<kind>/` derived data."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else default_cache_dir()

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / "sha256" / sha256[:2] / sha256

    def has_blob(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()

    def get_blob(self, sha256: str) -> bytes | None:
        try:
            return self.blob_path(sha256).read_bytes()
        except FileNotFoundError:
            return None

    def put_blob(self, data: bytes, sha256: str | None = None, what: str = "data") -> Path:
        """Store `data`; if `sha256` is given it must match, else nothing is stored."""
        actual = hashlib.sha256(data).hexdigest()
        if sha256 is not None and actual != sha256:
            raise IntegrityError(
                f"{what}: sha256 is {actual}, expected {sha256}; refusing to use or cache it."
            )
        path = self.blob_path(actual)
        if not path.exists():
            atomic_write(path, data)
        return path

    def derived_path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}"

"""The on-disk cache: content addressed, written atomically, verified on the way in.

A file only ever appears under its final name after it was fully written,
fsynced and its hash checked, so an interrupted run can leave at most a stray
temporary file (ignored, and swept on the next write), never a poisoned entry.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import marshal
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from assembler.errors import DiskError, IntegrityError, MalformedError
from assembler.untrusted import is_sha256


def default_cache_dir() -> Path:
    env = os.environ.get("ASSEMBLER_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "assembler"


# What a write fails with when the machine, not the input, is at fault.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                         errno.EIO})
TEMP_PREFIX = ".tmp-"
# A temp file untouched this long belongs to no running build (each write renews it).
STALE_AFTER = 24 * 3600


def disk_error(e: OSError, path: Path | str, doing: str = "write") -> DiskError:
    return DiskError(f"cannot {doing} {path}: {e.strerror or e}. The disk is full, read-only "
                     "or not usable by this user; free space or pass --cache-dir DIR (or -o) "
                     "on a writable disk. Nothing was retried.")


@contextmanager
def atomic_writer(path: Path, mode: int = 0o644, durable: bool = True) -> Iterator[IO[bytes]]:
    """Write to a temp file beside `path`, rename over it only if the block succeeds.

    `durable=False` skips the fsync: only for entries whose reader validates
    them (a power cut may leave such a file empty, never a killed process).
    A full or read-only disk is a DiskError naming `path`.
    """
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix="." + path.name)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            with suppress(OSError):
                os.unlink(tmp)
        if isinstance(e, OSError) and e.errno in DISK_ERRNOS:
            raise disk_error(e, path) from None
        raise


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    with atomic_writer(path, mode) as f:
        f.write(data)



def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_SEAL = struct.Struct("<Q8s")   # length of what precedes, magic
_SEAL_MAGIC = b"ASMSEAL1"


def sealed(value: Any) -> bytes:
    """`value` marshalled, with the seal Cache.load_parsed checks."""
    data = marshal.dumps(value)
    return data + _SEAL.pack(len(data), _SEAL_MAGIC)


class Cache:
    """`root/blobs/sha256/<hex>` holds downloaded files; `root/<kind>/` derived data."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else default_cache_dir()

    def blob_path(self, sha256: str) -> Path:
        # The digest comes from an index or a lock: never let it be a path.
        if not is_sha256(sha256):
            raise MalformedError(f"{str(sha256)[:80]!r} is not a sha256 (64 lowercase hex "
                                 "digits); it cannot name a cache entry.")
        return self.root / "blobs" / "sha256" / sha256[:2] / sha256

    def has_blob(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()

    def get_blob(self, sha256: str) -> bytes | None:
        try:
            return self.blob_path(sha256).read_bytes()
        except FileNotFoundError:
            return None

    def pointed_blob(self, pointer: Path) -> bytes | None:
        """The blob a pointer file names; None when either is missing or damaged."""
        try:
            digest = pointer.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return self.get_blob(digest) if is_sha256(digest) else None

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
        parts = key.split("/")
        if any(p in ("", ".", "..") for p in parts) or "\\" in key or "\0" in key:
            raise MalformedError(f"{key[:80]!r} cannot name a cache entry.")
        return self.root / kind / key

    # Parsed indexes: marshal data sealed with its length, so a file cut short (a full
    # disk, a crash of the machine) is found, discarded and rebuilt, never loaded.
    def store_parsed(self, path: Path, value: Any) -> None:
        atomic_write(path, sealed(value))

    def load_parsed(self, path: Path) -> object | None:
        """The value stored at `path`, or None when it is missing or damaged (then deleted)."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        if len(raw) >= _SEAL.size:
            length, magic = _SEAL.unpack_from(raw, len(raw) - _SEAL.size)
            if magic == _SEAL_MAGIC and length == len(raw) - _SEAL.size:
                try:
                    return marshal.loads(memoryview(raw)[:length])
                except (EOFError, ValueError, TypeError):
                    pass
        with suppress(OSError):
            path.unlink()
        return None

    def sweep(self, max_age: float = STALE_AFTER) -> int:
        """Delete temp files older than `max_age` that killed runs left; at most hourly
        (the cache root's mtime, touched after each sweep, says when the last one was)."""
        try:
            if time.time() - self.root.stat().st_mtime < 3600:
                return 0
        except OSError:
            return 0
        n = sweep_temps(self.root, (TEMP_PREFIX + "*",), max_age, recursive=True)
        with suppress(OSError):
            os.utime(self.root)
        return n

    def unpacked_path(self, sha256: str, version: int) -> Path:
        self.blob_path(sha256)   # the same check: a sha256, never a path
        return self.derived_path("unpacked", f"{sha256[:2]}/{sha256}.v{version}")


def sweep_temps(directory: Path, patterns: tuple[str, ...], max_age: float = STALE_AFTER,
                recursive: bool = False) -> int:
    """Remove entries of `directory` whose name matches one of the glob `patterns` and
    unmodified for `max_age` seconds (a directory is as new as anything in it)."""
    cutoff = time.time() - max_age
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        try:
            if any(fnmatch.fnmatchcase(entry.name, p) for p in patterns):
                if _newest_mtime(entry) < cutoff:
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)
                    removed += 1
            elif recursive and entry.is_dir(follow_symlinks=False):
                removed += sweep_temps(Path(entry.path), patterns, max_age, recursive)
        except OSError:
            continue   # a read-only cache, a race with another sweep: not this run's problem
    return removed


def _newest_mtime(entry: os.DirEntry) -> float:
    newest = entry.stat(follow_symlinks=False).st_mtime
    if entry.is_dir(follow_symlinks=False):
        for root, dirs, files in os.walk(entry.path):
            for name in dirs + files:
                with suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest

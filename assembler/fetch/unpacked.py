"""Packages unpacked once into the cache, so a warm build never decompresses them again.

A package file (.deb, .apk) is compressed with xz or gzip; decompressing and
parsing its data tar is most of a warm build's time. The first build that
uses a package writes one cache file beside the package blob:

    [every regular member's bytes, back to back][marshal(table)][trailer]

where the table lists each member (path, type, mode, owner, size, link
target, mtime, offset of its bytes, sha256, md5) plus the format's extras
(the .deb control file). Later builds read only the table and let the rootfs
tree point into the file, so no member's bytes are copied, hashed or
decompressed again. The file is keyed by the package's verified sha256 and
a format version, written atomically like every cache entry, and validated
by its trailer when read; a damaged one is rebuilt rather than trusted.

The table keeps names exactly as the package has them: the tree still
normalizes, checks and rejects hostile entries on every build.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import struct
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO

from assembler.cache import Cache, atomic_writer
from assembler.rootfs.tree import owner_of

# 2: member names are decoded as UTF-8 whatever the locale; a version 1 entry
# written under a non-UTF-8 locale holds mis-decoded names, so none is trusted.
# 3: owners are mapped from the tar's names as dpkg does (rootfs.owner_of).
FORMAT = 3
_MAGIC = b"ASMUNPK1"
_TRAILER = struct.Struct("<Q8s")   # table offset, magic
_CHUNK = 1 << 20

# Member kinds in the table (tar's own type letters, narrowed to what matters).
FILE, DIR, SYMLINK, HARDLINK, OTHER = "f", "d", "l", "h", "?"

# (name, kind, mode, uid, gid, size, link, mtime, offset, sha256, md5, tar type)
Member = tuple[str, str, int, int, int, int, str, int, int, str, str, bytes]


@dataclass
class Unpacked:
    """One package's members; regular files' bytes live in `path` at their offsets."""

    path: Path
    members: list[Member]
    extras: dict[str, bytes] = field(default_factory=dict)


def _kind(info: tarfile.TarInfo) -> str:
    if info.isreg():
        return FILE
    if info.isdir():
        return DIR
    if info.issym():
        return SYMLINK
    if info.islnk():
        return HARDLINK
    return OTHER


def _write(dest: Path, members: Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]],
           extras: dict[str, bytes]) -> list[Member]:
    table: list[Member] = []
    # No fsync: _read checks the trailer, so a file cut short by a power loss
    # is rebuilt, and 100+ fsyncs of a cold build's 150 MB cost real time.
    with atomic_writer(dest, durable=False) as out:
        offset = 0
        for info, f in members:
            kind = _kind(info)
            sha = md5 = ""
            size = 0
            start = offset
            if kind == FILE and f is not None:
                h = hashlib.sha256()
                m = hashlib.md5(usedforsecurity=False)
                for chunk in iter(partial(f.read, _CHUNK), b""):
                    h.update(chunk)
                    m.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                offset += size
                sha, md5 = h.hexdigest(), m.hexdigest()
            elif kind == FILE:
                sha = hashlib.sha256(b"").hexdigest()
                md5 = hashlib.md5(b"", usedforsecurity=False).hexdigest()
            uid, gid = owner_of(info)
            table.append((info.name, kind, info.mode, uid, gid, size, info.linkname,
                          int(info.mtime), start, sha, md5, info.type))
        blob = marshal.dumps((FORMAT, table, extras))
        out.write(blob)
        out.write(_TRAILER.pack(offset, _MAGIC))
    return table


def _read(path: Path) -> tuple[list[Member], dict[str, bytes]] | None:
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            if end < _TRAILER.size:
                return None
            f.seek(end - _TRAILER.size)
            table_at, magic = _TRAILER.unpack(f.read(_TRAILER.size))
            if magic != _MAGIC or table_at > end - _TRAILER.size:
                return None
            f.seek(table_at)
            version, table, extras = marshal.loads(f.read(end - _TRAILER.size - table_at))
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if version != FORMAT:
        return None
    return table, extras


def is_unpacked(cache: Cache, sha256: str) -> bool:
    """Does a whole unpacked entry exist (its trailer checked, not its table read)?"""
    try:
        with open(cache.unpacked_path(sha256, FORMAT), "rb") as f:
            end = f.seek(0, os.SEEK_END)
            if end < _TRAILER.size:
                return False
            f.seek(end - _TRAILER.size)
            table_at, magic = _TRAILER.unpack(f.read(_TRAILER.size))
    except OSError:
        return False
    return magic == _MAGIC and table_at <= end - _TRAILER.size


def unpacked(cache: Cache, sha256: str,
             open_members: Callable[[], Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]],
             read_extras: Callable[[], dict[str, bytes]]) -> Unpacked:
    """The package with blob `sha256`, unpacked (from the cache, or now and then cached).

    `open_members` streams the package's data tar; `read_extras` returns the
    format's metadata files. Both are only called on a miss.
    """
    dest = cache.unpacked_path(sha256, FORMAT)
    got = _read(dest) if dest.is_file() else None
    if got is None:
        extras = read_extras()
        table = _write(dest, open_members(), extras)
        return Unpacked(dest, table, extras)
    table, extras = got
    return Unpacked(dest, table, extras)

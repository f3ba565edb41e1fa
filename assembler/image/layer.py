"""Writing a rootfs Tree as an OCI layer blob, bit-for-bit reproducibly.

Everything that could leak the build machine into the bytes is pinned:

* entry order is the tree's component-wise sort (parents before children),
  never insertion or directory-listing order;
* owners are numeric with empty user/group names, so the host's passwd
  database plays no part; modes come from the tree, never from the umask;
* mtimes are clamped to SOURCE_DATE_EPOCH (min(mtime, sde)), as
  reproducible-builds.org specifies, and written as integers, so no PAX
  mtime/atime/ctime records appear;
* PAX headers appear only where ustar cannot hold a value (long or
  non-ASCII names), and their own header fields are constant;
* gzip gets mtime 0, no file name, a fixed level and block boundaries that
  depend on the tar's bytes and member names alone (blocks are deflated in
  parallel, or reused from the block cache, but the bytes never depend on the
  thread count or the cache); zstd a fixed level, one thread, no content size.

The tar is streamed: tar -> sha256 (diff_id) -> compressor -> sha256
(digest) -> temporary file, renamed into place only once complete.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tarfile
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import zstandard

from assembler.cache import atomic_writer
from assembler.errors import SpecError
from assembler.image.blockcache import BlockCache, block_key
from assembler.image.deflate import IDENTITY, crc32, deflate_block
from assembler.image.layercache import LayerCache, Recorded, layer_key
from assembler.rootfs.tree import Entry, Tree

Compression = Literal["gzip", "zstd", "none"]

MEDIA_TYPES: dict[str, str] = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}

# Measured on the 147 MB layer of include-essential python3, deflated as below (1 MiB
# blocks, each primed with the 32 KiB before it), one core, 2026-12-01:
#   zlib 1:    1.35 s, 35.6% of input     zlib-ng 3: 1.02 s, 33.9%
#   zlib 5:    2.56 s, 32.3%              zlib-ng 5: 1.35 s, 33.0%
#   zlib 6:    4.12 s, 32.0%              zlib-ng 6: 1.63 s, 32.9%
#   ISA-L 3:   0.38 s, 35.4% (its bytes depend on the CPU: image/deflate.py)
# and earlier, on 150 MB of /usr: zstd 3 30.3% at 330 MB/s, zstd 9 27.7% at 66 MB/s.
# zlib-ng 5 costs half of zlib 5 for 2% more bytes; 6 buys 0.3% for a fifth more time.
# A layer is compressed once and pulled many times, so size wins until the build gets
# noticeably slower. Changing either level changes every digest: a format change.
GZIP_LEVEL = 5
ZSTD_LEVEL = 9

_BLOCK = 1 << 20
# The gzip stream is deflated in independent blocks on every core (as pigz
# does): each block is primed with the 32 KiB before it and ends on a sync
# flush, so the bytes depend only on the data, the level and this block size,
# never on the number of threads. Changing it changes every digest.
GZIP_BLOCK = 1 << 20
_WINDOW = 32 * 1024
# Blocks also end before tar members whose name passes cuts_before (about one name in
# CUT_EVERY), once MIN_CUT bytes are pending: content-defined boundaries, so that the
# blocks of a layer that changed in one place are the same elsewhere and come from the
# block cache (image/blockcache.py). Changing either changes every digest.
CUT_EVERY = 32
MIN_CUT = 256 * 1024
GZIP_THREADS = min(8, os.cpu_count() or 1)


@dataclass(frozen=True)
class Layer:
    """A layer blob on disk. `digest` is of the blob as stored, `diff_id` of the plain tar."""

    digest: str
    diff_id: str
    size: int
    media_type: str
    path: Path


class _HashingWriter:
    """Passes bytes through to `inner`, hashing and counting them on the way."""

    def __init__(self, inner: IO[bytes] | _HashingWriter | None) -> None:
        self.inner = inner
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        if self.inner is not None:
            self.inner.write(data)
        return len(data)

    def flush(self) -> None:
        pass

    def tell(self) -> int:
        return self.size

    def digest(self) -> str:
        return "sha256:" + self.sha256.hexdigest()


def cuts_before(path: str) -> bool:
    """Whether a block may end before the tar member for `path` (given MIN_CUT bytes
    since the last cut): a property of the name alone, so that the boundaries after
    an inserted or removed member fall where they fell before."""
    return crc32(path.encode("utf-8", "surrogateescape")) % CUT_EVERY == 0


class ParallelGzipWriter:
    """A single-member gzip stream, deflated block-wise on a thread pool (zlib-ng drops the GIL).

    With `blocks`, a block deflated before (same level, dictionary and bytes) is read
    from the cache instead; `placed` lists where this stream's blocks lie in `out`,
    for the caller to record once the blob is stored."""

    # mtime 0, no name, "unknown" OS: nothing about the machine or the moment.
    HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"

    def __init__(self, out: _HashingWriter, level: int = GZIP_LEVEL,
                 threads: int | None = None, blocks: BlockCache | None = None) -> None:
        self.out = out
        self.level = level
        self.blocks = blocks
        self.placed: list[tuple[str, int, int, str]] = []
        threads = GZIP_THREADS if threads is None else threads
        self._pool = ThreadPoolExecutor(max(1, threads))
        self._pending: deque[Future[tuple[str, bytes, str]]] = deque()
        self._limit = 2 * max(1, threads)
        self._buf = bytearray()
        self._previous_tail = b""
        self._crc = 0
        self._size = 0
        out.write(self.HEADER)

    def write(self, data: bytes) -> int:
        self._buf += data
        while len(self._buf) >= GZIP_BLOCK:
            self._submit(bytes(self._buf[:GZIP_BLOCK]))
            del self._buf[:GZIP_BLOCK]
        return len(data)

    def mark(self, path: str) -> None:
        """The next bytes begin the tar member for `path`: end the block here if the
        name says so."""
        if len(self._buf) >= MIN_CUT and cuts_before(path):
            self._submit(bytes(self._buf))
            self._buf.clear()

    def flush(self) -> None:
        pass

    def _deflate(self, block: bytes, dictionary: bytes) -> tuple[str, bytes, str]:
        key = block_key(self.level, dictionary, block) if self.blocks is not None else ""
        data = self.blocks.get(key) if self.blocks is not None else None
        if data is None:
            data = deflate_block(block, dictionary, self.level)
        sha = hashlib.sha256(data).hexdigest() if self.blocks is not None else ""
        return key, data, sha

    def _submit(self, block: bytes) -> None:
        self._crc = crc32(block, self._crc)
        self._size += len(block)
        self._pending.append(self._pool.submit(self._deflate, block, self._previous_tail))
        self._previous_tail = block[-_WINDOW:]
        while len(self._pending) > self._limit:
            self._emit(self._pending.popleft().result())

    def _emit(self, done: tuple[str, bytes, str]) -> None:
        key, data, sha = done
        if key:
            self.placed.append((key, self.out.tell(), len(data), sha))
        self.out.write(data)

    def close(self) -> None:
        try:
            if self._buf:
                self._submit(bytes(self._buf))
                self._buf.clear()
            while self._pending:
                self._emit(self._pending.popleft().result())
            # An empty final block ends the deflate stream: 0x03 0x00 is BFINAL, fixed codes, EOB.
            self.out.write(b"\x03\x00")
            self.out.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))
        finally:
            self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> ParallelGzipWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._pool.shutdown(cancel_futures=True)


def clamp_mtime(mtime: int | None, source_date_epoch: int) -> int:
    if mtime is None:
        return source_date_epoch
    return max(0, min(int(mtime), source_date_epoch))


def _select(tree: Tree, paths: Iterable[str] | None) -> list[Entry]:
    entries = tree.entries()
    if paths is None:
        return entries
    wanted: set[str] = set()
    for p in paths:
        entry = tree.get(p)
        if entry is None:
            raise KeyError(p)
        wanted.add(entry.path)
        # Parents ride along so that each layer also unpacks on its own, with
        # the directories' real modes rather than whatever an unpacker invents.
        parent = entry.path.rpartition("/")[0]
        while parent and parent not in wanted:
            wanted.add(parent)
            parent = parent.rpartition("/")[0]
    return [e for e in entries if e.path in wanted]


def _tarinfo(entry: Entry, source_date_epoch: int, dir_mtime: int | None = None
             ) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.mode = entry.mode & 0o7777
    info.uid = entry.uid
    info.gid = entry.gid
    info.uname = ""
    info.gname = ""
    info.mtime = clamp_mtime(entry.mtime, source_date_epoch)
    if entry.kind == "dir" and dir_mtime is not None:
        info.mtime = dir_mtime
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.link
    else:
        info.type = tarfile.REGTYPE
        info.size = entry.size
    return info


def write_tar(
    tree: Tree,
    out: IO[bytes] | _HashingWriter,
    source_date_epoch: int,
    paths: Iterable[str] | None = None,
    dir_mtime: int | None = None,
    *,
    entries: list[Entry] | None = None,
    mark: Callable[[str], None] | None = None,
) -> None:
    """Stream the (selected part of the) tree, or `entries` of it, as a plain tar into `out`.
    `mark` hears each member's name just before its bytes are written.

    `dir_mtime` dates every directory alike: a directory's mtime in the tree is the
    newest any package gave it, which would tie a layer's bytes to its neighbours."""
    # Hardlink groups are keyed by the file they were linked to (and content,
    # in case that file was replaced afterwards). The first member in sort
    # order carries the data and the others link to it: the tree's original
    # target may sort later, be removed, or live in another layer.
    first_of_group: dict[tuple[str, str], str] = {}
    # Mode "w" (out has tell()), not the stream mode "w|": the bytes are the same, but
    # _Stream re-concatenates its 1 MiB buffer on every 16 KiB write, which cost a fifth
    # of a warm build's CPU. Files are copied in _BLOCK reads instead.
    with tarfile.open(
        fileobj=out,  # type: ignore[call-overload]
        mode="w",
        format=tarfile.PAX_FORMAT,
        encoding="utf-8",
    ) as tf:
        tf.copybufsize = _BLOCK
        for entry in entries if entries is not None else _select(tree, paths):
            info = _tarinfo(entry, source_date_epoch, dir_mtime)
            if mark is not None:
                mark(entry.path)
            if entry.kind in ("file", "hardlink"):
                key = (entry.link if entry.kind == "hardlink" else entry.path, entry.sha256)
                first = first_of_group.get(key)
                if first is not None:
                    info.type = tarfile.LNKTYPE
                    info.linkname = first
                    info.size = 0
                    tf.addfile(info)
                    continue
                first_of_group[key] = entry.path
                with tree.open_entry(entry) as f:
                    tf.addfile(info, f)
            else:
                tf.addfile(info)


def write_layer(
    tree: Tree,
    dest_path: Path | str,
    compression: Compression = "gzip",
    source_date_epoch: int = 0,
    *,
    paths: Iterable[str] | None = None,
    dir_mtime: int | None = None,
    cache: LayerCache | None = None,
) -> Layer:
    """Write the tree (or only `paths` and their parents) as a layer blob at `dest_path`.

    With a `cache`, a layer whose content key is already there is reused (its blob
    verified) and a new one is written into the cache; the returned Layer's path is
    then the cached blob, and `dest_path` is not written.
    """
    if compression not in MEDIA_TYPES:
        raise SpecError(
            f"Unknown layer compression {compression!r}; use one of: "
            + ", ".join(sorted(MEDIA_TYPES))
            + "."
        )
    entries = _select(tree, paths)
    times = (source_date_epoch, dir_mtime)
    key = _key(entries, compression, *times) if cache is not None else None
    if cache is None or key is None:
        return _write_uncached(tree, entries, Path(dest_path), compression, times)
    found = cache.get(key)
    if found is not None:
        return Layer(found.digest, found.diff_id, found.size, found.media_type,
                     cache.blob_path(found.digest))
    with cache.writing() as slot:
        if slot is None:   # a read-only cache still builds, uncached
            return _write_uncached(tree, entries, Path(dest_path), compression, times)
        raw, tmp = slot
        blocks = BlockCache(cache.cache)
        placed: list[tuple[str, int, int, str]] = []
        plain, blob = _stream(tree, entries, raw, compression, times, blocks, placed)
        raw.close()
        layer = _layer(plain, blob, compression, tmp)
        path = cache.put(key, tmp, Recorded(layer.digest, layer.diff_id, layer.size,
                                            layer.media_type))
        blocks.record(layer.digest, placed)
    return Layer(layer.digest, layer.diff_id, layer.size, layer.media_type, path)


def _write_uncached(tree: Tree, entries: list[Entry], dest: Path, compression: Compression,
                    times: tuple[int, int | None]) -> Layer:
    with atomic_writer(dest) as raw:
        plain, blob = _stream(tree, entries, raw, compression, times)
    return _layer(plain, blob, compression, dest)


def _key(entries: list[Entry], compression: Compression, source_date_epoch: int,
         dir_mtime: int | None = None) -> str | None:
    """The layer cache key; None if some file's content hash is unknown.

    Built from the very headers write_tar emits (_tarinfo), so whatever decides a
    header field (clamping, modes, owners, types) decides the key too.
    """
    rows: list[list[object]] = []
    for e in entries:
        if e.kind in ("file", "hardlink") and not e.sha256:
            return None
        i = _tarinfo(e, source_date_epoch, dir_mtime)
        rows.append([i.name, i.type.decode(), i.mode, i.uid, i.gid, i.size, i.linkname,
                     i.mtime, e.kind, e.link, e.sha256])
    return layer_key(rows, compression, compression_params(compression))


def compression_params(compression: str) -> dict[str, object]:
    """The compressor settings that shape the bytes (part of the layer cache key)."""
    if compression == "gzip":
        return {"deflate": IDENTITY, "level": GZIP_LEVEL, "block": GZIP_BLOCK, "window": _WINDOW,
                "cut-every": CUT_EVERY, "min-cut": MIN_CUT}
    if compression == "zstd":
        return {"level": ZSTD_LEVEL, "zstandard": zstandard.__version__}
    return {}


def _stream(tree: Tree, entries: list[Entry], raw: IO[bytes], compression: Compression,
            times: tuple[int, int | None], blocks: BlockCache | None = None,
            placed: list[tuple[str, int, int, str]] | None = None
            ) -> tuple[_HashingWriter, _HashingWriter]:
    """tar -> sha256 (diff_id) -> compressor -> sha256 (digest) -> `raw`; a gzip
    stream's blocks are taken from `blocks` where it has them and listed in `placed`."""
    source_date_epoch, dir_mtime = times
    blob = _HashingWriter(raw)
    if compression == "gzip":
        with ParallelGzipWriter(blob, blocks=blocks) as gz:
            plain = _HashingWriter(gz)  # type: ignore[arg-type]
            write_tar(tree, plain, source_date_epoch, None, dir_mtime, entries=entries,
                      mark=gz.mark)
        if placed is not None:
            placed += gz.placed
    elif compression == "zstd":
        cctx = zstandard.ZstdCompressor(
            level=ZSTD_LEVEL, threads=0, write_checksum=True, write_content_size=False
        )
        with cctx.stream_writer(blob, closefd=False) as zw:  # type: ignore[arg-type]
            plain = _HashingWriter(zw)
            write_tar(tree, plain, source_date_epoch, None, dir_mtime, entries=entries)
    else:
        plain = _HashingWriter(blob)
        write_tar(tree, plain, source_date_epoch, None, dir_mtime, entries=entries)
    return plain, blob


def _layer(plain: _HashingWriter, blob: _HashingWriter, compression: Compression,
           path: Path) -> Layer:
    diff_id = plain.digest()
    digest = blob.digest() if compression != "none" else diff_id
    return Layer(digest=digest, diff_id=diff_id, size=blob.size,
                 media_type=MEDIA_TYPES[compression], path=path)

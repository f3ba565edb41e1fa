"""Reading .deb files as streams: nothing is extracted to the host disk.

A .deb is an ar archive holding `debian-binary`, `control.tar[.gz|.xz|.zst]`
and `data.tar[.gz|.xz|.zst|.bz2|.lzma]`, in that order (deb(5)); members
whose name starts with `_` may sit between them and are ignored, as dpkg does. The data
tar is decompressed and parsed on the fly, so a 100 MB package costs a few
buffers of memory, not 100 MB.

Every way a file can be broken (not ar, truncated, bad compression, bad tar)
surfaces as one MalformedError naming the file: a .deb reaching this module
already passed its sha256 check, so damage here means a bad archive or a bug,
never something to retry or work around. Both tars are read within the
limits of boundedtar (headers, names, sizes; data.tar's files against the
control file's signed Installed-Size), so a hostile package costs neither
memory nor disk before it is refused.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, BinaryIO

import zstandard

from assembler.errors import IntegrityError, MalformedError
from assembler.fetch.boundedtar import Budget, Limits, open_stream

_AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60
_CHUNK = 1 << 16

# Errors that decompressors and tarfile raise on damaged input. They are
# translated at the boundary so callers only ever see IntegrityError.
_DECODE_ERRORS = (
    tarfile.TarError,
    EOFError,
    lzma.LZMAError,
    zlib.error,
    gzip.BadGzipFile,
    zstandard.ZstdError,
    OSError,  # bz2 reports damage as a bare OSError
    ValueError,
)

StrPath = str | os.PathLike[str]


def _bad(path: StrPath, why: str) -> MalformedError:
    return MalformedError(f"{os.fspath(path)}: not a valid .deb package ({why}).")


class _Bounded(io.RawIOBase):
    """A read-only view of `size` bytes of an ar member, read from the shared file."""

    def __init__(self, f: BinaryIO, size: int, path: StrPath) -> None:
        self._f = f
        self._left = size
        self._path = path

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        n = min(len(b), self._left)
        data = self._f.read(n)
        if not data:
            raise _bad(self._path, "truncated archive member")
        b[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def skip(self) -> None:
        while self._left > 0:
            data = self._f.read(min(self._left, 1 << 20))
            if not data:
                raise _bad(self._path, "truncated archive member")
            self._left -= len(data)


class _Translating(io.RawIOBase):
    """Turn decoder exceptions raised while a caller reads into IntegrityError."""

    def __init__(self, inner: IO[bytes], path: StrPath, what: str) -> None:
        self._inner = inner
        self._path = path
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(b))
        except IntegrityError:
            raise
        except _DECODE_ERRORS as e:
            raise _bad(self._path, f"{self._what}: {e}") from None
        b[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        # tarfile reads member data through read(); keep the translation there too.
        try:
            return self._inner.read(size)
        except IntegrityError:
            raise
        except _DECODE_ERRORS as e:
            raise _bad(self._path, f"{self._what}: {e}") from None


def _members(f: BinaryIO, path: StrPath) -> Iterator[tuple[str, _Bounded]]:
    if f.read(len(_AR_MAGIC)) != _AR_MAGIC:
        raise _bad(path, "no ar archive header")
    while True:
        header = f.read(_AR_HEADER)
        if not header:
            return
        if len(header) != _AR_HEADER or header[58:60] != b"`\n":
            raise _bad(path, "damaged ar member header")
        # GNU ar terminates names with '/', BSD and dpkg pad with spaces.
        name = header[0:16].decode("ascii", "replace").rstrip(" ").rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise _bad(path, f"bad size in ar header of {name!r}") from None
        member = _Bounded(f, size, path)
        yield name, member
        member.skip()
        if size % 2 and f.read(1) not in (b"\n", b""):
            raise _bad(path, "bad ar padding")


def _decompressor(name: str, raw: IO[bytes], path: StrPath) -> IO[bytes]:
    base, _, ext = name.partition(".tar")
    if ext == "":
        return raw
    if ext == ".gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if ext == ".xz":
        return lzma.LZMAFile(raw)
    # Old formats dpkg still reads; a few long-lived archives have them.
    if ext == ".bz2":
        return bz2.BZ2File(raw)
    if ext == ".lzma":
        return lzma.LZMAFile(raw, format=lzma.FORMAT_ALONE)
    if ext == ".zst":
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    raise _bad(path, f"unsupported compression of {name!r}")


@contextmanager
def _open_tar(path: StrPath, prefix: str, limits: Limits) -> Iterator[tarfile.TarFile]:
    """Open the `prefix` (`control` or `data`) tar of the .deb as a streaming TarFile."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed in the finally below
    except OSError as e:
        raise IntegrityError(f"{os.fspath(path)}: cannot read package: {e.strerror}.") from None
    try:
        seen_binary = False
        for name, member in _members(f, path):
            if name == "debian-binary":
                version = member.read(16)
                if not version.startswith(b"2."):
                    raise _bad(path, f"unsupported format version {version!r}")
                seen_binary = True
                continue
            if not seen_binary:
                raise _bad(path, f"first member is {name!r}, expected 'debian-binary'")
            if name == prefix + ".tar" or name.startswith(prefix + ".tar."):
                raw = _decompressor(name, member, path)  # type: ignore[arg-type]
                stream = io.BufferedReader(_Translating(raw, path, name), _CHUNK)
                try:
                    tf = open_stream(stream, f"{os.fspath(path)} ({name})", limits,
                                     "control" if prefix == "control" else "stream")
                except IntegrityError:
                    raise
                except _DECODE_ERRORS as e:
                    raise _bad(path, f"{name}: {e}") from None
                with tf:
                    yield tf
                return
        raise _bad(path, f"no {prefix}.tar member")
    finally:
        f.close()


def _member_reader(tf: tarfile.TarFile, info: tarfile.TarInfo, path: StrPath) -> IO[bytes] | None:
    if not info.isreg():
        return None
    try:
        inner = tf.extractfile(info)
    except _DECODE_ERRORS as e:
        raise _bad(path, f"{info.name}: {e}") from None
    if inner is None:
        return None
    return io.BufferedReader(_Translating(inner, path, info.name), _CHUNK)


def _iter(tf: tarfile.TarFile, path: StrPath, budget: Budget) -> Iterator[tarfile.TarInfo]:
    it = iter(tf)
    while True:
        try:
            info = next(it)
        except StopIteration:
            return
        except IntegrityError:
            raise
        except _DECODE_ERRORS as e:
            raise _bad(path, str(e)) from None
        budget.admit(info)
        yield info


def control_files(path: StrPath, limits: Limits | None = None) -> dict[str, bytes]:
    """All regular files of control.tar (control, md5sums, conffiles, ...) by bare name."""
    limits = limits or Limits.from_env()
    out: dict[str, bytes] = {}
    budget = Budget(f"{os.fspath(path)} (control.tar)", limits, ceiling="control")
    with _open_tar(path, "control", limits) as tf:
        for info in _iter(tf, path, budget):
            reader = _member_reader(tf, info, path)
            if reader is None:
                continue
            name = info.name.removeprefix("./").lstrip("/")
            out[name] = reader.read()
    return out


def read_control(path: StrPath, limits: Limits | None = None) -> bytes:
    """The raw text of the package's `control` file."""
    files = control_files(path, limits)
    if "control" not in files:
        raise _bad(path, "control.tar has no 'control' file")
    return files["control"]


_INSTALLED_SIZE = re.compile(rb"^Installed-Size:[ \t]*([0-9]{1,15})[ \t]*$", re.M | re.I)


def installed_size(control: bytes) -> int | None:
    """The control file's Installed-Size in bytes (it is given in KiB), None if absent."""
    m = _INSTALLED_SIZE.search(control)
    return int(m.group(1)) * 1024 if m else None


def iter_data(path: StrPath, control: bytes | None = None,
              limits: Limits | None = None) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    """Stream the data.tar members in archive order.

    The file object of a regular file is only valid until the next member is
    requested, as with any streaming tar: consume it (or ignore it) first.
    The files may add up to the `control` file's Installed-Size plus the
    margin (control is read from the package when not given).
    """
    limits = limits or Limits.from_env()
    if control is None:
        control = read_control(path, limits)
    budget = Budget(f"{os.fspath(path)} (data.tar)", limits, installed_size(control),
                    "Installed-Size")
    with _open_tar(path, "data", limits) as tf:
        for info in _iter(tf, path, budget):
            yield info, _member_reader(tf, info, path)

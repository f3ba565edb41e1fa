"""Reading a package's tars within limits, so a tiny hostile package cannot exhaust the host.

The same limits bound an image's tars when an image on disk is read back
(`assemble check`, `inspect`, `diff`): the outer archive's headers and each
layer's, with `subject="image"` in the messages.

A signed index only proves a package is the one its repository published; a
hostile or compromised repository signs whatever it likes. Python's tarfile
trusts the archive: it reads a PAX header or a GNU long name of any declared
size into memory, expands a sparse member's holes into as many zero bytes as
its header claims (`GNU.sparse.size=10**30`), and recurses once per chained
extension header. This module wraps it:

* `TarInfo` subclasses (one per package, carrying its name for messages)
  refuse extension headers over `header` bytes, more than a few extension
  headers in a row, global PAX headers adding up to more than `header`, and
  every sparse format;
* `Budget` refuses a member whose name or link target is longer than `name`,
  whose declared size is over `member`, or that takes a package past `members`
  entries or its content bound: the package's own signed installed size (with
  `MARGIN`) when it states one, `package` otherwise;
* `LimitedReader` stops the decompressed stream after `stream` bytes, which
  bounds the time spent skipping over data nobody reads.

Every refusal is a MalformedError naming the package and the limit and telling
how to raise it. The defaults are far above any real package (Debian's largest
ship some 100 000 files and a few GiB); see docs/security.md.
"""

from __future__ import annotations

import io
import math
import os
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, Self

from assembler.errors import MalformedError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

# name -> (environment variable, default, what it bounds)
_LIMITS = {
    "header": ("ASSEMBLER_MAX_TAR_HEADER", 1 * MiB, "bytes in one tar extension header"),
    "name": ("ASSEMBLER_MAX_TAR_NAME", 4 * KiB, "bytes in a member's name or link target"),
    "members": ("ASSEMBLER_MAX_MEMBERS", 1_000_000, "members in one package"),
    "member": ("ASSEMBLER_MAX_MEMBER_SIZE", 4 * GiB, "bytes in one member"),
    "package": ("ASSEMBLER_MAX_PACKAGE_SIZE", 8 * GiB, "unpacked bytes in one package"),
    "stream": ("ASSEMBLER_MAX_TAR_STREAM", 16 * GiB, "decompressed bytes of one package tar"),
    "control": ("ASSEMBLER_MAX_CONTROL_SIZE", 64 * MiB, "decompressed bytes of control data"),
    "image": ("ASSEMBLER_MAX_IMAGE_SIZE", 64 * GiB, "bytes of files in one image"),
    "layer": ("ASSEMBLER_MAX_LAYER_STREAM", 64 * GiB,
              "decompressed bytes of one image layer read back"),
}
# A package's unpacked bytes may exceed its signed installed size by this factor plus
# MARGIN_BYTES: dpkg-gencontrol and abuild round up per file or per block, so an honest
# package stays below 1x; the slack covers hand-written sizes. 0 turns the bound off.
MARGIN_VAR, MARGIN = "ASSEMBLER_INSTALLED_SIZE_MARGIN", 2
MARGIN_BYTES = 1 * MiB
# GNU long name + long link + PAX header (+ a GNU header inside a PAX one) precede a
# member at most; more in a row is a recursion attack on tarfile, not an archive.
_MAX_CHAINED = 4
_MAX_MTIME = 1 << 34   # the year 2514: what ustar's 11 octal digits cannot even write
# Not in typeshed's tarfile, but in every CPython since 3.2.
_DAMAGED = (tarfile.InvalidHeaderError, tarfile.TruncatedHeaderError)  # type: ignore[attr-defined]
_EXTENSIONS = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE,
               tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)


@dataclass(frozen=True)
class Limits:
    header: int
    name: int
    members: int
    member: int
    package: int
    stream: int
    control: int
    image: int
    layer: int
    margin: int = MARGIN

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The defaults, each raised (or lowered) by its ASSEMBLER_MAX_* variable."""
        env: Mapping[str, str] = os.environ if environ is None else environ
        values = {}
        for key, (var, default, what) in _LIMITS.items():
            raw = env.get(var, "").strip()
            if not raw:
                values[key] = default
                continue
            try:
                values[key] = parse_size(raw)
            except ValueError:
                raise MalformedError(
                    f"{var}={raw!r} is not a size: give the maximum {what} as a whole number, "
                    "optionally with a K, M or G suffix (e.g. 8G).") from None
        raw = env.get(MARGIN_VAR, "").strip()
        if raw and not (raw.isascii() and raw.isdigit()):
            raise MalformedError(f"{MARGIN_VAR}={raw!r} is not a whole number: give the factor by "
                               "which a package's files may exceed its signed installed size "
                               f"(default {MARGIN}, 0 for no such bound).")
        return cls(**values, margin=int(raw) if raw else MARGIN)


def parse_size(text: str) -> int:
    """`123`, `64K`, `8M`, `16G` (binary units) -> bytes; ValueError otherwise."""
    units = {"K": KiB, "M": MiB, "G": GiB, "T": 1 << 40}
    scale = units.get(text[-1:].upper(), 1)
    digits = text[:-1] if scale != 1 else text
    if not digits.isdigit() or not digits.isascii():
        raise ValueError(text)
    return int(digits) * scale


def _human(n: int) -> str:
    for unit, scale in (("G", GiB), ("M", MiB), ("K", KiB)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


def exceeded(what: str, limit_key: str, amount: str, subject: str = "package"
             ) -> MalformedError:
    var, default, desc = _LIMITS[limit_key]
    return MalformedError(
        f"{what}: refusing the {subject}, {amount}; the limit is on {desc} (default "
        f"{_human(default)}). If the {subject} is genuine, raise it (e.g. "
        f"{var}={_human(2 * default)}); see docs/security.md.")


class LimitedReader(io.RawIOBase):
    """Passes `limit` bytes of `inner` through, then raises instead of reading more."""

    def __init__(self, inner: IO[bytes] | io.RawIOBase, limit: int, what: str,
                 limit_key: str, subject: str = "package") -> None:
        self._inner = inner
        self._subject = subject
        self._left = limit
        self._limit = limit
        self._what = what
        self._key = limit_key

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(min(len(b), self._left + 1))
        if len(data) > self._left:
            raise exceeded(self._what, self._key,
                           f"it decompresses to more than {self._limit:,} bytes",
                           self._subject)
        self._left -= len(data)
        b[: len(data)] = data
        return len(data)


def tarinfo_class(what: str, limits: Limits, subject: str = "package"
                  ) -> type[tarfile.TarInfo]:
    """A TarInfo that refuses oversized or chained extension headers and sparse members.

    Hooks tarfile's documented extension point (`_proc_member`, "can be
    overridden in a subclass") and its sparse handlers, before anything is read.
    """

    class Checked(tarfile.TarInfo):
        def _proc_member(self, tf: tarfile.TarFile) -> Any:
            if self.type not in _EXTENSIONS:
                return super()._proc_member(tf)  # type: ignore[misc]
            if self.size > limits.header:
                raise exceeded(what, "header",
                               f"a tar extension header declares {self.size:,} bytes", subject)
            depth = getattr(tf, "_assembler_chain", 0)
            if depth >= _MAX_CHAINED:
                raise MalformedError(f"{what}: refusing the {subject}, its tar chains more than "
                                   f"{_MAX_CHAINED} extension headers before one member.")
            if self.type == tarfile.XGLTYPE:
                total = getattr(tf, "_assembler_global", 0) + self.size
                if total > limits.header:
                    raise exceeded(what, "header",
                                   f"its global tar headers add up to {total:,} bytes", subject)
                tf._assembler_global = total  # type: ignore[attr-defined]
            tf._assembler_chain = depth + 1  # type: ignore[attr-defined]
            try:
                return super()._proc_member(tf)  # type: ignore[misc]
            finally:
                tf._assembler_chain = depth  # type: ignore[attr-defined]

        @classmethod
        def fromtarfile(cls, tf: tarfile.TarFile) -> Self:
            # tarfile ends the archive silently at a damaged header after the first:
            # a package (or a layer) would lose its remaining files without a word. A
            # damaged first header is no tar at all, which tarfile reports itself.
            first = tf.offset == 0
            try:
                return super().fromtarfile(tf)
            except _DAMAGED as e:
                if first:
                    raise
                raise MalformedError(f"{what}: a tar header is damaged or cut short ({e}); "
                                     f"refusing the {subject}.") from None

        def _apply_pax_info(self, pax_headers: dict, encoding: str, errors: str) -> None:
            if any(k.startswith("GNU.sparse.") for k in pax_headers):
                raise _sparse(what, self.name, subject)
            for key, parse in tarfile.PAX_NUMBER_FIELDS.items():
                # tarfile turns a value that is no number into 0, so a bad size would
                # send it parsing file contents as headers.
                try:
                    if key in pax_headers:
                        parse(pax_headers[key])
                except ValueError:
                    raise MalformedError(
                        f"{what}: the PAX record {key}={pax_headers[key][:40]!r} of "
                        f"{self.name[:200]!r} is not a number; refusing the {subject}."
                    ) from None
            super()._apply_pax_info(pax_headers, encoding, errors)  # type: ignore[misc]

        def _proc_sparse(self, tf: tarfile.TarFile) -> Any:
            raise _sparse(what, self.name, subject)

        def _proc_gnusparse_00(self, member: tarfile.TarInfo, *args: Any) -> None:
            raise _sparse(what, member.name, subject)

        _proc_gnusparse_01 = _proc_gnusparse_10 = _proc_gnusparse_00

    return Checked


def _sparse(what: str, name: str, subject: str) -> MalformedError:
    return MalformedError(f"{what}: refusing the {subject}, its tar member {name[:200]!r} is "
                        "sparse; no Debian or Alpine package ships sparse files, and a sparse "
                        "header can claim any size.")


class Budget:
    """What one package (or image layer) may still unpack: members, names, declared sizes."""

    def __init__(self, what: str, limits: Limits, declared: int | None = None,
                 declared_from: str = "", ceiling: str = "package",
                 subject: str = "package") -> None:
        self.what = what
        self.subject = subject
        self.limits = limits
        self.members = 0
        self.content = 0
        self.ceiling = ceiling   # the limit bounding the files when no size is declared
        top = getattr(limits, ceiling)
        m = limits.margin
        if declared is not None and m and declared * m + MARGIN_BYTES < top:
            self.bound = declared * m + MARGIN_BYTES
            self.bound_why = (f"{m}x its signed {declared_from} of {declared:,} bytes plus "
                              f"{MARGIN_BYTES:,}; raise the factor with {MARGIN_VAR}")
        else:
            self.bound = top
            self.bound_why = f"{top:,} bytes"

    def admit(self, info: tarfile.TarInfo) -> None:
        """Refuse `info` if it breaks a limit; count it otherwise."""
        lim, subject = self.limits, self.subject
        self.members += 1
        if self.members > lim.members:
            raise exceeded(self.what, "members", f"it has more than {lim.members:,} members",
                           subject)
        for field in (info.name, info.linkname):
            if len(field.encode("utf-8", "surrogateescape")) > lim.name:
                raise exceeded(self.what, "name",
                               f"a member's name or link target starts {field[:80]!r} and is "
                               f"longer than {lim.name:,} bytes", subject)
        if not (0 <= info.uid < 1 << 32 and 0 <= info.gid < 1 << 32):
            raise MalformedError(f"{self.what}: tar member {info.name[:200]!r} has the owner "
                                 f"{info.uid}:{info.gid}, outside 0 to 2**32-1; refusing the "
                                 f"{subject}.")
        if not (math.isfinite(info.mtime) and 0 <= info.mtime < _MAX_MTIME):
            raise MalformedError(f"{self.what}: tar member {info.name[:200]!r} has the time "
                                 f"{info.mtime}, outside 0 to {_MAX_MTIME}; refusing the "
                                 f"{subject}.")
        if info.size < 0:
            raise MalformedError(f"{self.what}: tar member {info.name[:200]!r} has a negative "
                               f"size; refusing the {subject}.")
        if info.size > lim.member:
            raise exceeded(self.what, "member",
                           f"member {info.name[:200]!r} declares {info.size:,} bytes", subject)
        if info.isreg():
            self.content += info.size
            if self.content > self.bound:
                var = _LIMITS[self.ceiling][0]
                raise MalformedError(
                    f"{self.what}: refusing the {subject}, its files add up to more than "
                    f"{self.bound:,} bytes ({self.bound_why}) at member {info.name[:200]!r}. "
                    f"If the {subject} is genuine, raise that limit ({var} bounds every "
                    f"{subject} whatever it declares); see docs/security.md.")


def open_stream(fileobj: IO[bytes] | io.RawIOBase, what: str, limits: Limits,
                limit_key: str = "stream", subject: str = "package") -> tarfile.TarFile:
    """A streaming (`r|`) TarFile over at most `limits.<limit_key>` decompressed bytes.

    Names are bytes in the tar; UTF-8 with surrogateescape (tarfile's default
    errors) gives them back unchanged whatever the locale.
    """
    limited = io.BufferedReader(
        LimitedReader(fileobj, getattr(limits, limit_key), what, limit_key, subject), 1 << 16)
    return tarfile.open(fileobj=limited, mode="r|", encoding="utf-8",
                        tarinfo=tarinfo_class(what, limits, subject))


def open_bytes(data: bytes, what: str, limits: Limits) -> tarfile.TarFile:
    """A TarFile over an in-memory tar (already bounded by its decompression limit)."""
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:", encoding="utf-8",
                        tarinfo=tarinfo_class(what, limits))

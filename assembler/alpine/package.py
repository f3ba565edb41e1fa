""".apk (v2) packages: verify signature, control checksum and datahash; stream the data.

Layout: [signature member] control member, data member(s). The signature (an
RSA signature by the packager, optional for local builds) covers the compressed
control member; the control's .PKGINFO carries ``datahash``, the sha256 of the
compressed data; an index's ``C:`` is the sha1 of the compressed control member.
So one verified signature or one trusted index entry covers every byte.

Everything is verified when the package is opened; only then can the data tar
be streamed (it is never extracted to disk), within boundedtar's limits: its
files may add up to .PKGINFO's signed `size` plus the margin.
"""

from __future__ import annotations

import base64
import hashlib
import mmap
import posixpath
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from assembler.alpine.record import PackageRecord
from assembler.alpine.signing import (
    Buffer,
    GunzipReader,
    Signature,
    check_signatures,
    gunzip,
    iter_tar,
    member_spans,
    read_signatures,
)
from assembler.errors import IntegrityError, MalformedError
from assembler.fetch.boundedtar import Budget, Limits, open_stream

# .PKGINFO key -> index letter, so that a package read from disk yields the same
# PackageRecord as its APKINDEX stanza (except S: and C:, which describe the file).
_PKGINFO_KEYS = {
    "pkgname": "P", "pkgver": "V", "arch": "A", "size": "I", "pkgdesc": "T", "url": "U",
    "license": "L", "origin": "o", "maintainer": "m", "builddate": "t", "commit": "c",
    "provider_priority": "k", "depend": "D", "provides": "p", "install_if": "i",
    "replaces": "r", "replaces_priority": "q",
}  # fmt: skip


def q1(digest: bytes) -> str:
    """apk's checksum spelling: ``Q1`` + base64 of a sha1 digest."""
    return "Q1" + base64.b64encode(digest).decode()


def parse_pkginfo(text: str) -> list[tuple[str, str]]:
    """``key = value`` pairs of a .PKGINFO, in order, comments dropped."""
    pairs = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition(" = ")
        if not sep:
            # melange writes "url = " with nothing after; partition already copes,
            # anything else without " = " is not a field
            key, sep, value = line.partition("=")
            if not sep:
                raise ValueError(f"not a .PKGINFO line: {line[:60]!r}")
        pairs.append((key.strip(), value.strip()))
    return pairs


def record_from_pkginfo(pairs: list[tuple[str, str]], what: str = ".PKGINFO") -> PackageRecord:
    rec = PackageRecord()
    for key, value in pairs:
        letter = _PKGINFO_KEYS.get(key)
        if letter is None:
            continue  # packager, datahash, triggers, ...: not index fields
        if letter in "kq" and not value:
            continue
        if value or letter in "TUL":
            try:
                rec.set_field(letter, value)
            except ValueError:
                raise MalformedError(f"{what}: .PKGINFO says {key} = {value[:60]!r}, which is not "
                                   "a whole number; refusing the package.") from None
    return rec


@dataclass
class DataEntry:
    """One member of the data tar, with apk's per-file checksum when present."""

    path: str  # normalized, relative ("usr/bin/hello"), no trailing slash
    info: tarfile.TarInfo
    sha1: str | None  # hex, from the PAX header APK-TOOLS.checksum.SHA1
    _fileobj: IO[bytes] | None = field(default=None, repr=False)

    @property
    def checksum(self) -> str | None:
        """The ``Z:`` value for /lib/apk/db/installed (``Q1`` + base64 sha1)."""
        return q1(bytes.fromhex(self.sha1)) if self.sha1 else None

    def stream(self) -> IO[bytes] | None:
        """The raw content (unchecked; valid until iter_data() moves on), for callers
        that stream it somewhere and check the SHA1 themselves."""
        return self._fileobj

    def read(self) -> bytes:
        """The file's content, checked against its SHA1 header. Must be called
        before the iterator advances (the tar is a stream)."""
        if self._fileobj is None:
            return b""
        try:
            data = self._fileobj.read()
        except tarfile.StreamError as exc:
            raise RuntimeError(f"{self.path}: read() after iter_data() moved on") from exc
        if self.sha1 and self.info.isfile() and hashlib.sha1(data).hexdigest() != self.sha1:
            raise IntegrityError(
                f"{self.path}: content does not match its APK-TOOLS.checksum.SHA1 header."
            )
        return data


@dataclass
class ApkPackage:
    name: str  # for messages: the file name
    info: PackageRecord
    pkginfo: list[tuple[str, str]]
    scripts: dict[str, bytes]  # ".pre-install" etc., never run, kept for the db
    control_checksum: str  # Q1..., equals the index's C:
    datahash: str  # hex sha256 of the compressed data, checked against .PKGINFO
    signatures: list[Signature]
    signed_by: str | None  # trusted key that verified, None if not checked
    size: int  # file size, the index's S:
    _data: Buffer = field(repr=False, default=b"")

    def pkginfo_values(self, key: str) -> list[str]:
        return [v for k, v in self.pkginfo if k == key]

    def iter_data(self) -> Iterator[DataEntry]:
        """Stream the data tar. Paths are normalized; entries that would escape
        the root ('..', absolute paths, hardlinks out of the tree) are refused."""
        what = f"{self.name} (data)"
        limits = Limits.from_env()
        budget = Budget(what, limits, self.info.installed_size, ".PKGINFO size")
        try:
            with open_stream(GunzipReader(self._data, what=what), what, limits) as tar:
                for member in tar:
                    budget.admit(member)
                    path = safe_path(member.name, what=what)
                    if member.islnk():
                        safe_path(member.linkname, what=what)
                    sha1 = member.pax_headers.get("APK-TOOLS.checksum.SHA1")
                    f = tar.extractfile(member) if member.isfile() else None
                    yield DataEntry(path=path, info=member, sha1=sha1, _fileobj=f)
        except (tarfile.TarError, EOFError, ValueError, OverflowError) as exc:
            raise MalformedError(f"{what} is not a valid tar ({exc}).") from None


def safe_path(name: str, *, what: str) -> str:
    """Normalize an archive path; refuse anything that could land outside the root."""
    if name.startswith("/"):
        raise MalformedError(f"{what} contains an absolute path {name!r}; refusing the package.")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise MalformedError(
            f"{what} contains the path {name!r}, which climbs out of the root with '..'; "
            "refusing the package."
        )
    if not parts:
        return "."
    return posixpath.join(*parts)


def _load(source: bytes | str | Path) -> tuple[Buffer, str]:
    if isinstance(source, (str, Path)):
        path = Path(source)
        with path.open("rb") as f:
            if path.stat().st_size == 0:
                return b"", path.name
            # mmap keeps big packages out of the Python heap; pages are read on demand
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), path.name
    return source, ".apk"


def open_apk(
    source: bytes | str | Path,
    *,
    trusted_keys: Mapping[str, bytes | str] | None = None,
    require_signature: bool = True,
    expected_checksum: str | None = None,
    name: str | None = None,
) -> ApkPackage:
    """Open and verify an .apk.

    - signature: verified when present and made by a key in `trusted_keys`;
      with `require_signature`, an unsigned package or an unknown key is refused.
    - `expected_checksum` (the index's ``C:Q1...``): compared with the sha1 of
      the compressed control member; this alone authenticates an unsigned
      package fetched through a verified index.
    - datahash: always compared with the sha256 of the compressed data.
    """
    data, default_name = _load(source)
    what = name or default_name
    max_control = Limits.from_env().control
    view = memoryview(data)
    spans = member_spans(view, what=what)
    first = gunzip(view[slice(*spans[0])], what=what, limit=max_control)
    sigs = read_signatures(first, what=what)
    ctl_index = 0 if sigs is None else 1
    if len(spans) < ctl_index + 2:
        raise IntegrityError(f"{what} is incomplete: it lacks a control or a data part.")
    ctl_start, ctl_end = spans[ctl_index]
    control = view[ctl_start:ctl_end]
    control_checksum = q1(hashlib.sha1(control).digest())

    signed_by = None
    keys = trusted_keys or {}
    if sigs:
        known = [s for s in sigs if s.key_name in keys]
        if known or require_signature:
            signed_by = check_signatures(sigs, control, keys, what=what)
    elif require_signature:
        raise IntegrityError(
            f"{what} is not signed, and a signature is required; refusing it.",
            hint="Unsigned packages are accepted only when a verified index vouches for them.",
        )
    if expected_checksum is not None and control_checksum != expected_checksum:
        raise IntegrityError(
            f"{what}: control checksum {control_checksum} does not match the expected "
            f"{expected_checksum} from the index; the package is not the one the index names."
        )

    control_tar = first if ctl_index == 0 else gunzip(control, what=what, limit=max_control)
    pkginfo_text = None
    scripts: dict[str, bytes] = {}
    for member, content in iter_tar(control_tar, what=f"{what} (control)"):
        if member.name == ".PKGINFO":
            pkginfo_text = content.decode("utf-8", "surrogateescape")
        elif member.name.startswith(".") and member.isfile():
            scripts[member.name] = content
    if pkginfo_text is None:
        raise IntegrityError(f"{what} has no .PKGINFO in its control part.")
    try:
        pairs = parse_pkginfo(pkginfo_text)
    except ValueError as exc:
        raise MalformedError(f"{what}: malformed .PKGINFO ({exc}).") from None

    data_part = view[ctl_end:]
    datahash = hashlib.sha256(data_part).hexdigest()
    declared = [v for k, v in pairs if k == "datahash"]
    if not declared:
        raise IntegrityError(
            f"{what} has no datahash in .PKGINFO, so its files are not covered by any "
            "signature or checksum; refusing it."
        )
    if declared[0].lower() != datahash:
        raise IntegrityError(
            f"{what}: the data part's sha256 {datahash} does not match the datahash "
            f"{declared[0]} in .PKGINFO; its files were altered."
        )

    info = record_from_pkginfo(pairs, what)
    info.checksum = control_checksum
    info.size = len(view)
    return ApkPackage(
        name=what,
        info=info,
        pkginfo=pairs,
        scripts=scripts,
        control_checksum=control_checksum,
        datahash=datahash,
        signatures=sigs or [],
        signed_by=signed_by,
        size=len(view),
        _data=data_part,
    )

"""Gzip member splitting and apk's RSA signatures, shared by APKINDEX and .apk.

apk v2 files are concatenated gzip members. Signatures cover *compressed*
bytes of one member, so member boundaries must be found exactly: we inflate
each member with its own zlib object and take the boundary from
``unused_data``, never from searching for gzip magic bytes (which can occur
inside compressed data).
"""

from __future__ import annotations

import io
import mmap
import tarfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from assembler.errors import IntegrityError, MalformedError
from assembler.fetch.boundedtar import Budget, Limits, open_bytes

_CHUNK = 1 << 16
_OUT = 1 << 20  # bound zlib's output per call so a gzip bomb cannot balloon memory
_GZIP = 31  # zlib wbits for a gzip header

Buffer = bytes | bytearray | memoryview | mmap.mmap


def member_spans(data: Buffer, *, what: str) -> list[tuple[int, int]]:
    """Return ``(start, end)`` byte offsets of every gzip member in `data`.

    Memory stays bounded whatever the inflated size: output is discarded.
    """
    view = memoryview(data)
    spans = []
    pos = 0
    while pos < len(view):
        d = zlib.decompressobj(_GZIP)
        i = pos
        try:
            while not d.eof:
                if i >= len(view):
                    raise IntegrityError(
                        f"{what} is truncated: its gzip member starting at byte {pos} has no end."
                    )
                buf: Buffer = view[i : i + _CHUNK]
                i += len(buf)
                while buf and not d.eof:
                    d.decompress(buf, _OUT)
                    buf = d.unconsumed_tail
        except zlib.error as exc:
            raise IntegrityError(
                f"{what} is corrupt: the gzip member starting at byte {pos} does not "
                f"inflate ({exc})."
            ) from exc
        end = i - len(d.unused_data)
        spans.append((pos, end))
        pos = end
    if not spans:
        raise IntegrityError(f"{what} is empty.")
    return spans


def gunzip(data: Buffer, *, what: str, limit: int = 1 << 30) -> bytes:
    """Inflate gzip data (all its members) into memory, refusing more than `limit` bytes."""
    out = bytearray()
    view = memoryview(data)
    pos = 0
    try:
        while pos < len(view):
            d = zlib.decompressobj(_GZIP)
            buf: Buffer = view[pos:]
            while buf and not d.eof:
                out += d.decompress(buf, _OUT)
                buf = d.unconsumed_tail
                if len(out) > limit:
                    raise MalformedError(f"{what} inflates to more than {limit} bytes.")
            if not d.eof:
                raise MalformedError(f"{what} is truncated.")
            pos = len(view) - len(d.unused_data)
    except zlib.error as exc:
        raise IntegrityError(f"{what} is corrupt: it does not inflate ({exc}).") from exc
    return bytes(out)


class GunzipReader(io.RawIOBase):
    """A lazy, read-only file object inflating gzip data (for streaming tarfile)."""

    def __init__(self, data: Buffer, *, what: str) -> None:
        self._view = memoryview(data)
        self._pos = 0
        self._what = what
        self._d = zlib.decompressobj(_GZIP)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Buffer) -> int:  # type: ignore[override]
        want = len(b)
        while not self._pending:
            if self._d.eof:
                # concatenated members continue the same stream
                rest = self._d.unused_data
                self._pos -= len(rest)
                if self._pos >= len(self._view):
                    return 0
                self._d = zlib.decompressobj(_GZIP)
            tail = self._d.unconsumed_tail
            if tail:
                src: Buffer = tail
            else:
                if self._pos >= len(self._view):
                    raise MalformedError(f"{self._what} is truncated.")
                src = self._view[self._pos : self._pos + _CHUNK]
                self._pos += len(src)
            try:
                self._pending = self._d.decompress(src, max(want, _CHUNK))
            except zlib.error as exc:
                raise MalformedError(f"{self._what} is corrupt ({exc}).") from exc
        n = min(want, len(self._pending))
        b[:n] = self._pending[:n]  # type: ignore[index]
        self._pending = self._pending[n:]
        return n


def looks_like_signature(member: Buffer, *, what: str) -> bool:
    """Peek at the first tar header of a gzip member: is it a .SIGN.* entry?
    (Cheap, so an unsigned multi-megabyte index is not inflated just to say no.)"""
    head = GunzipReader(member, what=what).read(512) or b""
    return head.startswith(b".SIGN.")


@dataclass(frozen=True)
class Signature:
    key_name: str  # the file name apk looks up in /etc/apk/keys
    hash_name: str  # "sha1" (.SIGN.RSA.) or "sha256" (.SIGN.RSA256.)
    value: bytes


_PREFIXES = {".SIGN.RSA256.": "sha256", ".SIGN.RSA.": "sha1"}


def read_signatures(tar_bytes: bytes, *, what: str) -> list[Signature] | None:
    """Parse a signature tar. Return None when it is not one (an unsigned file's
    first member is already the control/index tar)."""
    limits = Limits.from_env()
    budget = Budget(what, limits)
    try:
        with open_bytes(tar_bytes, what, limits) as tar:
            members = []
            for m in tar:
                budget.admit(m)
                members.append(m)
            if not members or not members[0].name.startswith(".SIGN."):
                return None
            sigs = []
            for m in members:
                for prefix, hash_name in _PREFIXES.items():
                    if m.name.startswith(prefix) and m.isfile():
                        f = tar.extractfile(m)
                        assert f is not None
                        sigs.append(Signature(m.name[len(prefix) :], hash_name, f.read()))
                        break
                else:
                    # e.g. .SIGN.DSA.: an algorithm apk dropped long ago; ignoring it
                    # is safe because an unverifiable signature never grants trust
                    continue
            return sigs
    except (tarfile.TarError, EOFError, ValueError, OverflowError) as exc:
        raise MalformedError(f"{what}: the first gzip member is not a valid tar ({exc}).") from None


def load_public_key(pem: bytes | str) -> rsa.RSAPublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise IntegrityError(f"not a PEM public key ({exc}).") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise IntegrityError("apk signing keys must be RSA public keys.")
    return key


def load_keys(directory: str | Path) -> dict[str, bytes]:
    """Read a directory of ``*.pub`` keys (like /etc/apk/keys) into name -> PEM."""
    return {p.name: p.read_bytes() for p in sorted(Path(directory).iterdir()) if p.is_file()}


def check_signatures(
    sigs: list[Signature],
    signed: Buffer,
    trusted_keys: Mapping[str, bytes | str],
    *,
    what: str,
) -> str:
    """Verify `signed` against every signature made by a trusted key.

    Returns the name of the key that verified. All signatures by keys we trust
    must verify: a bad signature from a trusted key means the bytes were changed.
    """
    known = [s for s in sigs if s.key_name in trusted_keys]
    if not known:
        names = ", ".join(s.key_name for s in sigs) or "no supported RSA signature"
        raise IntegrityError(
            f"{what} is signed by unknown key {names}; refusing it because none of the "
            f"{len(trusted_keys)} trusted keys made that signature.",
            hint="Add the publisher's public key to the repository's keys if you trust it.",
        )
    for sig in known:
        key = load_public_key(trusted_keys[sig.key_name])
        algo = hashes.SHA256() if sig.hash_name == "sha256" else hashes.SHA1()
        try:
            key.verify(sig.value, bytes(signed), padding.PKCS1v15(), algo)
        except InvalidSignature:
            raise IntegrityError(
                f"{what} has a bad signature: RSA/{sig.hash_name} verification with key "
                f"{sig.key_name} failed, so its content was altered or corrupted after signing."
            ) from None
    return known[0].key_name


def iter_tar(tar_bytes: bytes, *, what: str) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    """Members of a small in-memory tar (control, index) with their content."""
    limits = Limits.from_env()
    budget = Budget(what, limits)
    try:
        with open_bytes(tar_bytes, what, limits) as tar:
            for m in tar:
                budget.admit(m)
                f = tar.extractfile(m) if m.isfile() else None
                yield m, f.read() if f else b""
    except (tarfile.TarError, EOFError, ValueError, OverflowError) as exc:
        raise MalformedError(f"{what} holds a corrupt tar ({exc}).") from None

"""APKINDEX.tar.gz: verify the signature, then parse the package stanzas.

Layout: gzip member 1 is a tar holding ``.SIGN.RSA[256].<keyname>``; the rest
of the file (normally one more gzip member) is a tar with DESCRIPTION and
APKINDEX. abuild-sign signs the index file *before* prepending the signature
member, so the signature covers every byte after member 1, exactly as stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from assembler.alpine.dependency import Dependency
from assembler.alpine.record import PackageRecord, iter_stanzas, record_from_fields
from assembler.alpine.signing import (
    check_signatures,
    gunzip,
    iter_tar,
    looks_like_signature,
    member_spans,
    read_signatures,
)
from assembler.errors import IntegrityError, MalformedError
from assembler.untrusted import index_size_limit

# A package's name and version make its file name (<name>-<version>.apk): no '/'.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,254}")
# Looser than apk's version grammar: real indexes carry versions apk calls invalid
# (aspell-ru 0.99f7-r1), and they still compare.
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+~-]{0,254}")
# Q1: base64 of a SHA-1 (apk v2); Q2: of a SHA-256.
_CHECKSUM = re.compile(r"Q1[A-Za-z0-9+/]{27}=|Q2[A-Za-z0-9+/]{43}=")


@dataclass
class ApkIndex:
    description: str
    packages: list[PackageRecord]
    signed_by: str  # key name that verified the index
    _by_name: dict[str, list[PackageRecord]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for rec in self.packages:
            self._by_name.setdefault(rec.name, []).append(rec)

    def __len__(self) -> int:
        return len(self.packages)

    def named(self, name: str) -> list[PackageRecord]:
        """Every version of package `name` in this index (not providers)."""
        return list(self._by_name.get(name, ()))


def verify_index(
    data: bytes, trusted_keys: Mapping[str, bytes | str], *, what: str
) -> tuple[bytes, str]:
    """Check the signature; return the verified, still compressed index part and
    the name of the key that signed it."""
    spans = member_spans(data, what=what)
    sig_start, sig_end = spans[0]
    first = data[sig_start:sig_end]
    sigs = None
    if looks_like_signature(first, what=what):
        sig_tar = gunzip(first, what=f"{what} (signature member)", limit=1 << 20)
        sigs = read_signatures(sig_tar, what=what)
    if sigs is None:
        raise IntegrityError(
            f"{what} is not signed: its first gzip member holds no .SIGN.RSA signature, "
            "so there is no way to know who published it."
        )
    if len(spans) < 2:
        raise IntegrityError(f"{what} holds a signature but no index after it.")
    signed = data[sig_end:]
    signer = check_signatures(sigs, signed, trusted_keys, what=what)
    return signed, signer


def parse_index_tar(tar_bytes: bytes, *, what: str) -> tuple[str, list[PackageRecord]]:
    description = ""
    text = None
    for member, content in iter_tar(tar_bytes, what=what):
        if member.name == "DESCRIPTION":
            description = content.decode("utf-8", "replace").strip()
        elif member.name == "APKINDEX":
            # Stanza values are UTF-8 (maintainer names); never fail on a stray byte.
            text = content.decode("utf-8", "surrogateescape")
    if text is None:
        raise IntegrityError(f"{what} has no APKINDEX file inside.")
    packages = []
    try:
        for stanza in iter_stanzas(text):
            name = next((v for k, v in stanza if k == "P"), "?")
            try:
                packages.append(record_from_fields(stanza))
            except ValueError as exc:
                raise MalformedError(f"{what}: malformed APKINDEX (package {name[:80]!r}: "
                                     f"{exc}); refusing the index.") from None
    except ValueError as exc:
        raise MalformedError(f"{what}: malformed APKINDEX ({exc}).") from None
    for rec in packages:
        if not (rec.name and rec.version and rec.checksum):
            raise MalformedError(
                f"{what}: an APKINDEX stanza lacks P:, V: or C: ({rec.name[:80] or '?'})."
            )
        _check(rec, what)
    return description, packages


def _check(rec: PackageRecord, what: str) -> None:
    """Every value later used as a file name, URL part or relation is of its grammar."""
    where = f"{what}: package {rec.name[:80]!r}"
    if not _NAME.fullmatch(rec.name):
        raise MalformedError(f"{where} is not an apk package name; refusing the index.")
    if not _VERSION.fullmatch(rec.version):
        raise MalformedError(f"{where}: V:{rec.version[:80]!r} is not an apk version; "
                             "refusing the index.")
    if not _CHECKSUM.fullmatch(rec.checksum):
        raise MalformedError(f"{where}: C:{rec.checksum[:80]!r} is not an apk checksum "
                             "(Q1 + base64 of a SHA-1); refusing the index.")
    for letter, atoms in (("D", rec.depends), ("p", rec.provides), ("i", rec.install_if),
                          ("r", rec.replaces)):
        for atom in atoms:
            try:
                Dependency.parse(atom)
            except ValueError:
                raise MalformedError(f"{where}: {letter}:{atom[:80]!r} is not an apk "
                                     "dependency; refusing the index.") from None


def read_index(
    source: bytes | str | Path,
    trusted_keys: Mapping[str, bytes | str],
    *,
    name: str | None = None,
) -> ApkIndex:
    """Verify and parse an APKINDEX.tar.gz (bytes or a path).

    Raises IntegrityError for an unsigned index, a signature by a key not in
    `trusted_keys` (key file name -> PEM), or a signature that does not verify.
    """
    if isinstance(source, (str, Path)):
        what = name or str(source)
        data = Path(source).read_bytes()
    else:
        what = name or "APKINDEX.tar.gz"
        data = source
    signed, signer = verify_index(data, trusted_keys, what=what)
    index_tar = gunzip(signed, what=what, limit=index_size_limit())
    description, packages = parse_index_tar(index_tar, what=what)
    return ApkIndex(description=description, packages=packages, signed_by=signer)

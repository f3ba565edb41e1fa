"""APKINDEX.tar.gz: verify the signature, then parse the package stanzas.

Layout: gzip member 1 is a tar holding ``.SIGN.RSA[256].<keyname>``; the rest
of the file (normally one more gzip member) is a tar with DESCRIPTION and
APKINDEX. abuild-sign signs the index file *before* prepending the signature
member, so the signature covers every byte after member 1, exactly as stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from assembler.alpine.record import PackageRecord, iter_stanzas, record_from_fields
from assembler.alpine.signing import (
    check_signatures,
    gunzip,
    iter_tar,
    looks_like_signature,
    member_spans,
    read_signatures,
)
from assembler.errors import IntegrityError

_MAX_INDEX = 512 << 20  # far above any real index (main/x86_64 inflates to ~2 MB)


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
    try:
        packages = [record_from_fields(s) for s in iter_stanzas(text)]
    except ValueError as exc:
        raise IntegrityError(f"{what}: malformed APKINDEX ({exc}).") from exc
    for rec in packages:
        if not (rec.name and rec.version and rec.checksum):
            raise IntegrityError(
                f"{what}: an APKINDEX stanza lacks P:, V: or C: ({rec.name or '?'})."
            )
    return description, packages


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
    index_tar = gunzip(signed, what=what, limit=_MAX_INDEX)
    description, packages = parse_index_tar(index_tar, what=what)
    return ApkIndex(description=description, packages=packages, signed_by=signer)

"""OpenPGP signature checks with pysequoia (Sequoia-PGP): nothing from the host's gpg."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pysequoia

from assembler.errors import IntegrityError, SpecError


@cache
def _certs(key: Path | bytes) -> tuple:
    """A key file's certificates, or those of an armored key given inline (chisel.yaml)."""
    try:
        if isinstance(key, bytes):
            return tuple(pysequoia.Cert.split_bytes(key))
        return tuple(pysequoia.Cert.split_file(str(key)))
    except Exception as e:  # pysequoia raises bare RuntimeErrors
        what = "an inline key" if isinstance(key, bytes) else str(key)
        raise SpecError(f"{what}: not an OpenPGP public key ({_first_line(e)}).") from None


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__



def verify_clearsigned(data: bytes, keys: list[Path | bytes], what: str) -> bytes:
    """Return the signed text of a clearsigned message if a key in `keys` signed it.

    Only the returned bytes are covered by the signature; callers must parse
    those, never the raw message, or unsigned lines could slip in.
    """
    certs = [c for k in keys for c in _certs(k)]
    asked: list[str] = []

    def store(ids: list[str]) -> list:
        asked.extend(ids)
        return certs

    if not data.startswith(b"-----BEGIN PGP SIGNED MESSAGE-----"):
        raise IntegrityError(f"{what} is not an OpenPGP clearsigned message; refusing to use it.")
    try:
        result = pysequoia.verify(bytes=data, store=store)
    except Exception as e:
        trusted = ", ".join(c.fingerprint.upper() for c in certs)
        raise IntegrityError(
            f"{what}: the signature does not verify against the trusted keys "
            f"({_first_line(e)}). Signed by key id(s) "
            f"{', '.join(i.upper() for i in asked) or 'none'}; trusted: {trusted}. The file was "
            "not used or cached; a tampered mirror or a missing key can cause this."
        ) from None
    if not result.valid_sigs or result.bytes is None:
        raise IntegrityError(f"{what}: no valid signature by a trusted key; not used.")
    return result.bytes

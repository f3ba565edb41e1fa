"""Builders for hand-made APK fixtures (signed indexes, crafted packages).

Kept in a test_apk* module so other test files can import it; it holds no tests
of its own. Everything is deterministic (gzip mtime 0, fixed tar metadata).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# Beside the checkout (../shared); a git worktree elsewhere names it with ASSEMBLER_SHARED.
FIXTURES = Path(os.environ.get("ASSEMBLER_SHARED")
                or Path(__file__).resolve().parents[2] / "shared") / "fixtures" / "alpine"


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def tar_bytes(
    entries: list[tuple[tarfile.TarInfo, bytes]],
    *,
    fmt: int = tarfile.PAX_FORMAT,
    end_marker: bool = True,
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, content in entries:
            info.size = len(content) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(content) if info.isfile() else None)
    data = buf.getvalue()
    if not end_marker:
        # abuild cuts the end-of-archive blocks off signature and control tars
        data = data.rstrip(b"\0")
        data += b"\0" * (-len(data) % 512)
    return data


def file_info(name: str, *, mode: int = 0o644, type_: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = mode
    info.type = type_
    info.mtime = 0
    info.uname = info.gname = "root"
    return info


@dataclass
class Signer:
    key_name: str
    private: rsa.RSAPrivateKey

    @classmethod
    def new(cls, key_name: str = "test-signer.rsa.pub") -> Signer:
        return cls(key_name, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def signature_member(self, signed: bytes, *, sha256: bool = False) -> bytes:
        algo = hashes.SHA256() if sha256 else hashes.SHA1()
        sig = self.private.sign(signed, padding.PKCS1v15(), algo)
        prefix = ".SIGN.RSA256." if sha256 else ".SIGN.RSA."
        return gz(
            tar_bytes(
                [(file_info(prefix + self.key_name), sig)],
                fmt=tarfile.USTAR_FORMAT,
                end_marker=False,
            )
        )


def make_index(stanzas: str, signer: Signer | None, *, sha256: bool = False,
               description: bytes = b"test repo") -> bytes:
    index_member = gz(
        tar_bytes(
            [(file_info("DESCRIPTION"), description), (file_info("APKINDEX"), stanzas.encode())],
            fmt=tarfile.USTAR_FORMAT,
        )
    )
    if signer is None:
        return index_member
    return signer.signature_member(index_member, sha256=sha256) + index_member


def make_apk(
    data_entries: list[tuple[tarfile.TarInfo, bytes]],
    *,
    name: str = "crafted",
    version: str = "1.0-r0",
    signer: Signer | None = None,
    datahash: str | None = None,
) -> bytes:
    """An apk v2 as abuild/melange lay it out, with per-file SHA1 PAX headers."""
    for info, content in data_entries:
        if info.isfile():
            info.pax_headers = {"APK-TOOLS.checksum.SHA1": hashlib.sha1(content).hexdigest()}
    data_member = gz(tar_bytes(data_entries))
    pkginfo = (
        f"pkgname = {name}\npkgver = {version}\narch = x86_64\nsize = 1\n"
        f"pkgdesc = crafted for tests\nlicense = MIT\n"
        f"datahash = {datahash or hashlib.sha256(data_member).hexdigest()}\n"
    )
    control_member = gz(
        tar_bytes(
            [(file_info(".PKGINFO"), pkginfo.encode())], fmt=tarfile.USTAR_FORMAT, end_marker=False
        )
    )
    sig = signer.signature_member(control_member) if signer else b""
    return sig + control_member + data_member

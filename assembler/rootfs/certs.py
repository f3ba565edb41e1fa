"""The CA bundle update-ca-certificates would write, built without running it."""

from __future__ import annotations

import base64
import re
from typing import Any

from assembler.errors import SpecError
from assembler.rootfs.tree import GENERATED, Tree

BUNDLE = "etc/ssl/certs/ca-certificates.crt"
SOURCE_DIR = "usr/share/ca-certificates/"
# Where update-ca-certificates takes a site's own certificates from (and apko writes them).
LOCAL_DIR = "usr/local/share/ca-certificates/"
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)


def pem_certificates(data: bytes) -> list[bytes]:
    """The DER bytes of every PEM certificate block in `data`, in order."""
    out = []
    for m in _PEM.finditer(data):
        try:
            out.append(base64.b64decode(b"".join(m.group(1).split()), validate=True))
        except ValueError:
            continue
    return out


def check_certificate(content: str, where: str) -> bytes:
    """The DER of a spec's certificate: exactly one PEM block that parses as X.509."""
    from cryptography import x509

    found = _PEM.findall(content.encode())
    if len(found) != 1 or content.count("-----BEGIN") != 1:
        raise SpecError(f"{where}: a certificate's content must hold exactly one PEM block "
                        "(-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----), "
                        f"found {content.count('-----BEGIN')}.")
    blocks = pem_certificates(content.encode())
    try:
        if not blocks:
            raise ValueError("its base64 text does not decode")
        x509.load_der_x509_certificate(blocks[0])
    except ValueError as e:
        raise SpecError(f"{where}: the certificate does not parse as X.509 ({e}).") from None
    return blocks[0]


def _pem(der: bytes) -> bytes:
    b64 = base64.b64encode(der)
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


def write_ca_bundle(tree: Tree, path: str = BUNDLE, origin: str = GENERATED) -> int:
    """Concatenate every shipped certificate (sorted by path, as the tool does); return count."""
    certs = sorted(e.path for e in tree.entries()
                   if e.path.startswith(SOURCE_DIR) and e.path.endswith(".crt")
                   and e.kind in ("file", "hardlink"))
    if not certs:
        return 0
    parts = []
    for cert in certs:
        pem = tree.read(cert)
        parts.append(pem if pem.endswith(b"\n") else pem + b"\n")
    tree.add_file(path, b"".join(parts), 0o644, origin=origin, replace=True)
    return len(certs)


def add_local_certificates(tree: Tree, certificates: list[dict[str, Any]], where: str) -> None:
    """The spec's certificates: each to LOCAL_DIR/<name>.crt and appended to the bundle
    (after the distribution's, as update-ca-certificates orders them). An image without a
    bundle gets one holding only these."""
    if not certificates:
        return
    added = []
    for c in certificates:
        der = check_certificate(c["content"], f"{where}:{c['line']}")
        pem = _pem(der)
        tree.add_file(f"{LOCAL_DIR}{c['name']}.crt", pem, 0o644, replace=True)
        added.append(pem)
    bundle = tree.resolve(BUNDLE)
    existing = tree.read(BUNDLE) if bundle is not None and bundle.kind != "dir" else b""
    if existing and not existing.endswith(b"\n"):
        existing += b"\n"
    present = set(pem_certificates(existing))
    extra = b"".join(p for p in added if pem_certificates(p)[0] not in present)
    tree.add_file(bundle.path if bundle is not None else BUNDLE, existing + extra, 0o644,
                  replace=True)

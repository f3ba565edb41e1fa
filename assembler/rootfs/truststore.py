"""The Java trust store ca-certificates-java's postinst would make, from the image's bundle.

A JRE's lib/security/cacerts links to /etc/ssl/certs/java/cacerts, which only that
postinst creates; without it every TLS handshake fails ("the trustAnchors parameter
must be non-empty"). We write it as PKCS#12 (the JDK's default store type since 9)
without a password or MAC, so the bytes depend only on the certificates: the JDK opens
such a store with or without the conventional "changeit".
"""

from __future__ import annotations

import hashlib
import re
import warnings

from assembler.lock.model import LockedPackage
from assembler.rootfs.certs import BUNDLE, pem_certificates
from assembler.rootfs.der import children, encode, tlv
from assembler.rootfs.tree import Tree

TRUSTSTORE = "etc/ssl/certs/java/cacerts"


def needs_truststore(tree: Tree, packages: list[LockedPackage]) -> bool:
    """A JRE links to the store, or ca-certificates-java (whose job it is) is installed."""
    if any(p.name == "ca-certificates-java" for p in packages):
        return True
    return any(e.kind == "symlink" and e.link.lstrip("/") == TRUSTSTORE
               for e in tree.entries())


def _alias(cert: object, der: bytes) -> bytes:
    from cryptography.x509.oid import NameOID

    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)  # type: ignore[attr-defined]
    label = str(names[0].value) if names else "ca"
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "ca"
    # The fingerprint keeps aliases unique (two CAs may share a common name).
    return f"{slug}-{hashlib.sha256(der).hexdigest()[:12]}".encode()


def truststore_bytes(bundle: bytes) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import NoEncryption, pkcs12

    certs = []
    seen = set()
    for der in pem_certificates(bundle):
        if der in seen:
            continue
        seen.add(der)
        try:
            with warnings.catch_warnings():
                # Old roots with a negative serial: still trusted by the bundle's users.
                warnings.simplefilter("ignore")
                cert = x509.load_der_x509_certificate(der)
        except ValueError:
            continue  # update-ca-certificates would not have taken it either
        certs.append(pkcs12.PKCS12Certificate(cert, _alias(cert, der)))
    certs.sort(key=lambda c: c.friendly_name or b"")
    return _without_mac(pkcs12.serialize_java_truststore(certs, NoEncryption()))


def _without_mac(pfx: bytes) -> bytes:
    """PFX is SEQUENCE {version, authSafe, macData OPTIONAL}; the MAC's salt is random,
    and with no password it protects nothing, so keep only the first two."""
    _, body, end = tlv(pfx, 0)
    version, auth_safe = children(pfx, body, end)[:2]
    return encode(0x30, pfx[version[1]:auth_safe[3]])


def write_truststore(tree: Tree) -> int:
    """Write TRUSTSTORE from the CA bundle; returns the number of certificates (0: no bundle)."""
    entry = tree.resolve(BUNDLE)
    if entry is None or entry.kind not in ("file", "hardlink"):
        return 0
    bundle = tree.read(BUNDLE)
    data = truststore_bytes(bundle)
    tree.add_file(TRUSTSTORE, data, 0o644, replace=True)
    return len(set(pem_certificates(bundle)))

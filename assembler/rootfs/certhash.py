"""OpenSSL's hashed certificate directory (/etc/ssl/certs/HASH.N), as `openssl rehash`
would make it, computed here: OpenSSL's subject-name hash needs no OpenSSL.

The hash is the first four bytes (little endian) of the SHA-1 of the subject's
canonical encoding: each string value re-encoded as a UTF8String, with ASCII
lower-cased, outer whitespace dropped and inner runs collapsed to one space; the
RDN SETs concatenated without the outer SEQUENCE.
"""

from __future__ import annotations

import hashlib
import posixpath

from assembler.rootfs.certs import LOCAL_DIR, SOURCE_DIR, pem_certificates
from assembler.rootfs.der import DerError, children, encode, tlv
from assembler.rootfs.tree import Tree

CERTS_DIR = "etc/ssl/certs"
_SPACE = b" \t\n\v\f\r"
# ASN.1 string types OpenSSL canonicalises, and how to read each as text.
_STRINGS = {0x0C: "utf-8", 0x13: "latin-1", 0x14: "latin-1", 0x16: "latin-1",
            0x1A: "latin-1", 0x1E: "utf-16-be", 0x1C: "utf-32-be"}


def _canon(text: bytes) -> bytes:
    text = text.strip(_SPACE)
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c >= 0x80:
            out.append(c)
            i += 1
        elif c in _SPACE:
            out.append(0x20)
            while i < len(text) and text[i] in _SPACE:
                i += 1
        else:
            out.append(c + 32 if 0x41 <= c <= 0x5A else c)
            i += 1
    return bytes(out)


def subject_name(der: bytes) -> bytes:
    """The subject Name element of an X.509 certificate."""
    _, body, end = tlv(der, 0)                    # Certificate
    _, tbs, tbs_end = tlv(der, body)              # TBSCertificate
    fields = children(der, tbs, tbs_end)
    if fields and fields[0][0] == 0xA0:            # [0] version
        fields = fields[1:]
    if len(fields) < 5:
        raise DerError("not a certificate")
    _, start, _, stop = fields[4]                  # serial, signature, issuer, validity, subject
    return der[start:stop]


def subject_hash(der: bytes) -> str:
    """`openssl x509 -subject_hash` of a DER certificate, as 8 hex digits."""
    name = subject_name(der)
    _, body, end = tlv(name, 0)
    canon = b""
    for _, _, rdn_body, rdn_end in children(name, body, end):
        entries = []
        for _, _, atv_body, atv_end in children(name, rdn_body, rdn_end):
            (_, oid_s, _, oid_e), (vtag, _, vbody, vend) = \
                children(name, atv_body, atv_end)[:2]
            value = name[vbody:vend]
            if vtag in _STRINGS:
                text = value.decode(_STRINGS[vtag], "replace").encode("utf-8")
                element = encode(0x0C, _canon(text))
            else:
                element = encode(vtag, value)
            entries.append(encode(0x30, name[oid_s:oid_e] + element))
        canon += encode(0x31, b"".join(sorted(entries)))
    digest = hashlib.sha1(canon).digest()
    return f"{int.from_bytes(digest[:4], 'little'):08x}"


def write_hash_links(tree: Tree) -> int:
    """/etc/ssl/certs/NAME.pem for every certificate file the image keeps, and HASH.N links
    to them; returns how many hash links were made."""
    sources = sorted(e.path for e in tree.entries()
                     if e.path.startswith((SOURCE_DIR, LOCAL_DIR)) and e.path.endswith(".crt")
                     and e.kind in ("file", "hardlink"))
    if not sources:
        return 0
    seen: set[bytes] = set()
    taken: dict[str, int] = {}
    made = 0
    for source in sources:
        stem = posixpath.basename(source)[:-4]
        link = f"{CERTS_DIR}/{stem}.pem"
        if tree.get(link) is None:
            tree.add_symlink(link, "/" + source)
        for der in pem_certificates(tree.read(source))[:1]:
            if der in seen:
                continue
            seen.add(der)
            try:
                h = subject_hash(der)
            except DerError:
                continue
            n = taken.get(h, 0)
            taken[h] = n + 1
            tree.add_symlink(f"{CERTS_DIR}/{h}.{n}", f"{stem}.pem", replace=True)
            made += 1
    return made

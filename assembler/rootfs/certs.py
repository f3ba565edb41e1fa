"""The CA bundle update-ca-certificates would write, built without running it."""

from __future__ import annotations

from assembler.rootfs.tree import GENERATED, Tree

BUNDLE = "etc/ssl/certs/ca-certificates.crt"
SOURCE_DIR = "usr/share/ca-certificates/"


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

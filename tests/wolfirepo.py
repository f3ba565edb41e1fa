"""A Wolfi-layout repository for tests: one `os` repository without branch or
component (<base>/os/<arch>/APKINDEX.tar.gz), signed with a local key named like
Wolfi's own, the key served beside the index as Wolfi serves it.

It holds the real fixture hello-wolfi (a melange build, re-signed as a mirror
would: its control and data, so Q1 and datahash, are untouched) and a glibc made
of the host's own loader and libc, so hello really runs in the image.
"""

from __future__ import annotations

from pathlib import Path

from apkrepo import Apk, F, Sym, resign, write_flat_repo
from aptrepo import Server, serve_start
from test_apk_support import FIXTURES, Signer

HELLO = "hello-wolfi-2.12.1-r0.apk"
KEY = "wolfi-signing.rsa.pub"
LOADER = Path("/lib64/ld-linux-x86-64.so.2")
LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")


def glibc() -> Apk:
    """glibc as Wolfi lays it out (/usr/lib, the loader also at /lib64)."""
    return Apk("glibc", "2.40-r0", provides=["so:libc.so.6=6", "so:ld-linux-x86-64.so.2=2"],
               files={"usr/lib/libc.so.6": F(LIBC.read_bytes(), 0o755),
                      "usr/lib/ld-linux-x86-64.so.2": F(LOADER.resolve().read_bytes(), 0o755),
                      "lib64/ld-linux-x86-64.so.2": Sym("/usr/lib/ld-linux-x86-64.so.2")})


def write_wolfi(root: Path, signer: Signer, extra: list[Apk] = ()) -> None:
    hello = resign((FIXTURES / "packages" / HELLO).read_bytes(), signer)
    write_flat_repo(root, "os", [glibc(), *extra], signer, external={HELLO: hello})
    (root / "os" / KEY).write_bytes(signer.public_pem)  # beside the index, as Wolfi does


def serve_wolfi(root: Path, signer: Signer, extra: list[Apk] = ()) -> Server:
    write_wolfi(root, signer, extra)
    return serve_start(root)

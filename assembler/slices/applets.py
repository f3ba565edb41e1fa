"""Busybox's applet links, made without running busybox (`busybox --install`).

A busybox binary carries its applet names as one sorted, NUL-separated string
table starting "[", "[[" (the test applet's two spellings; the shell's builtin
table spells them "2[", "2[["); reading it gives the
exact set `busybox --list` prints for that build.
"""

from __future__ import annotations

import posixpath
import re

from assembler.errors import SpecError
from assembler.rootfs.tree import Tree

MAX_BINARY = 64 << 20
_NAME = re.compile(rb"[a-z0-9\[\]][a-z0-9_.\-\[\]]*")
_START = b"[\0[[\0"


def applet_names(binary: bytes) -> list[str]:
    """The applet table's names, or [] when the binary has no recognisable table."""
    start = binary.find(_START)
    if start < 0:
        return []
    names: list[str] = []
    pos = start
    while pos < len(binary):
        end = binary.find(b"\0", pos)
        if end < 0:
            break
        name = binary[pos:end]
        if not name or not _NAME.fullmatch(name) or (names and name.decode() <= names[-1]):
            break  # the table ends where the sorted run of names does
        names.append(name.decode())
        pos = end + 1
    return names


def write_applet_links(tree: Tree, directory: str, package: str, where: str) -> int:
    """Link every applet of `package`'s busybox into `directory`; returns how many."""
    binaries = [e for e in tree.entries() if e.origin == package and e.kind == "file"
                and posixpath.basename(e.path) == "busybox"]
    if not binaries:
        raise SpecError(f"{where}: generate: applets needs the busybox binary of {package} "
                        "in the same slice.")
    binary = binaries[0]
    if binary.size > MAX_BINARY:
        raise SpecError(f"{where}: /{binary.path} is larger than {MAX_BINARY >> 20} MiB; "
                        "not a busybox binary.")
    names = applet_names(tree.read(binary.path))
    if not names:
        raise SpecError(f"{where}: /{binary.path} has no busybox applet table.")
    base = directory.strip("/")
    tree.add_dir(base, 0o755)
    for name in ["busybox", *names]:
        path = f"{base}/{name}"
        if tree.get(path) is None:
            tree.add_symlink(path, "/" + binary.path, origin=package)
    return len(names)

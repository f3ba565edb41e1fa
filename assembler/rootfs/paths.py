"""The spec's `paths`: directories, files, links and permissions put on the tree last.

Local content (`source:`) is copied byte for byte from the user's disk. What
the host adds to those files is dropped so the image stays reproducible: owners
come from the spec (default root), mtimes are SOURCE_DATE_EPOCH (a checkout's
mtimes are the clone's), and directories are walked in sorted order. Modes are
the source's unless the spec gives one.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from assembler.errors import AssemblerError, SpecError
from assembler.rootfs.tree import Tree
from assembler.spec.document import PathEntry, Spec

# Not a package name (those have no spaces): the layer writer puts these entries on top.
APP_ORIGIN = "app (paths with source)"


def apply_paths(tree: Tree, spec: Spec) -> None:
    for p in spec.paths:
        where = spec.where(p.line)
        try:
            _apply(tree, p, where)
        except AssemblerError as e:
            raise SpecError(f"{where}: {e.message}") from None


def _apply(tree: Tree, p: PathEntry, where: str) -> None:
    uid, gid = p.uid or 0, p.gid or 0
    if p.source is not None:
        copy_source(tree, p, where)
    elif p.type == "directory":
        tree.add_dir(p.path, 0o755 if p.mode is None else p.mode, uid, gid)
    elif p.type in ("file", "empty-file"):
        tree.add_file(p.path, (p.content or "").encode(), 0o644 if p.mode is None else p.mode,
                      uid, gid, replace=True)
    elif p.type == "symlink":
        tree.add_symlink(p.path, p.target or "", uid, gid, replace=True)
    elif p.type == "hardlink":
        tree.add_hardlink(p.path, p.target or "")
    elif p.type == "permissions":
        set_permissions(tree, p, where)


def set_permissions(tree: Tree, p: PathEntry, where: str) -> None:
    """Change what the entry gives (mode, uid, gid), of the path or, recursive, its subtree."""
    entry = tree.get(p.path)
    if entry is None:
        raise SpecError(f"{where}: permissions for {p.path}, which is not in the image.")
    targets = [entry]
    if p.recursive:
        if entry.kind != "dir":
            raise SpecError(f"{where}: recursive permissions for {p.path}, which is a "
                            f"{entry.kind}, not a directory.")
        prefix = entry.path + "/"
        targets += [e for e in tree.entries() if e.path.startswith(prefix)]
    for e in targets:
        # A symlink's own mode means nothing to the kernel; its owner does (lchown).
        if p.mode is not None and e.kind != "symlink":
            e.mode = p.mode
        if p.uid is not None:
            e.uid = p.uid
        if p.gid is not None:
            e.gid = p.gid


def copy_source(tree: Tree, p: PathEntry, where: str) -> None:
    """Copy p.source (a file, or a directory recursively) to p.path."""
    assert p.source is not None
    uid, gid = p.uid or 0, p.gid or 0
    if p.type == "file":
        st = p.source.stat()  # the spec may name a link to the file: copy what it points to
        _copy_file(tree, p.source, p.path, p.mode if p.mode is not None else st.st_mode,
                   uid, gid, where)
        return
    tree.add_dir(p.path, _lstat(p.source, where).st_mode & 0o7777, uid, gid, origin=APP_ORIGIN)
    for dirpath, dirnames, filenames in os.walk(p.source, onerror=_raise(where)):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(p.source)
        for name in sorted(dirnames + filenames):
            local = Path(dirpath) / name
            dest = f"{p.path}/{rel_dir / name}"
            st = _lstat(local, where)
            if stat.S_ISLNK(st.st_mode):
                # Links are copied as links, never followed: the image resolves them.
                tree.add_symlink(dest, os.readlink(local), uid, gid, origin=APP_ORIGIN,
                                 replace=True)
            elif stat.S_ISDIR(st.st_mode):
                tree.add_dir(dest, st.st_mode & 0o7777, uid, gid, origin=APP_ORIGIN)
            elif stat.S_ISREG(st.st_mode):
                _copy_file(tree, local, dest, st.st_mode, uid, gid, where)
            else:
                raise SpecError(f"{where}: {local} is neither a file, a directory nor a "
                                "symlink (a socket, fifo or device cannot go in an image).")


def _copy_file(tree: Tree, local: Path, dest: str, mode: int, uid: int, gid: int,
               where: str) -> None:
    try:
        with open(local, "rb") as f:
            tree.add_file(dest, f, mode & 0o7777, uid, gid, origin=APP_ORIGIN, replace=True)
    except OSError as e:
        raise SpecError(f"{where}: cannot read {local} ({e.strerror}).") from None


def _lstat(path: Path, where: str) -> os.stat_result:
    try:
        return path.lstat()
    except OSError as e:
        raise SpecError(f"{where}: cannot read {path} ({e.strerror}).") from None


def _raise(where: str) -> Callable[[OSError], None]:
    def fail(e: OSError) -> None:
        raise SpecError(f"{where}: cannot read {e.filename} ({e.strerror}).")
    return fail

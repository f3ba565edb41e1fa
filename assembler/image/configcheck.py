"""The image config's own check: what it names to run, and where, is in the image.

A runtime only finds out when the container starts ("exec: no such file"), so the
build refuses an entrypoint (or a cmd without one) that is not an executable file of
the image after `paths:` were applied, and a work-dir that is not a directory.
"""

from __future__ import annotations

import posixpath

from assembler.errors import SpecError
from assembler.rootfs.tree import Tree
from assembler.spec.document import Spec


def _line(spec: Spec, key: str) -> str:
    """`file:line` of a top-level key, for the error (the spec was parsed already)."""
    try:
        for n, text in enumerate(spec.path.read_text("utf-8").splitlines(), 1):
            if text.startswith(f"{key}:"):
                return f"{spec.path}:{n}"
    except OSError:
        pass
    return str(spec.path)


def _elsewhere(tree: Tree, name: str) -> str:
    """Where executables called `name` are in the image, for a hint."""
    found = sorted("/" + e.path for e in tree.entries()
                   if posixpath.basename(e.path) == name and e.kind != "dir")[:3]
    return f" The image has {', '.join(found)}." if found else ""


def check_config(tree: Tree, spec: Spec, search_path: str) -> None:
    key, argv = ("entrypoint", spec.entrypoint) if spec.entrypoint else ("cmd", spec.cmd)
    if argv:
        program = argv[0]
        if "/" in program:
            candidates = [posixpath.join(spec.work_dir or "/", program)]
        else:
            candidates = [posixpath.join(d, program) for d in search_path.split(":") if d]
        ok = False
        for path in candidates:
            entry = tree.resolve(path)
            if entry is not None and entry.kind in ("file", "hardlink"):
                if not entry.mode & 0o111:
                    raise SpecError(f"{_line(spec, key)}: {key} {program!r}: {path} is in the "
                                    f"image but not executable (mode {entry.mode:04o}); set a "
                                    "mode with a 'permissions' entry under paths.")
                ok = True
                break
        if not ok:
            where = "is not a file in the image" if "/" in program else \
                f"is not an executable file in any directory of PATH ({search_path})"
            raise SpecError(f"{_line(spec, key)}: {key} {program!r} {where}, so the "
                            "container could not start." + _elsewhere(tree, posixpath.basename(
                                program)) + " Add the package that provides it, or fix the "
                            "path.")
    if spec.work_dir:
        entry = tree.resolve(spec.work_dir)
        if entry is None or entry.kind != "dir":
            what = "is not in the image" if entry is None else f"is a {entry.kind}, not a " \
                "directory"
            raise SpecError(f"{_line(spec, 'work-dir')}: work-dir {spec.work_dir} {what}. "
                            "Create it under paths ({path: ..., type: directory}) or give an "
                            "account that home.")

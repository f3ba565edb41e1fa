"""Cutting a package: which of its unpacked members a set of its slices takes.

Paths are compared in the package's own spelling (`/usr/lib/x`, directories
with a trailing `/`), which is what slice definitions are written against;
the rootfs tree maps them onto the image (merged /usr and all) afterwards.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from assembler.errors import SpecError
from assembler.fetch.unpacked import DIR, FILE, HARDLINK, Member
from assembler.slices.model import PathSpec, Slice, matches


def member_path(member: Member) -> str:
    """`./usr/lib/` -> `/usr/lib/`: absolute, a directory keeps its trailing slash."""
    name = member[0]
    name = name[2:] if name.startswith("./") else name
    name = "/" + name.strip("/")
    return name + "/" if member[1] == DIR and name != "/" else name


@dataclass
class Cut:
    members: list[Member] = field(default_factory=list)          # in package order
    owners: dict[str, set[str]] = field(default_factory=dict)   # package path -> slice names
    made: list[tuple[Slice, PathSpec]] = field(default_factory=list)  # text/symlink/dir/generate
    transient: set[str] = field(default_factory=set)             # until: mutate only
    copies: list[tuple[str, Member]] = field(default_factory=list)  # copy: (new name, source)


def cut(package: str, version: str, slices: list[Slice], members: list[Member],
        arch: str) -> Cut:
    by_path = {member_path(m): m for m in members}
    out = Cut()
    chosen: dict[str, set[str]] = {}
    keep: set[str] = set()
    for s in slices:
        for spec in s.contents.values():
            if not spec.applies(arch):
                continue
            if not spec.from_package:
                out.made.append((s, spec))
                continue
            if spec.source is not None:   # copy: another path's content, put at this one
                member = by_path.get(spec.source)
                if member is None:
                    raise SpecError(f"{s.where(spec.line)}: slice {s.full} copies "
                                    f"{spec.source} to {spec.path}, but {package} {version} "
                                    f"({arch}) has no such path.")
                out.copies.append(("." + spec.path, member))
                chosen.setdefault(spec.path, set()).add(s.full)
                if spec.until is None:
                    keep.add(spec.path)
                continue
            if spec.kind == "copy":
                hits = [spec.path] if spec.path in by_path else []
            else:
                hits = [p for p in by_path if matches(spec.path, p)]
            if not hits:
                raise SpecError(f"{s.where(spec.line)}: slice {s.full} names {spec.path}, but "
                                f"{package} {version} ({arch}) has no such "
                                + ("path." if spec.kind == "copy" else "matching path."))
            for p in hits:
                chosen.setdefault(p, set()).add(s.full)
                if spec.until is None:
                    keep.add(p)
    # Parent directories come from the package when it has them, so their
    # modes are the package's and not an invented 0755.
    wanted = set(chosen)
    for p in list(chosen):
        parent = posixpath.dirname(p.rstrip("/"))
        while parent not in ("/", ""):
            wanted.add(parent + "/")
            parent = posixpath.dirname(parent)
    for m in members:
        p = member_path(m)
        if p not in wanted:
            continue
        if m[1] == HARDLINK:
            target = by_path.get("/" + m[6].removeprefix("./").lstrip("/"))
            if target is not None and target[1] == FILE and member_path(target) not in wanted:
                # The link's target stays out of the image: it becomes a plain file.
                m = (m[0], FILE, target[2], target[3], target[4], target[5], "", m[7],
                     target[8], target[9], target[10], b"0")
        out.members.append(m)
    for name, m in out.copies:
        if m[1] == HARDLINK:   # the copy is a file of its own, whatever the source was
            target = by_path.get("/" + m[6].removeprefix("./").lstrip("/"))
            m = target if target is not None else m
        out.members.append((name, *m[1:]))
    out.owners = chosen
    out.transient = {p for p in chosen if p not in keep}
    return out

"""apk dependency atoms: ``[!]name[@tag][op version]``, as in D:, p:, i:, r: lines.

Examples: ``musl``, ``so:libc.musl-x86_64.so.1``, ``/bin/sh``, ``!busybox-suid``,
``zlib>=1.2``, ``cmd:hello=2.12-r0``, ``python3~3.10``, ``foo><Q1abc...=``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assembler.alpine import version as apkver

# apk splits the atom at the first comparison character (its "dependency comparer" class).
_ATOM = re.compile(
    r"^(?P<conflict>!?)(?P<name>[^<>=~]+?)(?:@(?P<tag>[^<>=~@]+))?"
    r"(?:(?P<op>[<>=~]+)(?P<version>.*))?$"
)


@dataclass(frozen=True)
class Dependency:
    """One parsed atom. `op` is ``""`` (any version) or an apk operator;
    for ``><`` the `version` holds a package identity checksum (``Q1...``)."""

    name: str
    op: str = ""
    version: str = ""
    conflict: bool = False
    tag: str = ""

    @classmethod
    def parse(cls, text: str, *, strict: bool = False) -> Dependency:
        """Parse one atom. Real indexes carry a few provides whose version apk
        itself calls invalid (``pc:librtmp=v2.4``); they still compare, so only
        `strict` (for user input) rejects them."""
        m = _ATOM.match(text)
        if (
            not m
            or not m.group("name")
            or (m.group("op") and not m.group("version"))
            or any(c in (m.group("version") or "") for c in " \t")
        ):
            raise ValueError(f"not an apk dependency: {text!r}")
        op = m.group("op") or ""
        ver = m.group("version") or ""
        if op:
            mask = apkver.parse_op(op)  # raises ValueError on nonsense like "=<>"
            if mask != apkver.CHECKSUM and any(c in ver for c in "<>=~"):
                # a checksum ends in base64 "=" padding; a version never holds these
                raise ValueError(f"not an apk dependency: {text!r}")
            if strict and mask != apkver.CHECKSUM and not apkver.is_valid(ver):
                raise ValueError(f"invalid version {ver!r} in apk dependency {text!r}")
            op = apkver.op_string(mask)  # "~=" and "~" are the same operator
        return cls(
            name=m.group("name"),
            op=op,
            version=ver,
            conflict=bool(m.group("conflict")),
            tag=m.group("tag") or "",
        )

    def __str__(self) -> str:
        tag = f"@{self.tag}" if self.tag else ""
        return f"{'!' if self.conflict else ''}{self.name}{tag}{self.op}{self.version}"

    def matches(self, version: str, *, checksum: str | None = None) -> bool:
        """Does a provider at `version` (identity `checksum`) meet the version part?
        The name and the conflict flag are the resolver's business."""
        return apkver.satisfies(version, self.op, self.version, checksum=checksum)


def parse_atoms(field: str) -> list[Dependency]:
    """Parse a space-separated D:/p:/i:/r: value."""
    return [Dependency.parse(word) for word in field.split()]

"""What a slice definition says, once read: slices, their paths, and chisel's glob rules.

Shared by the definition reader (definition.py), the release checks
(checks.py), the catalog (catalog.py) and the cutter (cut.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

# chisel's only generator is `manifest`; these are ours, declarative stand-ins for the
# mutate scripts that write /etc/passwd, /etc/group and the CA bundle, and for
# `busybox --install` (applet links, slices/applets.py).
EXTRA_GENERATORS = ("ca-bundle", "passwd", "group", "applets")
GENERATORS = ("manifest", *EXTRA_GENERATORS)
_WILD = re.compile(r"[*?]")


def is_glob(path: str) -> bool:
    return _WILD.search(path) is not None


@dataclass(frozen=True)
class PathSpec:
    path: str                       # absolute, as written; a trailing / means a directory
    kind: str                       # copy | glob | text | symlink | dir | generate
    line: int
    arch: tuple[str, ...] | None = None
    mode: int | None = None
    text: str | None = None
    link: str | None = None
    until: str | None = None        # "mutate": for generators only, removed afterwards
    prefer: str | None = None
    generate: str | None = None
    mutable: bool = False
    source: str | None = None       # copy: the package path the content comes from

    def applies(self, arch: str) -> bool:
        return self.arch is None or arch in self.arch

    @property
    def from_package(self) -> bool:
        return self.kind in ("copy", "glob")


@dataclass
class Slice:
    package: str
    name: str
    file: Path
    line: int
    essential: list[tuple[str, tuple[str, ...] | None]] = field(default_factory=list)
    contents: dict[str, PathSpec] = field(default_factory=dict)
    hint: str = ""
    mutate: str | None = None       # a Starlark script: never run
    mutate_line: int = 0
    covered: bool = False           # a declarative generator does what `mutate` does
    written: dict[str, PathSpec] = field(default_factory=dict)  # paths as the file says them

    @property
    def full(self) -> str:
        return f"{self.package}_{self.name}"

    def where(self, line: int | None = None) -> str:
        return f"{self.file}:{line or self.line}"

    def essentials(self, arch: str) -> list[str]:
        return [n for n, archs in self.essential if archs is None or arch in archs]


# -- globs ---------------------------------------------------------------------------

@lru_cache(maxsize=16384)
def _tokens(pattern: str) -> tuple[str, ...]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append("**")
            i += 2
        else:
            out.append(pattern[i])
            i += 1
    return tuple(out)


@lru_cache(maxsize=4096)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """chisel's globs: `*` and `?` stay within a path component, `**` crosses them."""
    parts = []
    for t in _tokens(pattern):
        parts.append({"**": ".*", "*": "[^/]*", "?": "[^/]"}.get(t, re.escape(t)))
    return re.compile("".join(parts) + r"\Z", re.S)


def matches(pattern: str, path: str) -> bool:
    if not _WILD.search(pattern):
        return pattern == path
    return glob_regex(pattern).match(path) is not None


@lru_cache(maxsize=65536)
def overlap(a: str, b: str) -> bool:
    """Whether some path matches both globs.

    A walk over pairs of positions (i in a, j in b): a star may match nothing
    (skip it), or take the character the other side's token matches (stay); two
    stars facing each other never need to take a character together. So the
    search is over len(a) x len(b) states, whatever the alphabet.
    """
    ta, tb = _tokens(a), _tokens(b)
    stars = ("*", "**")
    seen: set[tuple[int, int]] = set()
    todo = [(0, 0)]
    while todo:
        i, j = todo.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(ta) and j == len(tb):
            return True
        x = ta[i] if i < len(ta) else None
        y = tb[j] if j < len(tb) else None
        if x in stars:
            todo.append((i + 1, j))
        if y in stars:
            todo.append((i, j + 1))
        if x is None or y is None or (x in stars and y in stars):
            continue
        if x in stars:       # a's star takes the character b's token matches
            if x == "**" or y != "/":
                todo.append((i, j + 1))
        elif y in stars:
            if y == "**" or x != "/":
                todo.append((i + 1, j))
        elif x == y or (x == "?" and y != "/") or (y == "?" and x != "/"):
            todo.append((i + 1, j + 1))
    return False


def literal_prefix(pattern: str) -> str:
    m = _WILD.search(pattern)
    return pattern[: m.start()] if m else pattern

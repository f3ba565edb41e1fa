"""update-alternatives, declaratively: the links packages' postinst scripts would register.

Each release has a curated table (repos/debian/<release>/alternatives.yaml):

    java:
      link: /usr/bin/java
      candidates:
        - {path: /usr/lib/jvm/java-17-openjdk-*/bin/java, priority: 1711}

After unpacking, every alternative whose link the image does not already have and
one of whose candidates is in the image gets Debian's two links, LINK ->
/etc/alternatives/NAME -> CANDIDATE, choosing the highest priority as "auto" mode
does. A `*` in a candidate matches one path component; the link's `*`s take the
values the candidate's matched, in order (libblas.so.3 lives in a multiarch
directory). A spec's `alternatives:` chooses a candidate (`java: /path`) or adds an
alternative the table lacks (`name: {link: /usr/bin/x, path: /opt/x}`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assembler.errors import SpecError
from assembler.rootfs.tree import Tree
from assembler.spec.document import compose_yaml, did_you_mean

ALTERNATIVES_DIR = "etc/alternatives"


@dataclass(frozen=True)
class Candidate:
    path: str       # absolute, may hold `*`
    priority: int


@dataclass(frozen=True)
class Alternative:
    name: str
    link: str
    candidates: tuple[Candidate, ...]


def load_table(path: Path) -> dict[str, Alternative]:
    """A release's table; every malformed entry is an error naming the file."""
    import yaml

    compose_yaml(path, "alternatives table")  # the plain error for unreadable or bad YAML
    data = yaml.safe_load(path.read_text("utf-8")) or {}
    if not isinstance(data, dict):
        raise SpecError(f"{path}: an alternatives table maps names to {{link, candidates}}.")
    table = {}
    for name, entry in data.items():
        try:
            link = entry["link"]
            candidates = tuple(Candidate(c["path"], int(c["priority"]))
                               for c in entry["candidates"])
        except (KeyError, TypeError, ValueError):
            raise SpecError(f"{path}: alternative {name!r} needs 'link' and 'candidates' "
                            "(a list of {path, priority}).") from None
        if not link.startswith("/") or not all(c.path.startswith("/") for c in candidates):
            raise SpecError(f"{path}: alternative {name!r}: link and candidate paths must "
                            "be absolute.")
        table[str(name)] = Alternative(str(name), link, candidates)
    return table


def _pattern(glob: str) -> re.Pattern[str]:
    return re.compile("".join("([^/]+)" if part == "*" else re.escape(part)
                              for part in re.split(r"(\*)", glob.lstrip("/"))))


def _present(tree: Tree, path: str) -> bool:
    entry = tree.resolve(path)
    return entry is not None and entry.kind in ("file", "hardlink")


def _matches(tree: Tree, paths: list[str], candidate: Candidate) -> list[tuple[str, tuple]]:
    """(image path, the values its `*`s took) of each file the candidate names."""
    if "*" not in candidate.path:
        return [(candidate.path, ())] if _present(tree, candidate.path) else []
    rx = _pattern(candidate.path)
    return [("/" + p, m.groups()) for p in paths if (m := rx.fullmatch(p))
            and _present(tree, p)]


def _fill(link: str, values: tuple) -> str:
    parts = link.split("*")
    if len(parts) - 1 > len(values):
        return ""
    return parts[0] + "".join(v + rest for v, rest in zip(values, parts[1:], strict=False))


def apply_alternatives(tree: Tree, table: dict[str, Alternative],
                       chosen: dict[str, dict[str, Any]], where: str) -> dict[str, str]:
    """Make the links; returns {link: target}. `chosen` is the spec's alternatives."""
    made: dict[str, str] = {}
    paths = [e.path for e in tree.entries() if e.kind != "dir"]
    # Per-architecture names ("libblas.so.3-*") are chosen by their filled-in name.
    keys = {name: next((k for k in table if k == name or
                        ("*" in k and _pattern(k).fullmatch(name))), None) for name in chosen}
    for name, choice in chosen.items():
        at = f"{where}:{choice['line']}"
        key = keys[name]
        if key is None and "link" not in choice:
            raise SpecError(f"{at}: alternative {name!r} is not in this release's table"
                            + did_you_mean(name, list(table))
                            + " To add one, give its link too: "
                            f"'{name}: {{link: /usr/bin/{name}, path: {choice['path']}}}'.")
        if not _present(tree, choice["path"]):
            raise SpecError(f"{at}: alternative {name!r} points to {choice['path']}, which is "
                            "not a file in the image.")
        link = choice.get("link") or table[key].link  # type: ignore[index]
        if "*" in link:
            rx = _pattern(table[key].candidates[0].path) if key else None
            m = rx.fullmatch(choice["path"].lstrip("/")) if rx else None
            link = _fill(link, m.groups()) if m else ""
            if not link:
                raise SpecError(f"{at}: alternative {name!r}: cannot tell where its link "
                                f"goes for {choice['path']}; give 'link:'.")
        made[_link(tree, name, link, choice["path"])] = choice["path"]
    for name, alt in sorted(table.items()):
        if name in keys.values():
            continue
        best: tuple[int, str, tuple] | None = None
        for c in alt.candidates:
            for path, values in _matches(tree, paths, c):
                if best is None or c.priority > best[0]:
                    best = (c.priority, path, values)
        if best is None:
            continue
        link = _fill(alt.link, best[2]) if "*" in alt.link else alt.link
        if not link or tree.get(link) is not None:
            continue  # a package or the spec put something there: it wins
        made[_link(tree, _fill(name, best[2]), link, best[1])] = best[1]
    return made


def _link(tree: Tree, name: str, link: str, target: str) -> str:
    tree.add_symlink(f"{ALTERNATIVES_DIR}/{name}", target, replace=True)
    tree.add_symlink(link, f"/{ALTERNATIVES_DIR}/{name}", replace=True)
    return link

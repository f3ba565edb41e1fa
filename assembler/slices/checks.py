"""The static checks chisel makes on a release, made the way chisel makes them.

- Two slices naming one path must agree on its content; content taken from a
  package (plain or glob) may be named by slices of one package only, unless
  `prefer` relates the packages. Prefers form chains (a prefers b, b prefers
  c): the chain decides, a loop or a second chain into one package is refused,
  and once a path is in a prefer relation every package naming it must be on it.
- A glob or `generate` path may not match a path of another package (a glob
  of the same package may overlap its own plain paths and globs); generate
  paths may not match any other path at all.
- Essentials exist and have no cycle (whatever their arch).

Speed: chisel compares every glob with every path. Here paths are kept sorted,
so the paths a glob could match are a contiguous range found by bisection on
its literal prefix, and globs are also filed under their literal prefix, so
a glob meets only the globs whose prefix extends or is extended by its own.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from assembler.errors import SpecError
from assembler.slices.model import PathSpec, Slice, is_glob, literal_prefix, matches, overlap
from assembler.spec.document import did_you_mean

Claim = tuple[Slice, PathSpec]


def check_release(packages: dict[str, list[Slice]], known: Iterable[str] | None = None,
                  ) -> None:
    """`known`: every package name of the release (for lazy loads, where only some of
    them are in `packages`); a prefer may name any of them."""
    names = set(known) if known is not None else set(packages)
    paths: dict[str, list[Claim]] = {}
    for pkg in sorted(packages):
        for s in packages[pkg]:
            for p in s.contents.values():
                paths.setdefault(p.path, []).append((s, p))
    prefers = _prefers(paths, names)
    for path, claims in paths.items():
        if len(claims) > 1:
            _same_path(path, claims, prefers)
    for (path, pkg), (source, line) in prefers.sources.items():
        if not any(s.package == pkg for s, _ in paths[path]) and pkg in packages:
            raise SpecError(f"{line}: package {source} prefers package {pkg!r} which does not "
                            f"contain path {path}.")
    _globs(paths)
    check_essentials({s.full: s for ss in packages.values() for s in ss}, names - set(packages))


class _Prefers:
    def __init__(self) -> None:
        self.target: dict[tuple[str, str], str] = {}          # (path, pkg) -> preferred pkg
        self.sources: dict[tuple[str, str], tuple[str, str]] = {}  # (path, preferred) -> who
        self.enforced: dict[str, str] = {}                     # path -> a package preferring

    def reaches(self, path: str, pkg: str, goal: str) -> bool:
        seen = {pkg}
        while True:
            pkg = self.target.get((path, pkg), "")
            if not pkg:
                return False
            if pkg == goal:
                return True
            if pkg in seen:
                raise SpecError(f"package {pkg!r} is part of a prefer loop on {path}.")
            seen.add(pkg)


def _prefers(paths: dict[str, list[Claim]], names: set[str]) -> _Prefers:
    out = _Prefers()
    for path, claims in sorted(paths.items()):
        for s, p in claims:
            if not p.prefer:
                continue
            where = s.where(p.line)
            if p.prefer not in names:
                raise SpecError(f"{where}: slice {s.full} path {path} 'prefer' refers to "
                                f"undefined package {p.prefer!r}.")
            old = out.target.get((path, s.package))
            if old is not None:
                if old != p.prefer:
                    a, b = sorted((old, p.prefer))
                    raise SpecError(f"{where}: package {s.package!r} has conflicting prefers "
                                    f"for {path}: {a} != {b}.")
                continue
            other = out.sources.get((path, p.prefer))
            if other is not None and other[0] != s.package:
                a, b = sorted((other[0], s.package))
                raise SpecError(f"{where}: packages {a!r} and {b!r} cannot both prefer "
                                f"{p.prefer!r} for {path}.")
            out.target[(path, s.package)] = p.prefer
            out.sources[(path, p.prefer)] = (s.package, where)
            out.enforced.setdefault(path, s.package)
    return out


def _same_path(path: str, claims: list[Claim], prefers: _Prefers) -> None:
    for i, (new, np) in enumerate(claims):
        for old, op in claims[:i]:
            if new.package != old.package:
                a, b = sorted((new.package, old.package))
                ab, ba = prefers.reaches(path, b, a), prefers.reaches(path, a, b)
                if ab and ba:
                    raise SpecError(f"package {a!r} is part of a prefer loop on {path}.")
                if ab or ba:
                    continue
                sample = prefers.enforced.get(path)
                if sample is not None:
                    other = a if b == sample else b if a == sample else a
                    x, y = sorted((other, sample))
                    raise SpecError(f"{new.where(np.line)}: package {x!r} and {y!r} conflict "
                                    f"on {path} without prefer relationship.")
            if not _same_content(op, np) or (np.from_package and new.package != old.package):
                raise _conflict((old, op), (new, np))


def _same_content(a: PathSpec, b: PathSpec) -> bool:
    return (a.kind, a.text, a.link, a.source, a.mode, a.mutable, a.generate) == \
        (b.kind, b.text, b.link, b.source, b.mode, b.mutable, b.generate)


def _globs(paths: dict[str, list[Claim]]) -> None:
    # chisel looks at a path's first claimant only; claimants of one path agree on its kind.
    wild = [q for q in sorted(paths)
            if is_glob(q) and paths[q][0][1].kind in ("glob", "generate")]
    index = _Components(paths)
    for path in wild:
        for other in index.candidates(path):
            if other != path:
                _glob_pair(path, other, paths)


def _head(path: str) -> list[str]:
    """The components before the first one with `**`: each matches exactly one component."""
    out = []
    for c in path.split("/"):
        if "**" in c:
            break
        out.append(c)
    return out


class _Node:
    __slots__ = ("kids", "literal", "wild", "wild_starts", "wild_lens", "end", "deep", "_all",
                 "_seen")

    def __init__(self) -> None:
        self.kids: dict[str, _Node] = {}
        self.end: list[str] = []                  # paths that end here
        self.deep: list[str] = []                 # paths that go on with `**` here
        self._all: list[str] | None = None

    def freeze(self) -> None:
        self.literal: list[str] = []              # sorted literal kid names
        self.wild: dict[str, list[str]] = {}      # literal start -> wildcard kid names
        self._seen: dict[str, list[_Node]] = {}   # many globs share a component here
        for name, kid in self.kids.items():
            start = literal_prefix(name)
            if start == name:
                self.literal.append(name)
            else:
                self.wild.setdefault(start, []).append(name)
            kid.freeze()
        self.literal.sort()
        self.wild_starts = sorted(self.wild)
        self.wild_lens = sorted({len(w) for w in self.wild})

    def below(self) -> list[str]:
        if self._all is None:
            self._all = self.end + self.deep + [q for k in self.kids.values() for q in k.below()]
        return self._all

    def matching(self, comp: str) -> list[_Node]:
        """Kids whose component can match some text `comp` matches (a necessary test)."""
        if comp in self._seen:
            return self._seen[comp]
        start = literal_prefix(comp)
        names: list[str] = []
        if start == comp:
            names += [comp] if comp in self.kids else []
        else:
            lo = bisect.bisect_left(self.literal, start)
            hi = bisect.bisect_left(self.literal, start + "\U0010ffff")
            names += [n for n in self.literal[lo:hi] if matches(comp, n)]
            lo = bisect.bisect_left(self.wild_starts, start)
            hi = bisect.bisect_left(self.wild_starts, start + "\U0010ffff")
            for w in self.wild_starts[lo:hi]:
                names += self.wild[w]
        # Wildcard kids whose literal start ours extends (shorter, or equal for a literal).
        for n in self.wild_lens:
            if n >= len(start) + (start == comp):
                break
            names += self.wild.get(start[:n], [])
        out = self._seen[comp] = [self.kids[n] for n in dict.fromkeys(names)]
        return out


class _Components:
    """Where a glob can only find its matches: a tree of path components.

    Each component before a path's first `**` matches exactly one component, so a glob
    walks the tree one component at a time, into the kids its component could meet
    (literal ones extending its literal start, wildcard ones whose literal start agrees).
    A path that goes on with `**` at a node it passes may match whatever follows; at the
    end, a glob with `**` meets everything below, one without only what ends there.
    """

    def __init__(self, paths: Iterable[str]) -> None:
        self.root = _Node()
        for q in paths:
            node = self.root
            head = _head(q)
            for c in head:
                node = node.kids.setdefault(c, _Node())
            (node.deep if "**" in q else node.end).append(q)
        self.root.freeze()

    def candidates(self, glob: str) -> list[str]:
        out: list[str] = []
        frontier = [self.root]
        for c in _head(glob):
            nxt: list[_Node] = []
            for node in frontier:
                out += node.deep
                nxt += node.matching(c)
            frontier = nxt
        for node in frontier:
            out += node.below() if "**" in glob else node.end + node.deep
        return out


def _glob_pair(path: str, other: str, paths: dict[str, list[Claim]]) -> None:
    hit: bool | None = None
    for old, op in paths[path]:
        for new, np in paths[other]:
            if op.kind == "glob" and np.kind in ("glob", "copy") and new.package == old.package:
                continue
            if hit is None:
                hit = overlap(path, other) if is_glob(other) else matches(path, other)
            if not hit:
                return
            a, b = (old, op), (new, np)
            if (old.package, old.name, op.path) > (new.package, new.name, np.path):
                a, b = b, a
            raise _conflict(a, b)


def _conflict(a: Claim, b: Claim) -> SpecError:
    (sa, pa), (sb, pb) = a, b
    if (sa.package, sa.name) > (sb.package, sb.name):
        (sa, pa), (sb, pb) = (sb, pb), (sa, pa)
    detail = pa.path if pa.path == pb.path else f"{pa.path} and {pb.path}"
    return SpecError(f"slices {sa.full} and {sb.full} conflict on {detail} "
                     f"({sa.where(pa.line)}, {sb.where(pb.line)}): two slices cannot both "
                     "provide it unless they agree on its content and come from one "
                     "package; add 'prefer' to a plain path, or narrow the globs.")


def check_essentials(slices: dict[str, Slice], unread: set[str] | None = None) -> None:
    """Every essential exists; no cycle, whatever the archs (as chisel checks a release).
    Essentials of packages in `unread` (not read yet) are taken on trust."""
    unread = unread or set()
    for s in slices.values():
        for name, _ in s.essential:
            if name not in slices and name.partition("_")[0] not in unread:
                raise SpecError(f"{s.where()}: {s.full} requires {name}, but slice is "
                                "missing (no definition has it)."
                                + did_you_mean(name, list(slices)))
    colour: dict[str, int] = {}
    for start in sorted(slices):
        if start in colour:
            continue
        # Iterative depth-first walk; a grey slice met again closes a cycle.
        stack: list[tuple[str, int]] = [(start, 0)]
        colour[start] = 1
        while stack:
            n, i = stack[-1]
            deps = slices[n].essential
            if i == len(deps):
                colour[n] = 2
                stack.pop()
                continue
            stack[-1] = (n, i + 1)
            e = deps[i][0]
            if e not in slices:
                continue
            if colour.get(e) == 1:
                names = [x for x, _ in stack]
                cycle = sorted(names[names.index(e):])
                raise SpecError(f"{slices[n].where()}: essential loop detected: "
                                + ", ".join(cycle) + ".")
            if e not in colour:
                colour[e] = 1
                stack.append((e, 0))

"""Slice definitions (chisel's format): loading, static checks, closures, path matching.

One YAML file per package under `repos/<family>/<release>/slices/`. A slice
names the paths it takes from its package (plain paths, globs with `*`,
`**` and `?`), paths it creates (`text`, `symlink`, `make`), paths that are
only there for a generator (`until: mutate`), and generated paths
(`generate: manifest | ca-bundle | passwd | group`: declarative stand-ins for
chisel's mutate scripts; nothing from a definition is ever executed).

The checks chisel makes when a release loads are made here too, each naming
both sides: one path claimed by slices of two packages (unless `prefer`
picks one), globs of two packages that can match a common path, unknown
essential slices, and essential cycles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from assembler.errors import SpecError
from assembler.spec.document import NodeReader, compose_yaml, did_you_mean

GENERATORS = ("manifest", "ca-bundle", "passwd", "group")
PACKAGE_KEYS = {"package": "", "archive": "", "essential": "", "slices": ""}
SLICE_KEYS = {"essential": "", "contents": ""}
PATH_KEYS = {"text": "", "symlink": "", "make": "", "mode": "", "arch": "", "until": "",
             "prefer": "", "generate": "", "mutable": "", "copy": ""}
_NAME = re.compile(r"^[a-z](?:-?[a-z0-9])*$")
_WILD = re.compile(r"[*?]")


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

    @property
    def full(self) -> str:
        return f"{self.package}_{self.name}"

    def where(self, line: int | None = None) -> str:
        return f"{self.file}:{line or self.line}"

    def essentials(self, arch: str) -> list[str]:
        return [n for n, archs in self.essential if archs is None or arch in archs]


# -- globs ---------------------------------------------------------------------------

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


def _literal_prefix(pattern: str) -> str:
    m = _WILD.search(pattern)
    return pattern[: m.start()] if m else pattern


# -- loading -------------------------------------------------------------------------

def _arch_list(r: NodeReader, node: yaml.Node, what: str) -> tuple[str, ...]:
    if isinstance(node, yaml.SequenceNode):
        return tuple(r.strings(node, what))
    return (r.string(node, what),)


def _path_spec(r: NodeReader, key: yaml.Node, node: yaml.Node, owner: str) -> PathSpec:
    path = r.string(key, f"a path of {owner}")
    line = key.start_mark.line + 1
    if not path.startswith("/"):
        raise r.err(key, f"{owner}: path {path!r} must be absolute.")
    if ".." in path.split("/"):
        raise r.err(key, f"{owner}: path {path!r} has a '..' component.")
    opts: dict[str, yaml.Node] = {}
    if not (isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null")):
        opts = r.mapping(node, f"the options of {path} in {owner}", PATH_KEYS)
    kind = "glob" if _WILD.search(path) else "copy"
    text = link = generate = until = prefer = None
    mode = None
    arch = None
    if "arch" in opts:
        arch = _arch_list(r, opts["arch"], f"arch of {path}")
    if "mode" in opts:
        raw = r.string(opts["mode"], f"mode of {path}")
        try:
            # YAML 1.1 already read 0644 as octal; a quoted "0644" is read here.
            mode = int(raw, 8) if raw.startswith("0") and raw.isdigit() else int(raw)
        except ValueError:
            mode = -1
        if not 0 <= mode <= 0o7777:
            raise r.err(opts["mode"], f"{owner}: mode of {path} must be a number "
                                      "such as 0644 (at most 07777).")
    if "until" in opts:
        until = r.string(opts["until"], f"until of {path}")
        if until != "mutate":
            raise r.err(opts["until"], f"{owner}: until: {until!r} is not known; "
                                       "the only value is 'mutate'.")
    if "prefer" in opts:
        prefer = r.string(opts["prefer"], f"prefer of {path}")
    made = [k for k in ("text", "symlink", "make", "generate", "copy") if k in opts]
    if len(made) > 1:
        raise r.err(key, f"{owner}: path {path} has both {made[0]!r} and {made[1]!r}.")
    if "text" in opts:
        kind, text = "text", r.scalar(opts["text"], f"text of {path}")
    elif "symlink" in opts:
        kind, link = "symlink", r.string(opts["symlink"], f"symlink of {path}")
    elif "make" in opts:
        if not r.boolean(opts["make"], f"make of {path}"):
            raise r.err(opts["make"], f"{owner}: make: false means nothing; remove it.")
        if not path.endswith("/"):
            raise r.err(key, f"{owner}: make: true needs a directory path ending in '/'.")
        kind = "dir"
    elif "generate" in opts:
        generate = r.string(opts["generate"], f"generate of {path}")
        if generate not in GENERATORS:
            raise r.err(opts["generate"], f"{owner}: generate: {generate!r} is not known."
                        + did_you_mean(generate, list(GENERATORS))
                        + " Known: " + ", ".join(GENERATORS) + ".")
        if generate == "manifest" and not path.endswith("/**"):
            raise r.err(key, f"{owner}: generate: manifest needs a directory glob such as "
                             "/var/lib/chisel/**.")
        kind = "generate"
    elif "copy" in opts:
        raise r.err(opts["copy"], f"{owner}: copy: is not supported; name the path itself.")
    if kind in ("text", "symlink", "dir", "generate") and _WILD.search(path) \
            and generate != "manifest":
        raise r.err(key, f"{owner}: {path} is a glob, so it cannot be created.")
    return PathSpec(path, kind, line, arch, mode, text, link, until, prefer, generate)


def _load_file(path: Path) -> list[Slice]:
    r = NodeReader(path)
    root, _ = compose_yaml(path, "slice definition")
    if root is None:
        raise SpecError(f"{path}: empty slice definition file.")
    top = r.mapping(root, "a slice definition file", PACKAGE_KEYS)
    if "package" not in top or "slices" not in top:
        raise r.err(root, "a slice definition needs 'package' and 'slices'.")
    package = r.string(top["package"], "package")
    if package != path.stem:
        raise r.err(top["package"], f"package {package!r} must match the file name "
                                    f"{path.name!r}.")
    shared = _essentials(r, top.get("essential"), package)
    out: list[Slice] = []
    slices_node = top["slices"]
    if not isinstance(slices_node, yaml.MappingNode):
        raise r.err(slices_node, "slices must be a mapping of slice names to definitions.")
    for k, v in slices_node.value:
        name = r.string(k, "a slice name")
        if not _NAME.match(name):
            raise r.err(k, f"slice name {name!r}: use lowercase letters, digits and '-'.")
        s = Slice(package, name, path, k.start_mark.line + 1)
        if any(o.name == name for o in out):
            raise r.err(k, f"slice {s.full} is defined twice.")
        body = r.mapping(v, f"slice {s.full}", SLICE_KEYS) \
            if not (isinstance(v, yaml.ScalarNode) and v.value in ("", "~")) else {}
        own = _essentials(r, body.get("essential"), package)
        s.essential = [e for e in shared if e[0] != s.full] + own
        if "contents" in body and not (isinstance(body["contents"], yaml.ScalarNode)):
            cnode = body["contents"]
            if not isinstance(cnode, yaml.MappingNode):
                raise r.err(cnode, f"contents of {s.full} must be a mapping of paths.")
            for pk, pv in cnode.value:
                spec = _path_spec(r, pk, pv, s.full)
                if spec.path in s.contents:
                    raise r.err(pk, f"{s.full}: path {spec.path} appears twice.")
                s.contents[spec.path] = spec
        out.append(s)
    return out


def _essentials(r: NodeReader, node: yaml.Node | None, package: str
                ) -> list[tuple[str, tuple[str, ...] | None]]:
    if node is None:
        return []
    out: list[tuple[str, tuple[str, ...] | None]] = []
    if isinstance(node, yaml.MappingNode):   # chisel v2: {pkg_slice: {arch: [...]}}
        for k, v in node.value:
            name = r.string(k, f"an essential slice of {package}")
            archs = None
            if isinstance(v, yaml.MappingNode):
                opts = r.mapping(v, f"options of essential {name}", {"arch": ""})
                if "arch" in opts:
                    archs = _arch_list(r, opts["arch"], f"arch of essential {name}")
            out.append((name, archs))
        return out
    for n in r.seq(node, f"essential of {package}"):
        name = r.string(n, f"an essential slice of {package}")
        if "_" not in name:
            raise r.err(n, f"essential {name!r} must be a full slice name, package_slice.")
        out.append((name, None))
    return out


class Catalog:
    """Every slice of a release, checked for consistency."""

    def __init__(self, slices: list[Slice]) -> None:
        self.slices: dict[str, Slice] = {}
        self.packages: dict[str, list[Slice]] = {}
        for s in slices:
            self.slices[s.full] = s
            self.packages.setdefault(s.package, []).append(s)
        self._check_essentials()
        self._check_conflicts()

    @classmethod
    def load(cls, *dirs: Path) -> Catalog:
        files: dict[str, Path] = {}
        for d in dirs:
            if d is None or not d.is_dir():
                continue
            for f in sorted(d.rglob("*.yaml")):
                if f.stem in files:
                    raise SpecError(f"{f}: package {f.stem} is also defined in {files[f.stem]}.")
                files[f.stem] = f
        return cls([s for f in files.values() for s in _load_file(f)])

    def get(self, full: str, where: str = "") -> Slice:
        s = self.slices.get(full)
        if s is None:
            pkg = full.partition("_")[0]
            known = [x.full for x in self.packages.get(pkg, [])]
            hint = (" Slices of " + pkg + ": " + ", ".join(known) + ".") if known else \
                did_you_mean(full, list(self.slices))
            raise SpecError(f"{where + ': ' if where else ''}no slice {full!r} in the catalog."
                            + hint)
        return s

    def closure(self, names: list[str], arch: str) -> list[Slice]:
        """The slices named and all their essentials for `arch`, in a stable order."""
        seen: dict[str, Slice] = {}
        todo = list(names)
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            s = self.get(n)
            seen[n] = s
            todo.extend(s.essentials(arch))
        return [seen[k] for k in sorted(seen)]

    def providers(self, path: str, arch: str | None = None) -> list[Slice]:
        """Slices whose contents name `path` (exactly or by a glob)."""
        out = []
        for s in self.slices.values():
            for p in s.contents.values():
                if (arch is None or p.applies(arch)) and matches(p.path, path):
                    out.append(s)
                    break
        return out

    def providers_of(self, filename: str, arch: str) -> list[Slice]:
        """Slices with a path (or glob) whose last component names `filename`.

        A last component that is only wildcards or has `**` (`/usr/share/zoneinfo/*`,
        `/usr/lib/python3.11/json/**`) names no file in particular, so it does not
        count: it would "provide" every name.
        """
        def names(last: str) -> bool:
            return "**" not in last and bool(last.replace("*", "").replace("?", ""))

        out = []
        for s in self.slices.values():
            if any(p.from_package and p.applies(arch)
                   and names(last := p.path.rstrip("/").rpartition("/")[2])
                   and matches(last, filename)
                   for p in s.contents.values()):
                out.append(s)
        return sorted(out, key=lambda s: s.full)

    def find(self, query: str) -> list[Slice]:
        """Slices whose full name contains every word of `query` (chisel find's rule:
        a word matches the package or the slice name, fuzzily by substring)."""
        words = [w.lower() for w in query.replace("_", " ").split() if w]
        out = [s for s in self.slices.values() if all(w in s.full for w in words)]
        return sorted(out, key=lambda s: (s.package, s.name))

    def describe(self, names: list[str]) -> str:
        """The definitions of packages or slices, as YAML in the definition format."""
        out = []
        for name in names:
            if "_" in name:
                slices = [self.get(name)]
            elif name in self.packages:
                slices = sorted(self.packages[name], key=lambda s: s.name)
            else:
                raise SpecError(f"no package or slice {name!r} in the catalog."
                                + did_you_mean(name, list(self.packages) + list(self.slices)))
            doc: dict = {"package": slices[0].package, "slices": {}}
            for s in slices:
                body: dict = {}
                if s.essential:
                    body["essential"] = [n for n, _ in s.essential]
                body["contents"] = {p.path: _describe_path(p) for p in s.contents.values()}
                doc["slices"][s.name] = body
            out.append(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
        return "---\n".join(out)

    # -- static checks -----------------------------------------------------------------

    def _check_essentials(self) -> None:
        for s in self.slices.values():
            for name, _ in s.essential:
                if name not in self.slices:
                    raise SpecError(f"{s.where()}: slice {s.full} needs {name!r}, which no "
                                    "definition has." + did_you_mean(name, list(self.slices)))
        # Depth-first with colours; a grey node met again closes a cycle.
        colour: dict[str, int] = {}
        stack: list[str] = []

        def visit(n: str) -> None:
            colour[n] = 1
            stack.append(n)
            for e, _ in self.slices[n].essential:
                if colour.get(e) == 1:
                    cycle = stack[stack.index(e):] + [e]
                    raise SpecError(f"{self.slices[n].where()}: essential cycle: "
                                    + " -> ".join(cycle) + f" ({self.slices[e].file} and "
                                    f"{self.slices[n].file}).")
                if e not in colour:
                    visit(e)
            stack.pop()
            colour[n] = 2

        for n in sorted(self.slices):
            if n not in colour:
                visit(n)

    def _check_conflicts(self) -> None:
        plain: dict[str, tuple[Slice, PathSpec]] = {}
        globs: list[tuple[Slice, PathSpec]] = []
        for s in self.slices.values():
            for p in s.contents.values():
                if p.kind == "glob" or p.generate == "manifest":
                    globs.append((s, p))
                    continue
                other = plain.get(p.path)
                if other is None:
                    plain[p.path] = (s, p)
                elif other[0].package != s.package and not _compatible(other, (s, p)):
                    raise _conflict(other, (s, p))
        for i, (s, p) in enumerate(globs):
            prefix = _literal_prefix(p.path)
            for path, (t, q) in plain.items():
                if t.package != s.package and path.startswith(prefix) \
                        and not path.endswith("/") and matches(p.path, path) \
                        and not q.prefer and p.generate != "manifest":
                    raise _conflict((s, p), (t, q))
            for t, q in globs[i + 1:]:
                if t.package == s.package or "manifest" in (p.generate, q.generate):
                    continue
                other_prefix = _literal_prefix(q.path)
                if not (prefix.startswith(other_prefix) or other_prefix.startswith(prefix)):
                    continue
                if overlap(p.path, q.path):
                    raise _conflict((s, p), (t, q))


def _describe_path(p: PathSpec) -> dict | None:
    d: dict = {}
    for key, value in (("text", p.text), ("symlink", p.link), ("generate", p.generate),
                       ("until", p.until), ("prefer", p.prefer)):
        if value is not None:
            d[key] = value
    if p.kind == "dir":
        d["make"] = True
    if p.mode is not None:
        d["mode"] = f"0{p.mode:o}"
    if p.arch:
        d["arch"] = list(p.arch) if len(p.arch) > 1 else p.arch[0]
    return d or None


def _compatible(a: tuple[Slice, PathSpec], b: tuple[Slice, PathSpec]) -> bool:
    (sa, pa), (sb, pb) = a, b
    if pa.path.endswith("/") and pa.kind in ("copy", "dir") and pb.kind in ("copy", "dir"):
        return True   # a directory is shared, not owned
    if pa.prefer or pb.prefer:
        for s, p in ((sa, pa), (sb, pb)):
            if p.prefer and p.prefer not in (sa.package, sb.package):
                raise SpecError(f"{s.where(p.line)}: prefer: {p.prefer!r} for {p.path}, but "
                                f"the path is claimed by {sa.full} and {sb.full} only.")
        return True
    return (pa.kind, pa.text, pa.link, pa.mode) == (pb.kind, pb.text, pb.link, pb.mode) \
        and pa.kind in ("text", "symlink", "dir")


def _conflict(a: tuple[Slice, PathSpec], b: tuple[Slice, PathSpec]) -> SpecError:
    (sa, pa), (sb, pb) = a, b
    what = "path" if pa.path == pb.path else "globs"
    detail = pa.path if pa.path == pb.path else f"{pa.path} and {pb.path}"
    return SpecError(f"slices {sa.full} ({sa.where(pa.line)}) and {sb.full} "
                     f"({sb.where(pb.line)}) conflict on {what} {detail}: two packages cannot "
                     "both provide it; add 'prefer' to a plain path, or narrow the globs.")

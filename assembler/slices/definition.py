"""One slice definition file read the way chisel reads it, for a given release format.

The format (`v1`, `v2`, `v3` from a chisel-releases `chisel.yaml`; None for our
own catalogs, which take both essential styles) decides whether `essential` is
a list or a map and whether `v3-essential` may be used. Keys this reader does
not know are ignored with a warning, as chisel ignores them (forward
compatibility), but each rule chisel enforces on a key it knows is enforced
here, with the file and line.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import yaml

from assembler.errors import SpecError
from assembler.slices.model import EXTRA_GENERATORS, PathSpec, Slice, is_glob
from assembler.spec.document import compose_yaml
from assembler.spec.modes import parse_mode

FORMATS = ("v1", "v2", "v3")
CHISEL_ARCHS = ("amd64", "arm64", "armhf", "i386", "ppc64el", "riscv64", "s390x")
FILE_NAME = re.compile(r"^([a-z0-9](?:-?[.a-z0-9+]){1,})\.yaml$")
SLICE_NAME = re.compile(r"^[a-z](?:-?[a-z0-9]){2,}$")
SLICE_KEY = re.compile(r"^([a-z0-9](?:-?[.a-z0-9+]){1,})_([a-z](?:-?[a-z0-9]){2,})$")
PACKAGE_KEYS = ("package", "archive", "essential", "slices", "v3-essential")
SLICE_KEYS = ("essential", "contents", "hint", "mutate", "v3-essential")
PATH_KEYS = ("make", "mode", "copy", "text", "symlink", "mutable", "until", "arch",
             "generate", "prefer")


def _compose(path: Path) -> yaml.Node | None:
    try:
        text = path.read_bytes().decode("utf-8")
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return yaml.compose(text, Loader=loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return compose_yaml(path, "slice definition")[0]   # its error names file and line


class _Reader:
    def __init__(self, path: Path, warnings: list[str]) -> None:
        self.path = path
        self.warnings = warnings

    def err(self, node: yaml.Node, msg: str) -> SpecError:
        return SpecError(f"{self.path}:{node.start_mark.line + 1}: {msg}")

    def mapping(self, node: yaml.Node, what: str, known: tuple[str, ...]
                ) -> dict[str, yaml.Node]:
        if _null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise self.err(node, f"{what} must be a mapping.")
        out: dict[str, yaml.Node] = {}
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else None
            if not isinstance(key, str):
                raise self.err(k, f"{what} has a key that is not a string.")
            if key in out:
                raise self.err(k, f"key {key!r} appears twice in {what}.")
            if key not in known:
                self.warnings.append(f"{self.path}:{k.start_mark.line + 1}: unknown key "
                                     f"{key!r} in {what} ignored (chisel ignores it too).")
                continue
            out[key] = v
        return out

    def string(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or _null(node):
            raise self.err(node, f"{what} must be a single value.")
        return str(node.value)

    def boolean(self, node: yaml.Node, what: str) -> bool:
        v = self.string(node, what).lower()
        if v in ("true", "false"):
            return v == "true"
        raise self.err(node, f"{what} must be true or false, not {v!r}.")

    def arch(self, node: yaml.Node, what: str) -> tuple[str, ...]:
        if isinstance(node, yaml.SequenceNode):
            return tuple(self.string(n, what) for n in node.value)
        return (self.string(node, what),)


def _null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")


def load_file(path: Path, format: str | None, warnings: list[str],
              shown: str | None = None) -> tuple[list[Slice], str | None]:
    """The slices of one definition file and its pinned archive, or the first error."""
    shown = shown or str(path)
    m = FILE_NAME.match(path.name)
    if not m:
        raise SpecError(f"{path}: invalid slice definition filename {path.name!r} (lowercase "
                        "letters, digits, '.', '+' and '-', at least two characters).")
    root = _compose(path)
    if root is None:
        raise SpecError(f"{path}: empty slice definition file.")
    r = _Reader(path, warnings)
    top = r.mapping(root, "a slice definition file", PACKAGE_KEYS)
    if "package" not in top:
        raise r.err(root, "a slice definition needs 'package'.")
    package = r.string(top["package"], "package")
    if package != m.group(1):
        named = "" if shown == str(path) else f"{shown}: "   # r.err names the path already
        raise r.err(top["package"], f"{named}filename and 'package' field ({package!r}) "
                                    "disagree.")
    archive = r.string(top["archive"], "archive") if "archive" in top else None
    _essential_style(r, top, f"package {package!r}", format)
    shared = _essentials(r, top, package, None)
    slices_node = top.get("slices")
    out: list[Slice] = []
    if slices_node is None or _null(slices_node):
        return out, archive
    if not isinstance(slices_node, yaml.MappingNode):
        raise r.err(slices_node, "slices must be a mapping of slice names to definitions.")
    for k, v in slices_node.value:
        name = r.string(k, "a slice name")
        if not SLICE_NAME.match(name):
            raise r.err(k, f"invalid slice name {name!r} in {shown} (must start with a-z, "
                           "len >= 3, only a-z / 0-9 / -).")
        if any(o.name == name for o in out):
            raise r.err(k, f"slice {package}_{name} is defined twice.")
        s = Slice(package, name, path, k.start_mark.line + 1)
        body = r.mapping(v, f"slice {s.full}", SLICE_KEYS)
        _essential_style(r, body, f"slice {s.full}", format)
        if "hint" in body:
            s.hint = r.string(body["hint"], f"hint of {s.full}")
            if len(s.hint.encode()) > 40 or not s.hint.isprintable():
                raise r.err(body["hint"], f"slice {s.full} has invalid hint {s.hint!r} (must "
                                          "be len <= 40, only contain letters, numbers, "
                                          "symbols and \" \").")
        if "mutate" in body:
            s.mutate = r.string(body["mutate"], f"mutate of {s.full}") or None
            s.mutate_line = body["mutate"].start_mark.line + 1
        own = _essentials(r, body, package, s)
        s.essential = [e for e in shared if e[0] != s.full]
        for e in own:
            if any(x[0] == e[0] for x in s.essential):
                raise r.err(body.get("essential") or body["v3-essential"],
                            f"slice {s.full} repeats {e[0]} in essential fields.")
            s.essential.append(e)
        cnode = body.get("contents")
        if cnode is not None and not _null(cnode):
            if not isinstance(cnode, yaml.MappingNode):
                raise r.err(cnode, f"contents of {s.full} must be a mapping of paths.")
            for pk, pv in cnode.value:
                spec = _path_spec(r, pk, pv, s.full, package)
                if spec.path in s.contents:
                    raise r.err(pk, f"{s.full}: path {spec.path} appears twice.")
                s.contents[spec.path] = spec
        out.append(s)
    return out, archive


def _essential_style(r: _Reader, body: dict[str, yaml.Node], owner: str,
                     format: str | None) -> None:
    node = body.get("essential")
    if format in ("v1", "v2"):
        if node is not None and not isinstance(node, yaml.SequenceNode) and not _null(node):
            raise r.err(node, f"cannot parse {owner}: essential expects a list.")
    elif format == "v3":
        if "v3-essential" in body:
            raise r.err(body["v3-essential"], f"cannot parse {owner}: v3-essential is "
                                              "obsolete since format v3.")
        if node is not None and not isinstance(node, yaml.MappingNode) and not _null(node):
            raise r.err(node, f"cannot parse {owner}: essential expects a map.")


def _essentials(r: _Reader, body: dict[str, yaml.Node], package: str, s: Slice | None
                ) -> list[tuple[str, tuple[str, ...] | None]]:
    """`essential` (list or map) then `v3-essential` (map) of a package (s None) or slice."""
    out: list[tuple[str, tuple[str, ...] | None]] = []
    for key in ("essential", "v3-essential"):
        node = body.get(key)
        if node is None or _null(node):
            continue
        items: list[tuple[yaml.Node, yaml.Node | None]]
        if isinstance(node, yaml.SequenceNode):
            items = [(n, None) for n in node.value]
            names = [r.string(n, "an essential slice") for n, _ in items]
            for i, n in enumerate(names):
                if n in names[:i]:
                    raise r.err(items[i][0], f"cannot parse package {package!r} slice "
                                             f"definitions: repeats {n} in essential fields.")
        elif isinstance(node, yaml.MappingNode):
            items = list(node.value)
        else:
            raise r.err(node, f"{key} of {s.full if s else package} must be a list or a map "
                              "of slice names.")
        for k, v in items:
            name = r.string(k, "an essential slice")
            if not SLICE_KEY.match(name):
                raise r.err(k, f"package {package!r} has invalid essential slice reference: "
                               f"{name!r}.")
            if s is not None and name == s.full:
                raise r.err(k, f"cannot add slice to itself as essential {name} in {r.path}.")
            if any(e[0] == name for e in out):
                who = f"slice {s.full}" if s else f"package {package!r}"
                raise r.err(k, f"{who} repeats {name} in essential fields.")
            archs = None
            if v is not None and not _null(v):
                opts = r.mapping(v, f"options of essential {name}", ("arch",))
                if "arch" in opts:
                    archs = r.arch(opts["arch"], f"arch of essential {name}")
            out.append((name, archs))
    return out


def _path_spec(r: _Reader, key: yaml.Node, node: yaml.Node, owner: str, package: str
               ) -> PathSpec:
    path = r.string(key, f"a path of {owner}")
    line = key.start_mark.line + 1
    bare = path[:-1] if path.endswith("/") else path
    if not path.startswith("/") or posixpath.normpath(path) != bare:
        raise r.err(key, f"slice {owner} has invalid content path: {path} (paths are "
                         "absolute and clean; a directory ends in '/').")
    opts = r.mapping(node, f"the options of {path} in {owner}", PATH_KEYS)
    text = link = generate = until = prefer = source = None
    mode = None
    arch = None
    if "mode" in opts:
        mode = parse_mode(r.string(opts["mode"], f"mode of {path}"), "decimal")
        if mode is None:
            raise r.err(opts["mode"], f"{owner}: mode of {path} must be a number "
                                      "such as 0644 (at most 07777).")
    mutable = r.boolean(opts["mutable"], f"mutable of {path}") if "mutable" in opts else False
    make = r.boolean(opts["make"], f"make of {path}") if "make" in opts else False
    if "until" in opts:
        until = r.string(opts["until"], f"until of {path}") or None
        if until not in (None, "mutate"):
            raise r.err(opts["until"], f"slice {owner} has invalid 'until' for path {path}: "
                                       f"{until!r} (the only value is 'mutate').")
    if "arch" in opts:
        arch = r.arch(opts["arch"], f"arch of {path}")
        for a in arch:
            if a not in CHISEL_ARCHS:
                raise r.err(opts["arch"], f"slice {owner} has invalid 'arch' for path {path}: "
                                          f"{a!r} (known: {', '.join(CHISEL_ARCHS)}).")
    if "prefer" in opts:
        prefer = r.string(opts["prefer"], f"prefer of {path}") or None
    if "text" in opts:
        # `text:` with no value is no text at all (chisel reads it as unset).
        text = None if _null(opts["text"]) else r.string(opts["text"], f"text of {path}")
    if "symlink" in opts:
        link = r.string(opts["symlink"], f"symlink of {path}") or None
    if "copy" in opts:
        source = r.string(opts["copy"], f"copy of {path}") or None
    if "generate" in opts:
        generate = r.string(opts["generate"], f"generate of {path}") or None
    content = (make, mode is not None, source, text is not None, link, mutable)
    kinds: list[str] = []
    if generate and generate not in EXTRA_GENERATORS:
        if any(content) or prefer or until:
            raise r.err(key, f"slice {owner} path {path} has invalid generate options.")
        if not path.endswith("/**"):
            raise r.err(key, f"slice {owner} has invalid generate path: {path} does not end "
                             "with /**.")
        if is_glob(path[:-2]):
            raise r.err(key, f"slice {owner} has invalid generate path: {path} contains "
                             "wildcard characters in addition to trailing **.")
        kinds.append("generate")
    elif is_glob(path):
        if any(content) or prefer or generate:
            raise r.err(key, f"slice {owner} path {path} has invalid wildcard options.")
        kinds.append("glob")
    if make:
        if not path.endswith("/"):
            raise r.err(key, f"slice {owner} path {path} must end in / for 'make' to be "
                             "valid.")
        kinds.append("dir")
    if text is not None:
        kinds.append("text")
    if link:
        kinds.append("symlink")
    if source:
        kinds.append("copy")
        if source == path:
            source = None
    if generate in EXTRA_GENERATORS:
        kinds.append("generate")
        if generate == "applets" and not path.endswith("/"):
            raise r.err(key, f"slice {owner}: generate: applets needs a directory path such "
                             "as /busybox/ (the links go there).")
    if prefer == package:
        raise r.err(opts["prefer"], f"slice {owner} cannot 'prefer' its own package for path "
                                    f"{path}.")
    kinds = kinds or ["copy"]
    if len(kinds) != 1:
        raise r.err(key, f"conflict in slice {owner} definition for path {path}: "
                         + ", ".join(kinds) + ".")
    kind = kinds[0]
    if mutable and kind != "text" and (kind != "copy" or path.endswith("/")):
        raise r.err(key, f"slice {owner} mutable is not a regular file: {path}.")
    if kind == "copy" and source is not None and (is_glob(source) or
                                                   not source.startswith("/")):
        raise r.err(opts["copy"], f"slice {owner}: copy: {source!r} must be one absolute "
                                  "path in the package.")
    return PathSpec(path, kind, line, arch, mode, text, link, until, prefer, generate,
                    mutable, source)

"""apko configs read as they are: an apko-shaped document translated into our spec.

A spec without `distro:` is read as apko's `ImageConfiguration` (its YAML
schema; docs/apko.md lists every field). The translation builds the YAML node
tree our own reader (spec.load_spec) understands, reusing the apko file's
nodes, so every error still names the apko file and line. What our schema
cannot say (run-as passed through verbatim) travels in `ApkoExtras`.

Where apko and our spec differ in meaning, apko's wins for apko input: string
`cmd`/`entrypoint.command` are split like a shell would (apko uses shlex), users
default to /bin/sh, `paths[].permissions` is the mode (0 when omitted, as apko
applies it), `source` is a link's target, PATH and SSL_CERT_FILE get apko's
defaults, `armhf` is arm/v6.

The distro is inferred from the repositories by the distro stage
(distro/apko.py, which knows the definitions): this module keeps them, with the
keyring, in `ApkoExtras`.
"""

from __future__ import annotations

import io
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from assembler.errors import SpecError
from assembler.spec.document import (
    NodeReader,
    compose_yaml,
    did_you_mean,
    host_arch,
    path_type,
)

TOP = ("contents", "entrypoint", "cmd", "stop-signal", "work-dir", "accounts", "archs",
       "environment", "paths", "vcs-url", "annotations", "include", "volumes", "layering",
       "format", "certificates")
CONTENTS = ("repositories", "build_repositories", "runtime_repositories", "keyring",
            "runtime_keyring", "packages", "baseimage")
ENTRYPOINT = ("type", "command", "shell-fragment", "services")
ACCOUNTS = ("run-as", "users", "groups")
USER = ("username", "uid", "gid", "shell", "homedir")
GROUP = ("groupname", "gid", "members")
PATH = ("path", "type", "uid", "gid", "permissions", "source", "recursive")
PATH_TYPES = ("directory", "empty-file", "hardlink", "symlink", "permissions")

# apko's architecture names (and the apk ones it also takes) -> ours.
ARCHS = {"386": "i386", "x86": "i386", "amd64": "amd64", "x86_64": "amd64",
         "arm64": "arm64", "aarch64": "arm64", "arm/v6": "armhf", "armhf": "armhf",
         "arm/v7": "armv7", "armv7": "armv7", "ppc64le": "ppc64le", "riscv64": "riscv64",
         "s390x": "s390x", "loong64": "loongarch64", "loongarch64": "loongarch64"}
ALL_ARCHS = ("386", "amd64", "arm64", "arm/v6", "arm/v7", "loong64", "ppc64le", "riscv64",
             "s390x")
# What apko puts in every image's environment unless the config sets it.
DEFAULT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin",
               "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}
# No definition matches: the repositories alone, trusted with the keyring.
INFERRED = "(inferred from contents.repositories)"
MAX_INCLUDES = 16


@dataclass(frozen=True)
class RepoRef:
    """One of `contents.repositories`: its URL (local paths as file://), apk tag, where."""

    url: str
    tag: str
    where: str  # file:line


@dataclass
class ApkoExtras:
    """What an apko config means that our own schema does not express. The distro is
    inferred from `repositories` by the distro stage (distro/apko.py), which fills in
    spec.distro, components, mirrors and repositories."""

    repositories: list[RepoRef] = field(default_factory=list)
    run_as: str | None = None  # passed to the image config as written
    # `keyring`: trusted for every repository, the definition's too (apko trusts it)
    key_paths: list[str] = field(default_factory=list)
    key_urls: list[tuple[str, str]] = field(default_factory=list)  # (URL, file:line)
    resolved: bool = False

    def inputs(self) -> dict[str, list[str]]:
        """What the lock's inputs digest covers of these (the package set depends on them)."""
        return {"repositories": [f"@{r.tag} {r.url}" if r.tag else r.url
                                 for r in self.repositories],
                "keyring": self.key_paths + [u for u, _ in self.key_urls]}


@dataclass
class _Doc:
    """One apko file's top-level nodes, includes merged in (apko's MergeInto)."""

    path: Path
    root: yaml.Node
    top: dict[str, yaml.Node]
    contents: dict[str, list[yaml.Node]] = field(default_factory=dict)
    accounts: dict[str, yaml.Node | list[yaml.Node]] = field(default_factory=dict)
    maps: dict[str, list[tuple[yaml.Node, yaml.Node]]] = field(default_factory=dict)
    lists: dict[str, list[yaml.Node]] = field(default_factory=dict)


# -- building our tree --------------------------------------------------------------
def _s(value: str, at: yaml.Node) -> yaml.ScalarNode:
    return yaml.ScalarNode("tag:yaml.org,2002:str", value, at.start_mark, at.end_mark,
                           style='"')


def _q(items: Sequence[yaml.Node], at: yaml.Node) -> yaml.SequenceNode:
    return yaml.SequenceNode("tag:yaml.org,2002:seq", list(items), at.start_mark, at.end_mark)


def _m(pairs: Sequence[tuple[str, yaml.Node]], at: yaml.Node) -> yaml.MappingNode:
    return yaml.MappingNode("tag:yaml.org,2002:map", [(_s(k, at), v) for k, v in pairs],
                            at.start_mark, at.end_mark)


# -- reading one file (and its includes) --------------------------------------------
def _where(node: yaml.Node, fallback: Path) -> Path:
    name = node.start_mark.name
    return Path(name) if name and not name.startswith("<") else fallback


class _Reader(NodeReader):
    """NodeReader whose errors name the file a node came from (includes)."""

    def err(self, node: yaml.Node | int, msg: str) -> SpecError:
        if isinstance(node, int):
            return super().err(node, msg)
        return SpecError(f"{_where(node, self.path)}:{node.start_mark.line + 1}: {msg}")


def _compose_named(path: Path) -> yaml.Node:
    """The file's node tree with its path in every mark, so includes' errors name it."""
    root, text = compose_yaml(path, "apko config")
    stream = io.StringIO(text.decode("utf-8"))
    stream.name = str(path)
    named = yaml.compose(stream) if root is not None else None
    if named is None:
        raise SpecError(f"{path}: the apko config is empty; it needs at least "
                        "'contents: {repositories: [...], packages: [...]}'.")
    return named


def _mapping(r: _Reader, node: yaml.Node, what: str, allowed: tuple[str, ...]
             ) -> dict[str, yaml.Node]:
    return r.mapping(node, what, {k: "" for k in allowed})


def _read(r: _Reader, path: Path, depth: int = 0, seen: tuple[Path, ...] = ()) -> _Doc:
    root = _compose_named(path)
    top = _mapping(r, root, "the apko config", TOP)
    doc = _Doc(path, root, top)
    if "contents" in top:
        c = _mapping(r, top["contents"], "contents", CONTENTS)
        for k in CONTENTS:
            if k in c:
                doc.contents[k] = [c[k]] if k == "baseimage" else r.seq(c[k], f"contents.{k}")
    if "accounts" in top:
        a = _mapping(r, top["accounts"], "accounts", ACCOUNTS)
        if "run-as" in a:
            doc.accounts["run-as"] = a["run-as"]
        for k in ("users", "groups"):
            doc.accounts[k] = r.seq(a[k], f"accounts.{k}") if k in a else []
    for k in ("environment", "annotations"):
        if k in top:
            if not isinstance(top[k], yaml.MappingNode):
                raise r.err(top[k], f"{k} must be a mapping.")
            doc.maps[k] = list(top[k].value)
    for k in ("paths", "volumes"):
        if k in top:
            doc.lists[k] = r.seq(top[k], k)
    if "include" in top:
        _include(r, doc, top["include"], depth, (*seen, path.resolve()))
    return doc


def _include(r: _Reader, doc: _Doc, node: yaml.Node, depth: int, seen: tuple[Path, ...]
             ) -> None:
    """apko's `include`: the named file is the base, this one is layered over it."""
    name = r.string(node, "include")
    if re.match(r"^[a-z0-9.-]+\.[a-z]+/[^@]+@", name) and not (doc.path.parent / name).exists():
        raise r.err(node, f"include {name!r} names a file in a remote git repository; it is "
                    "not fetched (a build must not depend on a branch's current state). "
                    "Download the file beside this one and include it by path.")
    path = doc.path.parent / name
    if not path.is_file() and Path(name).is_file():
        path = Path(name)  # apko resolves includes from the working directory
    if not path.is_file():
        raise r.err(node, f"include {name!r}: no such file (looked beside {doc.path.name} "
                    "and in the working directory).")
    if path.resolve() in seen or depth >= MAX_INCLUDES:
        raise r.err(node, f"include {name!r} includes itself (directly or through others).")
    base = _read(r, path, depth + 1, seen)
    for k in ("entrypoint", "cmd", "stop-signal", "work-dir", "layering", "format",
              "certificates", "archs", "vcs-url"):
        if k not in doc.top and k in base.top:
            doc.top[k] = base.top[k]
    if "run-as" not in doc.accounts and "run-as" in base.accounts:
        doc.accounts["run-as"] = base.accounts["run-as"]
    for k in ("users", "groups"):
        doc.accounts[k] = [*base.accounts.get(k, []), *doc.accounts.get(k, [])]  # type: ignore[misc]
    for k, pairs in base.maps.items():
        mine = {kn.value for kn, _ in doc.maps.get(k, [])}
        doc.maps[k] = doc.maps.get(k, []) + [(kn, v) for kn, v in pairs if kn.value not in mine]
    for k, items in base.lists.items():
        doc.lists[k] = [*items, *doc.lists.get(k, [])]
    for k, items in base.contents.items():
        if k == "baseimage":
            doc.contents.setdefault(k, items)
        else:
            doc.contents[k] = [*items, *doc.contents.get(k, [])]


# -- repositories and keys ------------------------------------------------------------
def _repo(r: _Reader, node: yaml.Node, spec_dir: Path) -> RepoRef:
    text = r.string(node, "a repository").strip()
    parts = text.split()
    tag = ""
    if len(parts) == 2 and parts[0].startswith("@") and len(parts[0]) > 1:
        tag, text = parts[0][1:], parts[1]
    elif len(parts) != 1 or text.startswith("@"):   # '@tag' alone: the URL was forgotten
        raise r.err(node, f"repository {text!r} is neither 'URL' nor '@tag URL'.")
    url = text.rstrip("/")
    if not url.startswith(("http://", "https://", "file://")):
        local = Path(url) if Path(url).is_absolute() else spec_dir / url
        if not local.exists() and Path(url).exists():
            local = Path(url)  # apko reads local repositories from the working directory
        url = "file://" + str(local.resolve())
    return RepoRef(url, tag, f"{_where(node, r.path)}:{node.start_mark.line + 1}")


def _keyring(r: _Reader, nodes: list[yaml.Node], spec_dir: Path
             ) -> tuple[list[str], list[tuple[str, str]]]:
    """The keyring's local files (resolved paths) and URLs (with where they were named)."""
    paths, urls = [], []
    for n in nodes:
        k = r.string(n, "a keyring entry")
        if k.startswith(("http://", "https://", "file://")):
            urls.append((k, f"{_where(n, r.path)}:{n.start_mark.line + 1}"))
            continue
        p = Path(k) if Path(k).is_absolute() else spec_dir / k
        if not p.is_file() and Path(k).is_file():
            p = Path(k)  # apko reads keyring paths from the working directory
        if not p.is_file():
            raise r.err(n, f"keyring file {k!r} does not exist (looked beside the config and "
                        "in the working directory).")
        paths.append(str(p.resolve()))
    return paths, urls


# -- the translation ---------------------------------------------------------------------
def translate(path: Path, r: NodeReader) -> tuple[yaml.Node, ApkoExtras]:
    """The apko config at `path` as a node tree in our spec's schema."""
    rr = _Reader(path)
    doc = _read(rr, path)
    out: list[tuple[str, yaml.Node]] = []
    extras = ApkoExtras()
    contents_at = doc.top.get("contents", doc.root)
    _refuse_unsupported(rr, doc)

    repos = [_repo(rr, n, path.parent) for n in doc.contents.get("repositories", [])]
    if not repos:
        raise rr.err(contents_at, "an apko config without 'distro:' names its repositories "
                     "under contents.repositories (apko's --repository-append is not read); "
                     "or give 'distro:' (for example 'distro: wolfi') to use our own spec "
                     "format.")
    extras.repositories = repos
    extras.key_paths, extras.key_urls = _keyring(rr, doc.contents.get("keyring", []),
                                                 path.parent)
    # Inferred from the repositories by the distro stage (distro/apko.py).
    out.append(("distro", _s(INFERRED, doc.contents["repositories"][0])))
    out.append(("archs", _archs(rr, doc)))

    packages = list(doc.contents.get("packages", []))
    entry, cmd, more_packages, service_paths = _entrypoint(rr, doc)
    packages += more_packages
    if not packages:
        raise rr.err(contents_at, "contents.packages is empty: name at least one package.")
    out.append(("contents", _m([("packages", _q(packages, contents_at))], contents_at)))

    accounts, extras.run_as = _accounts(rr, doc)
    if accounts is not None:
        out.append(("accounts", accounts))
    if entry is not None:
        out.append(("entrypoint", entry))
    if cmd is not None:
        out.append(("cmd", cmd))
    for k in ("work-dir", "stop-signal", "layering", "certificates"):
        if k in doc.top:
            out.append((k, doc.top[k]))
    if "volumes" in doc.lists:
        out.append(("volumes", _q(doc.lists["volumes"], doc.top.get("volumes", doc.root))))
    out.append(("environment", _environment(doc)))
    paths = [e for n in doc.lists.get("paths", []) for e in _path(rr, n)] + service_paths
    if paths:
        out.append(("paths", _q(paths, doc.top.get("paths", doc.root))))
    annotations = _annotations(rr, doc)
    if annotations is not None:
        out.append(("annotations", annotations))
    return _m(out, doc.root), extras


def _refuse_unsupported(r: _Reader, doc: _Doc) -> None:
    why = {
        "build_repositories": "repositories used to build but not written into the image are "
                              "not supported; list them under repositories",
        "runtime_repositories": "repositories written into /etc/apk/repositories but not used "
                                "to build are not supported",
        "runtime_keyring": "keys installed for runtime apk only are not supported",
        "baseimage": "building on a base image is not supported (apko marks it experimental)",
    }
    for k, reason in why.items():
        if doc.contents.get(k):
            raise r.err(doc.contents[k][0], f"contents.{k}: {reason}.")
    if "format" in doc.top and r.string(doc.top["format"], "format") not in ("", "tar"):
        raise r.err(doc.top["format"], "format: only 'tar' layers are written (EROFS layers "
                    "are not supported).")


def _archs(r: _Reader, doc: _Doc) -> yaml.Node:
    node = doc.top.get("archs")
    if node is None:
        return _q([_s(host_arch(), doc.root)], doc.root)
    names = r.strings(node, "archs")
    items = r.seq(node, "archs")
    if names == ["all"]:
        names, items = list(ALL_ARCHS), [node] * len(ALL_ARCHS)
    elif names == ["host"]:
        names = [host_arch()]
    out: dict[str, yaml.Node] = {}
    for n, a in zip(items, names, strict=True):
        if a not in ARCHS and a != host_arch():
            raise r.err(n, f"unknown architecture {a!r}." + did_you_mean(a, ARCHS)
                        + " apko's: " + ", ".join(ALL_ARCHS) + ", all, host.")
        out.setdefault(ARCHS.get(a, a), n)  # apko de-duplicates (x86_64 and amd64)
    return _q([_s(a, n) for a, n in out.items()], node)


def _split(r: _Reader, node: yaml.Node, what: str) -> list[yaml.Node]:
    text = r.string(node, what)
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise r.err(node, f"{what} {text!r} cannot be split into words ({e}).") from None
    return [_s(w, node) for w in words]


def _entrypoint(r: _Reader, doc: _Doc) -> tuple[yaml.Node | None, yaml.Node | None,
                                                list[yaml.Node], list[yaml.Node]]:
    """entrypoint, cmd, packages the entrypoint needs, and the paths it creates."""
    cmd = None
    if "cmd" in doc.top:
        cmd = _q(_split(r, doc.top["cmd"], "cmd"), doc.top["cmd"])
    node = doc.top.get("entrypoint")
    if node is None:
        return None, cmd, [], []
    e = _mapping(r, node, "entrypoint", ENTRYPOINT)
    kind = r.string(e["type"], "entrypoint.type") if "type" in e else ""
    if kind == "service-bundle":
        # What apko does: s6-svscan supervises /sv, one execline run script per service.
        if "services" not in e or not isinstance(e["services"], yaml.MappingNode) \
                or not e["services"].value:
            raise r.err(node, "entrypoint type service-bundle needs 'services' (a mapping of "
                        "service name to command).")
        paths: list[yaml.Node] = []
        for kn, vn in e["services"].value:
            svc = r.string(kn, "a service name")
            if not re.fullmatch(r"[A-Za-z0-9_.@-]+", svc) or svc.startswith("."):
                raise r.err(kn, f"service name {svc!r} cannot be a directory name under /sv.")
            script = f"#!/bin/execlineb\n{r.string(vn, f'service {svc}')}\n"
            paths.append(_m([("path", _s(f"/sv/{svc}", kn)), ("type", _s("directory", kn)),
                             ("mode", _s("0755", kn))], kn))
            paths.append(_m([("path", _s(f"/sv/{svc}/run", vn)), ("type", _s("file", vn)),
                             ("mode", _s("0755", vn)), ("content", _s(script, vn))], vn))
        entry = _q([_s("/bin/s6-svscan", node), _s("/sv", node)], node)
        s6: list[yaml.Node] = [_s("s6", e["type"])]
        return entry, cmd, s6, paths
    if kind:
        raise r.err(e["type"], f"entrypoint type {kind!r} is unknown; apko knows only "
                    "'service-bundle' (or no type, with command or shell-fragment).")
    if "services" in e:
        raise r.err(e["services"], "entrypoint services need 'type: service-bundle'.")
    if "shell-fragment" in e:
        frag = e["shell-fragment"]
        return _q([_s("/bin/sh", frag), _s("-c", frag),
                   _s(r.string(frag, "shell-fragment"), frag)], frag), cmd, [], []
    if "command" in e:
        return _q(_split(r, e["command"], "entrypoint.command"), e["command"]), cmd, [], []
    return None, cmd, [], []


def _accounts(r: _Reader, doc: _Doc) -> tuple[yaml.Node | None, str | None]:
    if not doc.accounts:
        return None, None
    at = doc.top.get("accounts", doc.root)
    users: list[yaml.Node] = []
    for u in doc.accounts.get("users", []):  # type: ignore[union-attr]
        um = _mapping(r, u, "a user", USER)
        pairs: list[tuple[str, yaml.Node]] = [(k, um[k]) for k in ("username", "uid", "gid",
                                                                  "shell") if k in um]
        if "homedir" in um:
            pairs.append(("home", um["homedir"]))
        if "shell" not in um:
            pairs.append(("shell", _s("/bin/sh", u)))  # apko's default
        pairs.append(("gecos", _s("Account created by apko", u)))
        users.append(_m(pairs, u))
    groups: list[yaml.Node] = []
    for g in doc.accounts.get("groups", []):  # type: ignore[union-attr]
        groups.append(_m(list(_mapping(r, g, "a group", GROUP).items()), g))
    run_as = None
    if "run-as" in doc.accounts:
        run_as = r.string(doc.accounts["run-as"], "run-as")  # type: ignore[arg-type]
    return _m([("users", _q(users, at)), ("groups", _q(groups, at))], at), run_as


def _environment(doc: _Doc) -> yaml.Node:
    at = doc.top.get("environment", doc.root)
    pairs = [(k.value, v) for k, v in doc.maps.get("environment", [])]
    have = {k for k, _ in pairs}
    pairs += [(k, _s(v, at)) for k, v in DEFAULT_ENV.items() if k not in have]
    return _m(pairs, at)


def _annotations(r: _Reader, doc: _Doc) -> yaml.Node | None:
    at = doc.top.get("annotations", doc.root)
    pairs = [(k.value, v) for k, v in doc.maps.get("annotations", [])]
    if "vcs-url" in doc.top:
        # apko: URL@commit becomes the source and revision annotations (over any set).
        vcs = doc.top["vcs-url"]
        url, _, rev = r.string(vcs, "vcs-url").partition("@")
        set_ = {"org.opencontainers.image.source": url}
        if rev:
            set_["org.opencontainers.image.revision"] = rev
        pairs = [(k, v) for k, v in pairs if k not in set_]
        pairs += [(k, _s(v, vcs)) for k, v in set_.items()]
    return _m(pairs, at) if pairs else None


def _mode(r: _Reader, node: yaml.Node) -> str:
    """apko's permissions, a YAML integer read as Go does (0o755, 0755 and 0x1ed are
    octal/hex, 493 decimal), as our octal mode text."""
    text = r.string(node, "permissions").replace("_", "")
    try:
        value = int(text, 8) if re.fullmatch(r"0[0-7]+", text) else int(text, 0)
    except ValueError:
        raise r.err(node, f"permissions {text!r} is not a number such as 0o755.") from None
    if not 0 <= value <= 0o7777:
        raise r.err(node, f"permissions {text!r} is out of range (at most 0o7777).")
    return f"0{value:o}"


def _path(r: _Reader, node: yaml.Node) -> list[yaml.Node]:
    """One apko path mutation as our path entries. apko applies `permissions` (and
    uid/gid) after every mutation, so a mode left out is 0; a hardlink's go to the
    file it shares an inode with; `recursive` covers the tree beneath."""
    pm = _mapping(r, node, "a path", PATH)
    kind = path_type(r, node, pm, PATH_TYPES, "apko's types")
    mode = _s(_mode(r, pm["permissions"]), pm["permissions"]) if "permissions" in pm \
        else _s("0", node)
    owner: list[tuple[str, yaml.Node]] = []
    if "uid" in pm or "gid" in pm:  # apko: the one not given is 0
        owner = [("uid", pm.get("uid") or _s("0", node)), ("gid", pm.get("gid") or _s("0", node))]
    recursive = "recursive" in pm and r.boolean(pm["recursive"], "recursive")
    out: list[yaml.Node] = []
    if kind in ("hardlink", "symlink"):
        if "source" not in pm:
            raise r.err(node, f"a {kind} path needs 'source' (what it links to).")
        pairs = [("path", pm["path"]), ("type", pm["type"]), ("target", pm["source"])]
        out.append(_m(pairs + (owner if kind == "symlink" else []), node))
        if kind == "hardlink":  # the link and the file it links are one inode
            for path in (pm["source"], pm["path"]):
                out.append(_m([("path", path), ("type", _s("permissions", node)),
                               ("mode", mode), *owner], node))
        return out
    if kind == "permissions":
        return [_m([("path", pm["path"]), ("type", pm["type"]), ("mode", mode), *owner,
                    *([("recursive", pm["recursive"])] if recursive else [])], node)]
    out.append(_m([("path", pm["path"]), ("type", pm["type"]), ("mode", mode), *owner], node))
    if recursive and kind == "directory":
        out.append(_m([("path", pm["path"]), ("type", _s("permissions", node)), ("mode", mode),
                       *owner, ("recursive", pm["recursive"])], node))
    return out

"""image.yaml: strict loading, with every error pointing at a file and line.

The YAML node tree is kept beside the plain values so that later stages
(resolution, for instance) can point at the line a package was named on.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assembler.errors import SpecError

RELATION = re.compile(r"^(?P<name>[a-z0-9][a-z0-9+.\-]*)(?:_(?P<slice>[a-z0-9][a-z0-9\-]*))?"
                      r"(?::(?P<arch>[a-z0-9-]+))?"
                      r"(?:\s*(?P<op>>=|<=|<<|>>|=|<|>)\s*(?P<version>[A-Za-z0-9.+~:\-]+))?$")
# What Debian's grammar above refuses but an apk atom may be: upper case and
# several '_' in names (libnetfilter_acct), so:/cmd:/pc: names, '~' pins and
# '_rc1' versions. The distro's own parser decides later (archives.wants).
APK_LIKE = re.compile(r"^(?P<name>[A-Za-z0-9/][A-Za-z0-9+._\-:/]*?)"
                      r"(?:\s*(?P<op>[<>=~]+)\s*(?P<version>[A-Za-z0-9.+~_\-=]+))?$")


def did_you_mean(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=3, cutoff=0.6)
    if not close and len(word) >= 3:  # abbreviations: "dir" for "directory"
        close = sorted(c for c in choices if c.startswith(word))[:3]
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


@dataclass
class Located:
    """A value and where it was written."""

    value: Any
    line: int


@dataclass
class Request:
    """One entry of contents.packages: a package or slice, maybe with a version relation."""

    name: str
    arch: str | None
    op: str | None
    version: str | None
    line: int
    slice: str | None = None
    text: str = ""  # as written, for distros whose atoms Debian's grammar does not cover

    def __str__(self) -> str:
        s = self.name + (f"_{self.slice}" if self.slice else "")
        if self.op:
            s += f" {self.op} {self.version}"
        return s


@dataclass
class Repository:
    name: str
    url: str | None
    suites: list[str]
    components: list[str]
    keys: list[Path]
    line: int


@dataclass
class Spec:
    path: Path
    digest: str
    distro: str
    distro_line: int
    archs: list[str]
    packages: list[Request]
    exclude: list[Located]
    include_essential: bool
    components: list[str] | None
    strip: list[str]
    allow_setuid: bool
    repositories: list[Repository]
    mirrors: dict[str, str]
    accounts: dict[str, Any]
    entrypoint: list[str] | None
    cmd: list[str] | None
    work_dir: str | None
    environment: dict[str, str]
    paths: list[dict[str, Any]]
    annotations: dict[str, str]
    layering: dict[str, Any]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    # Globs over absolute paths of ELF files the link check skips (linkcheck.py).
    link_check_ignore: list[str] = field(default_factory=list)
    snapshot_mirror: str | None = None   # base URL of a snapshot archive (distro/snapshot.py)

    def where(self, line: int) -> str:
        return f"{self.path}:{line}"


def _node_line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class NodeReader:
    """Walks the composed YAML tree, converting and checking as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def err(self, node: yaml.Node | int, msg: str) -> SpecError:
        line = node if isinstance(node, int) else _node_line(node)
        return SpecError(f"{self.path}:{line}: {msg}")

    def mapping(self, node: yaml.Node, what: str, allowed: dict[str, str]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.err(node, f"{what} must be a mapping of keys to values.")
        out: dict[str, yaml.Node] = {}
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else None
            if not isinstance(key, str) or key not in allowed:
                raise self.err(k, f"unknown key {key!r} in {what}."
                               + did_you_mean(str(key), list(allowed))
                               + " Allowed keys: " + ", ".join(sorted(allowed)) + ".")
            if key in out:
                raise self.err(k, f"key {key!r} appears twice in {what}.")
            out[key] = v
        return out

    def scalar(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag.endswith(":null"):
            raise self.err(node, f"{what} must be a single value.")
        return str(node.value)

    def string(self, node: yaml.Node, what: str) -> str:
        value = self.scalar(node, what)
        return value

    def boolean(self, node: yaml.Node, what: str) -> bool:
        v = self.scalar(node, what).lower()
        if v in ("true", "yes", "on"):
            return True
        if v in ("false", "no", "off"):
            return False
        raise self.err(node, f"{what} must be true or false, not {v!r}.")

    def seq(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.err(node, f"{what} must be a list.")
        return list(node.value)

    def strings(self, node: yaml.Node, what: str) -> list[str]:
        return [self.string(n, f"each item of {what}") for n in self.seq(node, what)]

    def string_map(self, node: yaml.Node, what: str) -> dict[str, str]:
        if not isinstance(node, yaml.MappingNode):
            raise self.err(node, f"{what} must be a mapping.")
        out: dict[str, str] = {}
        for k, v in node.value:
            key = self.string(k, f"a key of {what}")
            if key in out:
                raise self.err(k, f"key {key!r} appears twice in {what}.")
            out[key] = self.string(v, f"{what} values")
        return out


TOP_KEYS = {
    "distro": "distro definition",
    "archs": "target architectures",
    "contents": "packages",
    "mirrors": "archive URLs",
    "snapshot-mirror": "snapshot archive URL",
    "accounts": "users and groups",
    "entrypoint": "entrypoint",
    "cmd": "cmd",
    "work-dir": "working directory",
    "environment": "environment",
    "paths": "paths",
    "annotations": "annotations",
    "layering": "layering",
    "link-check": "link check",
}
CONTENTS_KEYS = {"packages": "", "exclude": "", "repositories": "", "include-essential": "",
                 "components": "", "strip": "", "allow-setuid": ""}
STRIP_KINDS = ("docs", "man", "info", "locales", "lintian")
REPO_KEYS = {"name": "", "url": "", "suites": "", "components": "", "keys": ""}
ACCOUNT_KEYS = {"groups": "", "users": "", "run-as": ""}
GROUP_KEYS = {"groupname": "", "gid": "", "members": ""}
USER_KEYS = {"username": "", "uid": "", "gid": "", "home": "", "shell": "", "gecos": ""}
PATH_KEYS = {"path": "", "type": "", "uid": "", "gid": "", "mode": "", "source": "",
             "target": "", "content": "", "recursive": ""}
PATH_TYPES = ("directory", "file", "empty-file", "symlink", "hardlink", "permissions")
LAYERING_KEYS = {"strategy": "", "budget": ""}
LINK_CHECK_KEYS = {"ignore": ""}
KNOWN_ARCHS = {"amd64", "arm64", "armhf", "armel", "i386", "ppc64el", "s390x", "riscv64",
               "mips64el", "x86_64", "aarch64", "x86", "armv7", "ppc64le", "loongarch64"}


def parse_request(text: str, line: int, where: str) -> Request:
    m = RELATION.match(text.strip())
    if m:
        return Request(m["name"], m["arch"], m["op"], m["version"], line, m["slice"],
                       text.strip())
    m = APK_LIKE.match(text.strip())
    if not m:
        raise SpecError(f"{where}:{line}: {text!r} is not a package name (optionally with "
                        "':arch' and a version relation such as '=1.2-3' or '>= 1.2').")
    return Request(m["name"], None, m["op"], m["version"], line, None, text.strip())


def host_arch() -> str:
    import platform

    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf"}.get(machine, machine)


def compose_yaml(path: Path, what: str) -> tuple[yaml.Node | None, bytes]:
    """The YAML node tree (and bytes) of a file we read (spec, distro, slice definition),
    or one plain error naming the file and line: unreadable, not UTF-8, not YAML."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such {what} file.") from None
    except OSError as e:
        raise SpecError(f"{path}: cannot read the {what} ({e.strerror}).") from None
    try:
        return yaml.compose(text.decode("utf-8")), text
    except UnicodeDecodeError:
        raise SpecError(f"{path}: the {what} is not UTF-8 text.") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpecError(f"{path}{line}: malformed YAML in the {what}: {problem}.") from None


def load_spec(path: Path | str) -> Spec:
    path = Path(path)
    if not path.exists():
        raise SpecError(f"{path}: no such spec file. Pass the path of an image.yaml, "
                        "or run in the directory holding one.")
    root, text = compose_yaml(path, "spec")
    r = NodeReader(path)
    if root is None:
        raise SpecError(f"{path}: the spec is empty; it needs at least 'distro' and "
                        "'contents: {packages: [...]}'.")
    top = r.mapping(root, "the spec", TOP_KEYS)
    if "distro" not in top:
        raise r.err(root, "the spec has no 'distro' (for example 'distro: debian/bookworm').")
    distro = r.string(top["distro"], "distro")

    archs = [host_arch()]
    if "archs" in top:
        archs = r.strings(top["archs"], "archs")
        for n, a in zip(r.seq(top["archs"], "archs"), archs, strict=True):
            if a not in KNOWN_ARCHS:
                raise r.err(n, f"unknown architecture {a!r}." + did_you_mean(a, KNOWN_ARCHS))
        if not archs:
            raise r.err(top["archs"], "archs is empty.")
        if len(set(archs)) != len(archs):
            raise r.err(top["archs"], "archs lists an architecture twice.")

    packages: list[Request] = []
    exclude: list[Located] = []
    repositories: list[Repository] = []
    include_essential = False
    if "contents" not in top:
        raise r.err(root, "the spec has no 'contents' (the packages to install).")
    contents = r.mapping(top["contents"], "contents", CONTENTS_KEYS)
    for n in r.seq(contents.get("packages", yaml.SequenceNode("", [])), "contents.packages"):
        packages.append(parse_request(r.string(n, "a package"), _node_line(n), str(path)))
    if not packages:
        raise r.err(top["contents"], "contents.packages is empty: name at least one package.")
    seen: dict[str, Request] = {}
    for req in packages:
        if req.name in seen and seen[req.name].version != req.version:
            raise SpecError(f"{path}:{req.line}: {req.name!r} is requested twice with different "
                            f"versions (also on line {seen[req.name].line}).")
        seen[req.name] = req
    for n in r.seq(contents.get("exclude", yaml.SequenceNode("", [])), "contents.exclude"):
        name = r.string(n, "an excluded package")
        exclude.append(Located(name, _node_line(n)))
        if name in seen:
            raise r.err(n, f"{name!r} is both requested (line {seen[name].line}) and excluded.")
    if "include-essential" in contents:
        include_essential = r.boolean(contents["include-essential"], "include-essential")
    for n in r.seq(contents.get("repositories", yaml.SequenceNode("", [])),
                   "contents.repositories"):
        m = r.mapping(n, "a repository", REPO_KEYS)
        for req_key in ("name", "suites", "keys"):
            if req_key not in m:
                raise r.err(n, f"a repository needs {req_key!r}.")
        keys = [(path.parent / k).resolve() for k in r.strings(m["keys"], "keys")]
        for k, kn in zip(keys, r.seq(m["keys"], "keys"), strict=True):
            if not k.is_file():
                raise r.err(kn, f"key file {k} does not exist.")
        repositories.append(Repository(
            name=r.string(m["name"], "name"),
            url=r.string(m["url"], "url") if "url" in m else None,
            suites=r.strings(m["suites"], "suites"),
            components=r.strings(m["components"], "components") if "components" in m
            else ["main"],
            keys=keys, line=_node_line(n)))

    strip = list(STRIP_KINDS)
    if "strip" in contents:
        strip = r.strings(contents["strip"], "contents.strip")
        for n, v in zip(r.seq(contents["strip"], "strip"), strip, strict=True):
            if v not in STRIP_KINDS:
                raise r.err(n, f"unknown strip kind {v!r}." + did_you_mean(v, STRIP_KINDS)
                            + " Kinds: " + ", ".join(STRIP_KINDS) + ".")
    mirrors = r.string_map(top["mirrors"], "mirrors") if "mirrors" in top else {}
    accounts: dict[str, Any] = {"groups": [], "users": [], "run-as": None}
    if "accounts" in top:
        acc = r.mapping(top["accounts"], "accounts", ACCOUNT_KEYS)
        seen_ids: dict[tuple[str, object], int] = {}

        def once(node: yaml.Node, kind: str, value: object) -> None:
            """A user or group name, uid or gid may be given once: /etc/passwd and
            /etc/group would otherwise hold two entries for it."""
            if (kind, value) in seen_ids:
                shown = repr(value) if isinstance(value, str) else value
                raise r.err(node, f"{kind} {shown} appears twice in accounts (also on line "
                            f"{seen_ids[(kind, value)]}).")
            seen_ids[(kind, value)] = _node_line(node)

        for g in r.seq(acc.get("groups", yaml.SequenceNode("", [])), "accounts.groups"):
            gm = r.mapping(g, "a group", GROUP_KEYS)
            if "groupname" not in gm or "gid" not in gm:
                raise r.err(g, "a group needs 'groupname' and 'gid'.")
            group = {
                "groupname": _field(r, gm["groupname"], "groupname", name=True),
                "gid": _id(r, gm["gid"], "gid"),
                "members": [_field(r, n, "a member", name=True)
                            for n in r.seq(gm["members"], "members")] if "members" in gm
                else [],
            }
            once(g, "groupname", group["groupname"])
            once(g, "gid", group["gid"])
            accounts["groups"].append(group)
        for u in r.seq(acc.get("users", yaml.SequenceNode("", [])), "accounts.users"):
            um = r.mapping(u, "a user", USER_KEYS)
            if "username" not in um or "uid" not in um:
                raise r.err(u, "a user needs 'username' and 'uid'.")
            uid = _id(r, um["uid"], "uid")
            name = _field(r, um["username"], "username", name=True)
            user = {
                "username": name, "uid": uid,
                "gid": _id(r, um["gid"], "gid") if "gid" in um else uid,
                "home": _field(r, um["home"], "home") if "home" in um else f"/home/{name}",
                "shell": _field(r, um["shell"], "shell") if "shell" in um else "/sbin/nologin",
                "gecos": _field(r, um["gecos"], "gecos") if "gecos" in um else name,
            }
            if not str(user["home"]).startswith("/"):
                raise r.err(um["home"], f"home {user['home']!r} must be an absolute path.")
            once(u, "username", name)
            once(u, "uid", uid)
            accounts["users"].append(user)
        if "run-as" in acc:
            run_as = r.string(acc["run-as"], "run-as")
            names = {u["username"] for u in accounts["users"]} | {"root", "nobody"}
            if run_as not in names and not re.fullmatch(r"\d+(:\d+)?", run_as):
                raise r.err(acc["run-as"], f"run-as {run_as!r} is neither a user accounts.users "
                            "defines nor a numeric uid or uid:gid."
                            + did_you_mean(run_as, names))
            accounts["run-as"] = run_as

    def opt_list(key: str) -> list[str] | None:
        if key not in top:
            return None
        if isinstance(top[key], yaml.ScalarNode):
            return [r.string(top[key], key)]
        return r.strings(top[key], key)

    paths: list[dict[str, Any]] = []
    for n in r.seq(top.get("paths", yaml.SequenceNode("", [])), "paths"):
        pm = r.mapping(n, "a path", PATH_KEYS)
        if "path" not in pm or "type" not in pm:
            raise r.err(n, "a path entry needs 'path' and 'type'.")
        entry: dict[str, Any] = {"line": _node_line(n)}
        for key, value in pm.items():
            entry[key] = _id(r, value, key) if key in ("uid", "gid") else r.string(value, key)
        if entry["type"] not in PATH_TYPES:
            raise r.err(pm["type"], f"unknown path type {entry['type']!r}."
                        + did_you_mean(entry["type"], PATH_TYPES)
                        + " Types: " + ", ".join(PATH_TYPES) + ".")
        if "mode" in entry:
            try:
                entry["mode"] = int(str(entry["mode"]), 8)
            except ValueError:
                entry["mode"] = -1
            if not 0 <= entry["mode"] <= 0o7777:
                raise r.err(pm["mode"], f"mode {r.string(pm['mode'], 'mode')!r} is not an octal "
                            "mode such as \"0755\" (at most 07777).")
        paths.append(entry)

    layering: dict[str, Any] = {}
    if "layering" in top:
        lm = r.mapping(top["layering"], "layering", LAYERING_KEYS)
        layering = {k: r.string(v, k) for k, v in lm.items()}

    link_check_ignore: list[str] = []
    if "link-check" in top:
        lc = r.mapping(top["link-check"], "link-check", LINK_CHECK_KEYS)
        if "ignore" in lc:
            link_check_ignore = r.strings(lc["ignore"], "link-check.ignore")
            for node, glob in zip(r.seq(lc["ignore"], "link-check.ignore"),
                                  link_check_ignore, strict=True):
                if not glob.startswith("/"):
                    raise r.err(node, f"link-check.ignore entry {glob!r} must be an absolute path "
                                "or glob, such as /usr/lib/app/plugins/*.so.")

    try:
        raw = yaml.safe_load(text)
    except CONSTRUCT_ERRORS:
        # The tree above reads every value as text; only a tag (!foo, !!binary) that
        # YAML itself cannot construct gets here.
        bad = _unconstructible(root)
        raise r.err(bad, f"YAML cannot read the value tagged {bad.tag!r}. Remove the tag "
                    "(values are plain strings, lists and mappings).") from None
    return Spec(
        path=path,
        digest="sha256:" + hashlib.sha256(text).hexdigest(),
        distro=distro,
        distro_line=_node_line(top["distro"]),
        archs=archs,
        packages=packages,
        exclude=exclude,
        include_essential=include_essential,
        components=r.strings(contents["components"], "contents.components")
        if "components" in contents else None,
        strip=strip,
        allow_setuid=r.boolean(contents["allow-setuid"], "allow-setuid")
        if "allow-setuid" in contents else False,
        repositories=repositories,
        mirrors=mirrors,
        accounts=accounts,
        entrypoint=opt_list("entrypoint"),
        cmd=opt_list("cmd"),
        work_dir=_work_dir(r, top["work-dir"]) if "work-dir" in top else None,
        environment=_environment(r, top["environment"]) if "environment" in top else {},
        paths=paths,
        annotations=r.string_map(top["annotations"], "annotations")
        if "annotations" in top else {},
        layering=layering,
        raw=raw,
        link_check_ignore=link_check_ignore,
        snapshot_mirror=r.string(top["snapshot-mirror"], "snapshot-mirror")
        if "snapshot-mirror" in top else None,
    )


CONSTRUCT_ERRORS = (yaml.YAMLError, ValueError, TypeError, OverflowError)


def _unconstructible(node: yaml.Node) -> yaml.Node:
    """The innermost node of `node` that YAML's safe loader cannot construct."""
    children: list[yaml.Node] = []
    if isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    for child in children:
        try:
            yaml.SafeLoader("").construct_object(child, deep=True)
        except CONSTRUCT_ERRORS:
            return _unconstructible(child)
    return node


def _int(r: NodeReader, node: yaml.Node, what: str) -> int:
    v = r.scalar(node, what)
    try:
        return int(v)
    except ValueError:
        raise r.err(node, f"{what} must be a whole number, not {v!r}.") from None


# 2**32 - 1 is (uid_t)-1, "no user", to the kernel.
MAX_ID = 2**32 - 2


def _id(r: NodeReader, node: yaml.Node, what: str) -> int:
    v = _int(r, node, what)
    if not 0 <= v <= MAX_ID:
        raise r.err(node, f"{what} {v} is out of range (0 to {MAX_ID}).")
    return v


def _field(r: NodeReader, node: yaml.Node, what: str, name: bool = False) -> str:
    """A field of /etc/passwd or /etc/group: no ':' or line break; names no spaces either."""
    v = r.string(node, what)
    bad = ":\n\r" + (" \t," if name else "")
    if (name and not v) or any(c in bad for c in v):
        raise r.err(node, f"{what} {v!r} cannot be used in /etc/passwd or /etc/group"
                    + (" (a name is not empty and has no ':', ',', space or line break)."
                       if name else " (it has a ':' or a line break)."))
    return v


def _work_dir(r: NodeReader, node: yaml.Node) -> str:
    v = r.string(node, "work-dir")
    if not v.startswith("/"):
        raise r.err(node, f"work-dir {v!r} must be an absolute path (runtimes refuse a "
                    "relative one).")
    return v


def _environment(r: NodeReader, node: yaml.Node) -> dict[str, str]:
    env = r.string_map(node, "environment")
    for k, kn in zip(env, (k for k, _ in node.value), strict=True):
        if not k or "=" in k or "\0" in k:
            raise r.err(kn, f"environment variable name {k!r} is not usable (it must be "
                        "non-empty, without '=').")
    return env

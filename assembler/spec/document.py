"""image.yaml: strict loading, with every error pointing at a file and line.

The YAML node tree is kept beside the plain values so that later stages
(resolution, for instance) can point at the line a package was named on.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import shlex
import stat
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from assembler.errors import SpecError
from assembler.spec.modes import parse_mode

RELATION = re.compile(r"^(?P<name>[a-z0-9][a-z0-9+.\-]*)(?:_(?P<slice>[a-z0-9][a-z0-9\-]*))?"
                      r"(?::(?P<arch>[a-z0-9-]+))?"
                      r"(?:\s*(?P<op>>=|<=|<<|>>|=|<|>)\s*(?P<version>[A-Za-z0-9.+~:\-]+))?$")
# What Debian's grammar above refuses but an apk atom may be: upper case and
# several '_' in names (libnetfilter_acct), so:/cmd:/pc: names, '~' pins and
# '_rc1' versions, '@tag' repository tags. The distro's own parser decides later
# (the format's wants).
APK_LIKE = re.compile(r"^(?P<name>[A-Za-z0-9/][A-Za-z0-9+._\-:/]*?)(?:@[A-Za-z0-9._\-]+)?"
                      r"(?:\s*(?P<op>[<>=~]+)\s*(?P<version>[A-Za-z0-9.+~_\-=]+))?$")

STRIP_KINDS = ("docs", "man", "info", "locales", "lintian")


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
    key_urls: list[str] = field(default_factory=list)  # fetched once, cached (distro/keyring.py)
    tag: str = ""  # apk repository tag: serves only `pkg@tag` requests (docs/alpine.md)


@dataclass(frozen=True)
class User:
    username: str
    uid: int
    gid: int
    home: str
    shell: str = "/sbin/nologin"
    gecos: str = ""


@dataclass(frozen=True)
class Group:
    groupname: str
    gid: int
    members: tuple[str, ...] = ()


# In every image whatever the spec says (accounts.py writes them).
ROOT = User("root", 0, 0, "/root", "/sbin/nologin", "root")
NOBODY = User("nobody", 65534, 65534, "/nonexistent", "/sbin/nologin", "nobody")
ROOT_GROUP = Group("root", 0)
NOGROUP = Group("nogroup", 65534)


@dataclass(frozen=True)
class Accounts:
    """accounts: the users and groups the spec adds, and who the image runs as."""

    users: tuple[User, ...] = ()
    groups: tuple[Group, ...] = ()
    run_as: str | None = None

    def uids(self) -> dict[str, int]:
        """User name -> uid, for every user the image will have."""
        return {u.username: u.uid for u in (ROOT, NOBODY, *self.users)}

    def gids(self) -> dict[str, int]:
        """Group name -> gid: declared groups, then users' own primary groups."""
        out = {g.groupname: g.gid for g in (ROOT_GROUP, NOGROUP, *self.groups)}
        known = set(out.values())
        for u in self.users:
            if u.gid not in known:
                out.setdefault(u.username, u.gid)
                known.add(u.gid)
        return out


@dataclass(frozen=True)
class PathEntry:
    """One item of `paths`. uid/gid are resolved to numbers; None means "not given"."""

    path: str
    type: str
    line: int
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    target: str | None = None
    content: str | None = None
    # A local file or directory (relative to the spec, already checked readable).
    source: Path | None = None
    recursive: bool = False


@dataclass(frozen=True)
class Layering:
    """`single`: one package layer (the default); `origin`: grouped by source package."""

    strategy: str = "single"
    budget: int = 0


@dataclass(kw_only=True)
class Contents:
    """contents: what the archive puts in the image."""

    packages: list[Request]
    exclude: list[Located] = field(default_factory=list)
    include_essential: bool = False
    components: list[str] | None = None
    strip: list[str] = field(default_factory=lambda: list(STRIP_KINDS))
    allow_setuid: bool = False
    repositories: list[Repository] = field(default_factory=list)


@dataclass(kw_only=True)
class RuntimeConfig:
    """What a container starts with: the image config's runtime part."""

    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    work_dir: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    # "8080/tcp"; absolute paths; "SIGTERM" or a number.
    ports: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    stop_signal: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class Spec(Contents, RuntimeConfig):
    """The whole spec: its sections' fields, flat (spec.packages, spec.cmd, ...)."""

    path: Path
    digest: str
    distro: str
    distro_line: int
    archs: list[str]
    mirrors: dict[str, str] = field(default_factory=dict)
    accounts: Accounts = field(default_factory=Accounts)
    paths: list[PathEntry] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    layering: Layering = field(default_factory=Layering)
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    # Globs over absolute paths of ELF files the link check skips (linkcheck.py).
    link_check_ignore: list[str] = field(default_factory=list)
    # An apko config's meanings our schema has no key for (spec/apko.ApkoExtras), else None.
    apko: Any = None
    snapshot_mirror: str | None = None   # base URL of a snapshot archive (distro/snapshot.py)
    # name -> {"path", "line", and "link" for an alternative the table lacks} (alternatives.py)
    alternatives: dict[str, dict[str, Any]] = field(default_factory=dict)
    # [{"name", "content", "line"}]: PEM certificates the image trusts too (certs.py)
    certificates: list[dict[str, Any]] = field(default_factory=list)
    # Compile the standard library of the image's python3.X, sandboxed (rootfs/bytecode.py).
    python_bytecode: bool = True

    def where(self, line: int) -> str:
        return f"{self.path}:{line}"

    @property
    def has_app(self) -> bool:
        """Local content (paths with `source:`), which goes in a layer of its own."""
        return any(p.source is not None for p in self.paths)


BINARY_TAG = "tag:yaml.org,2002:binary"
T = TypeVar("T")


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
        if node.tag == BINARY_TAG:
            # Taking the base64 text as the value would write it, silently, into the image.
            raise self.err(node, f"{what} is tagged !!binary, which this spec does not decode; "
                           "put the bytes in a file and name it with 'source:'.")
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
    "ports": "exposed ports",
    "volumes": "volumes",
    "stop-signal": "stop signal",
    "labels": "config labels",
    "paths": "paths",
    "annotations": "annotations",
    "layering": "layering",
    "link-check": "link check",
    "alternatives": "update-alternatives choices",
    "certificates": "additional CA certificates",
    "python-bytecode": "compile the Python standard library",
}
ALTERNATIVE_KEYS = {"link": "", "path": ""}
CERTIFICATES_KEYS = {"additional": ""}
CERTIFICATE_KEYS = {"name": "", "content": "", "path": ""}
CONTENTS_KEYS = {"packages": "", "exclude": "", "repositories": "", "include-essential": "",
                 "components": "", "strip": "", "allow-setuid": ""}
REPO_KEYS = {"name": "", "url": "", "suites": "", "components": "", "keys": "", "tag": ""}
ACCOUNT_KEYS = {"groups": "", "users": "", "run-as": ""}
GROUP_KEYS = {"groupname": "", "gid": "", "members": ""}
USER_KEYS = {"username": "", "uid": "", "gid": "", "home": "", "shell": "", "gecos": ""}
PATH_KEYS = {"path": "", "type": "", "uid": "", "gid": "", "mode": "", "source": "",
             "target": "", "content": "", "recursive": ""}
PATH_TYPES = ("directory", "file", "empty-file", "symlink", "hardlink", "permissions")
# What each type does something with; anything else is refused, not ignored.
_COMMON = {"path", "type"}
PATH_TYPE_KEYS = {
    "directory": _COMMON | {"uid", "gid", "mode", "source"},
    "file": _COMMON | {"uid", "gid", "mode", "content", "source"},
    "empty-file": _COMMON | {"uid", "gid", "mode"},
    "symlink": _COMMON | {"uid", "gid", "target"},
    "hardlink": _COMMON | {"target"},
    "permissions": _COMMON | {"uid", "gid", "mode", "recursive"},
}
PATH_REQUIRED = {"symlink": ("target",), "hardlink": ("target",)}
LAYERING_KEYS = {"strategy": "", "budget": ""}
LAYERING_STRATEGIES = ("single", "origin")
DEFAULT_BUDGET = 10
# Runtimes and registries cope with 127 layers; the package part stays well below.
MAX_BUDGET = 100
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


def is_apko(root: yaml.Node) -> bool:
    """apko's configs have no `distro:` (spec/apko.py reads them); ours always do."""
    return isinstance(root, yaml.MappingNode) and not any(
        isinstance(k, yaml.ScalarNode) and k.value == "distro" for k, _ in root.value)


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
    apko = None
    if is_apko(root):
        from assembler.spec.apko import translate

        root, apko = translate(path, r)
    top = r.mapping(root, "the spec", TOP_KEYS)
    if "distro" not in top:
        raise r.err(root, "the spec has no 'distro' (for example 'distro: debian/bookworm').")
    if "contents" not in top:
        raise r.err(root, "the spec has no 'contents' (the packages to install).")
    contents = _read_contents(r, top["contents"])
    accounts = _read_accounts(r, top["accounts"]) if "accounts" in top else Accounts()
    config = _read_config(r, top)
    # An apko config's inputs are what it was translated to (includes merged in).
    raw = _construct(r, root, yaml.serialize(root).encode() if apko else text)
    if apko:
        raw["contents"]["apko"] = apko.inputs()
    return Spec(
        **vars(contents), **vars(config),
        path=path,
        digest="sha256:" + hashlib.sha256(text).hexdigest(),
        distro=r.string(top["distro"], "distro"),
        distro_line=_node_line(top["distro"]),
        archs=_read_archs(r, top["archs"]) if "archs" in top else [host_arch()],
        mirrors=r.string_map(top["mirrors"], "mirrors") if "mirrors" in top else {},
        accounts=accounts,
        paths=_read_paths(r, top["paths"], accounts) if "paths" in top else [],
        annotations=r.string_map(top["annotations"], "annotations")
        if "annotations" in top else {},
        layering=_read_layering(r, top["layering"]) if "layering" in top else Layering(),
        raw=raw,
        link_check_ignore=_read_link_check(r, top["link-check"]) if "link-check" in top
        else [],
        apko=apko,
        snapshot_mirror=_read_snapshot_mirror(r, top["snapshot-mirror"])
        if "snapshot-mirror" in top else None,
        alternatives=_alternatives(r, top["alternatives"]) if "alternatives" in top else {},
        certificates=_certificates(r, top["certificates"]) if "certificates" in top else [],
        python_bytecode=r.boolean(top["python-bytecode"], "python-bytecode")
        if "python-bytecode" in top else True)


def _read_config(r: NodeReader, top: dict[str, yaml.Node]) -> RuntimeConfig:
    """The image config's runtime part: what a container starts with."""
    labels = r.string_map(top["labels"], "labels") if "labels" in top else {}
    if "annotations" in top and "labels" in top:
        annotations = r.string_map(top["annotations"], "annotations")
        for k, kn in zip(labels, (k for k, _ in top["labels"].value), strict=True):
            if k in annotations and annotations[k] != labels[k]:
                raise r.err(kn, f"label {k!r} differs from the annotation of that name, which "
                            "also becomes a config label; give it once.")
    return RuntimeConfig(
        entrypoint=_argv(r, top["entrypoint"], "entrypoint") if "entrypoint" in top else None,
        cmd=_argv(r, top["cmd"], "cmd") if "cmd" in top else None,
        work_dir=_work_dir(r, top["work-dir"]) if "work-dir" in top else None,
        environment=_environment(r, top["environment"]) if "environment" in top else {},
        ports=_ports(r, top["ports"]) if "ports" in top else [],
        volumes=_volumes(r, top["volumes"]) if "volumes" in top else [],
        stop_signal=_stop_signal(r, top["stop-signal"]) if "stop-signal" in top else "",
        labels=labels)


def _argv(r: NodeReader, node: yaml.Node, what: str) -> list[str]:
    """A list is the argv as is; a string is split as a POSIX shell would (no expansion),
    so `cmd: /bin/sh -l` is two arguments, as apko and Dockerfiles' users expect."""
    if not isinstance(node, yaml.ScalarNode):
        return r.strings(node, what)
    text = r.string(node, what)
    try:
        argv = shlex.split(text)
    except ValueError as e:
        raise r.err(node, f"{what} {text!r} cannot be split into arguments ({e}); write it as "
                    "a list, such as [/bin/sh, -c, 'echo hi'].") from None
    if not argv:
        raise r.err(node, f"{what} is empty; leave it out or give the program to run.")
    return argv


PORT = re.compile(r"^(?P<port>\d{1,5})(?:/(?P<proto>tcp|udp|sctp))?$")


def _ports(r: NodeReader, node: yaml.Node) -> list[str]:
    out: list[str] = []
    for n in r.seq(node, "ports"):
        text = r.scalar(n, "a port")
        m = PORT.match(text)
        if not m or not 1 <= int(m["port"]) <= 65535:
            raise r.err(n, f"port {text!r} is not a port number (1 to 65535) with an optional "
                        "/tcp, /udp or /sctp, such as 8080 or 53/udp.")
        port = f"{int(m['port'])}/{m['proto'] or 'tcp'}"
        if port in out:
            raise r.err(n, f"port {port} is listed twice.")
        out.append(port)
    return out


def _volumes(r: NodeReader, node: yaml.Node) -> list[str]:
    out: list[str] = []
    for n in r.seq(node, "volumes"):
        v = r.string(n, "a volume")
        if not v.startswith("/") or "\0" in v:
            raise r.err(n, f"volume {v!r} must be an absolute path in the container, such as "
                        "/data.")
        if v in out:
            raise r.err(n, f"volume {v} is listed twice.")
        out.append(v)
    return out


# Linux's signals, as runtimes (runc, crun) name them.
SIGNALS = frozenset({
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS", "RTMIN", "RTMAX"})
_RT = re.compile(r"^RTMIN\+([1-9]|1[0-5])$|^RTMAX-([1-9]|1[0-4])$")


def _stop_signal(r: NodeReader, node: yaml.Node) -> str:
    """`SIGTERM`, `TERM` (written SIGTERM) or a number 1 to 64."""
    text = r.scalar(node, "stop-signal")
    if text.isdigit():
        if 1 <= int(text) <= 64:
            return str(int(text))
    else:
        name = text.upper().removeprefix("SIG")
        if name in SIGNALS or _RT.match(name):
            return "SIG" + name
    raise r.err(node, f"stop-signal {text!r} is not a signal: give a name such as SIGTERM or "
                "SIGQUIT, or a number from 1 to 64." + did_you_mean(
                    text.upper(), {"SIG" + s for s in SIGNALS}))


def _read_archs(r: NodeReader, node: yaml.Node) -> list[str]:
    archs = r.strings(node, "archs")
    for n, a in zip(r.seq(node, "archs"), archs, strict=True):
        if a not in KNOWN_ARCHS:
            raise r.err(n, f"unknown architecture {a!r}." + did_you_mean(a, KNOWN_ARCHS))
    if not archs:
        raise r.err(node, "archs is empty.")
    if len(set(archs)) != len(archs):
        raise r.err(node, "archs lists an architecture twice.")
    return archs


_EMPTY = yaml.SequenceNode("", [])


def _read_contents(r: NodeReader, node: yaml.Node) -> Contents:
    contents = r.mapping(node, "contents", CONTENTS_KEYS)
    packages = [parse_request(r.string(n, "a package"), _node_line(n), str(r.path))
                for n in r.seq(contents.get("packages", _EMPTY), "contents.packages")]
    if not packages:
        raise r.err(node, "contents.packages is empty: name at least one package.")
    seen: dict[str, Request] = {}
    for req in packages:
        if req.name in seen and seen[req.name].version != req.version:
            raise r.err(req.line, f"{req.name!r} is requested twice with different "
                        f"versions (also on line {seen[req.name].line}).")
        seen[req.name] = req
    exclude: list[Located] = []
    for n in r.seq(contents.get("exclude", _EMPTY), "contents.exclude"):
        name = r.string(n, "an excluded package")
        exclude.append(Located(name, _node_line(n)))
        if name in seen:
            raise r.err(n, f"{name!r} is both requested (line {seen[name].line}) and excluded.")
    strip = list(STRIP_KINDS)
    if "strip" in contents:
        strip = r.strings(contents["strip"], "contents.strip")
        for n, v in zip(r.seq(contents["strip"], "strip"), strip, strict=True):
            if v not in STRIP_KINDS:
                raise r.err(n, f"unknown strip kind {v!r}." + did_you_mean(v, STRIP_KINDS)
                            + " Kinds: " + ", ".join(STRIP_KINDS) + ".")
    return Contents(
        packages=packages, exclude=exclude,
        include_essential=r.boolean(contents["include-essential"], "include-essential")
        if "include-essential" in contents else False,
        components=r.strings(contents["components"], "contents.components")
        if "components" in contents else None,
        strip=strip,
        allow_setuid=r.boolean(contents["allow-setuid"], "allow-setuid")
        if "allow-setuid" in contents else False,
        repositories=[_read_repository(r, n) for n in
                      r.seq(contents.get("repositories", _EMPTY), "contents.repositories")])


def _read_repository(r: NodeReader, node: yaml.Node) -> Repository:
    m = r.mapping(node, "a repository", REPO_KEYS)
    for req_key in ("name", "suites", "keys"):
        if req_key not in m:
            raise r.err(node, f"a repository needs {req_key!r}.")
    key_texts = r.strings(m["keys"], "keys")
    key_urls = [k for k in key_texts if k.startswith(("http://", "https://", "file://"))]
    keys = [(r.path.parent / k).resolve() for k in key_texts if k not in key_urls]
    for k, kn in zip(key_texts, r.seq(m["keys"], "keys"), strict=True):
        if k not in key_urls and not (r.path.parent / k).is_file():
            raise r.err(kn, f"key file {(r.path.parent / k).resolve()} does not exist.")
    return Repository(
        name=r.string(m["name"], "name"),
        url=r.string(m["url"], "url") if "url" in m else None,
        suites=r.strings(m["suites"], "suites"),
        components=r.strings(m["components"], "components") if "components" in m
        else ["main"],
        keys=keys, line=_node_line(node), key_urls=key_urls,
        tag=r.string(m["tag"], "tag").lstrip("@") if "tag" in m else "")


class _Once:
    """A user or group name, uid or gid may be given once: /etc/passwd and
    /etc/group would otherwise hold two entries for it."""

    def __init__(self, r: NodeReader) -> None:
        self.r = r
        self.seen: dict[tuple[str, object], int] = {}

    def keep(self, node: yaml.Node, item: T, *kinds: str) -> T:
        """`item` (a User or Group), once its fields named `kinds` are checked unique."""
        for kind in kinds:
            value = getattr(item, kind)
            if (kind, value) in self.seen:
                shown = repr(value) if isinstance(value, str) else value
                raise self.r.err(node, f"{kind} {shown} appears twice in accounts (also on "
                                 f"line {self.seen[(kind, value)]}).")
            self.seen[(kind, value)] = _node_line(node)
        return item


def _read_accounts(r: NodeReader, node: yaml.Node) -> Accounts:
    acc = r.mapping(node, "accounts", ACCOUNT_KEYS)
    once = _Once(r)
    groups = [once.keep(g, _read_group(r, g), "groupname", "gid")
              for g in r.seq(acc.get("groups", _EMPTY), "accounts.groups")]
    users = [once.keep(u, _read_user(r, u), "username", "uid")
             for u in r.seq(acc.get("users", _EMPTY), "accounts.users")]
    run_as = None
    if "run-as" in acc:
        run_as = r.string(acc["run-as"], "run-as")
        names = {u.username for u in users} | {"root", "nobody"}
        if run_as not in names and not re.fullmatch(r"\d+(:\d+)?", run_as):
            raise r.err(acc["run-as"], f"run-as {run_as!r} is neither a user accounts.users "
                        "defines nor a numeric uid or uid:gid." + did_you_mean(run_as, names))
    return Accounts(users=tuple(users), groups=tuple(groups), run_as=run_as)


def _read_group(r: NodeReader, node: yaml.Node) -> Group:
    gm = r.mapping(node, "a group", GROUP_KEYS)
    if "groupname" not in gm or "gid" not in gm:
        raise r.err(node, "a group needs 'groupname' and 'gid'.")
    return Group(
        groupname=_field(r, gm["groupname"], "groupname", name=True),
        gid=_id(r, gm["gid"], "gid"),
        members=tuple(_field(r, n, "a member", name=True)
                      for n in r.seq(gm["members"], "members")) if "members" in gm else ())


def _read_user(r: NodeReader, node: yaml.Node) -> User:
    um = r.mapping(node, "a user", USER_KEYS)
    if "username" not in um or "uid" not in um:
        raise r.err(node, "a user needs 'username' and 'uid'.")
    uid = _id(r, um["uid"], "uid")
    name = _field(r, um["username"], "username", name=True)
    user = User(
        username=name, uid=uid,
        gid=_id(r, um["gid"], "gid") if "gid" in um else uid,
        home=_field(r, um["home"], "home") if "home" in um else f"/home/{name}",
        shell=_field(r, um["shell"], "shell") if "shell" in um else "/sbin/nologin",
        gecos=_field(r, um["gecos"], "gecos") if "gecos" in um else name)
    if not user.home.startswith("/"):
        raise r.err(um["home"], f"home {user.home!r} must be an absolute path.")
    return user


def _read_paths(r: NodeReader, node: yaml.Node, accounts: Accounts) -> list[PathEntry]:
    return [_read_path(r, n, accounts) for n in r.seq(node, "paths")]


def path_type(r: NodeReader, node: yaml.Node, pm: dict[str, yaml.Node], types: Sequence[str],
              listing: str) -> str:
    """A path entry's `type`, one of `types` (`listing` names them in the error); the
    entry must have `path` and `type`."""
    if "path" not in pm or "type" not in pm:
        raise r.err(node, "a path entry needs 'path' and 'type'.")
    kind = r.string(pm["type"], "type")
    if kind not in types:
        raise r.err(pm["type"], f"unknown path type {kind!r}." + did_you_mean(kind, types)
                    + f" {listing}: " + ", ".join(types) + ".")
    return kind


def _read_path(r: NodeReader, node: yaml.Node, accounts: Accounts) -> PathEntry:
    pm = r.mapping(node, "a path", PATH_KEYS)
    kind = path_type(r, node, pm, PATH_TYPES, "Types")
    for key in pm:
        if key not in PATH_TYPE_KEYS[kind]:
            raise r.err(pm[key], f"a {kind} path does not take {key!r} (it takes "
                        + ", ".join(sorted(PATH_TYPE_KEYS[kind])) + ").")
    for key in PATH_REQUIRED.get(kind, ()):
        if key not in pm:
            raise r.err(node, f"a {kind} path needs {key!r}.")
    mode = None
    if "mode" in pm:
        mode = parse_mode(r.string(pm["mode"], "mode"), "octal")
        if mode is None:
            raise r.err(pm["mode"], f"mode {r.string(pm['mode'], 'mode')!r} is not an octal "
                        "mode such as \"0755\" (at most 07777).")
    source = None
    if "source" in pm:
        source = _source(r, pm["source"], kind)
        if "content" in pm:
            raise r.err(pm["content"], "a file path takes 'content' or 'source', not both.")
        if kind == "directory" and "mode" in pm:
            raise r.err(pm["mode"], "a directory copied from 'source' keeps each entry's mode; "
                        "change modes with a 'permissions' path (recursive: true for a tree).")
    if kind == "permissions" and not {"uid", "gid", "mode"} & set(pm):
        raise r.err(node, "a permissions path needs 'mode', 'uid' or 'gid' (what to change).")
    return PathEntry(
        path=r.string(pm["path"], "path"), type=kind, line=_node_line(node), mode=mode,
        uid=_owner(r, pm["uid"], "uid", accounts) if "uid" in pm else None,
        gid=_owner(r, pm["gid"], "gid", accounts) if "gid" in pm else None,
        target=r.string(pm["target"], "target") if "target" in pm else None,
        content=r.string(pm["content"], "content") if "content" in pm else None,
        source=source,
        recursive=r.boolean(pm["recursive"], "recursive") if "recursive" in pm else False)


def _source(r: NodeReader, node: yaml.Node, kind: str) -> Path:
    """A local file (type file) or directory (type directory), relative to the spec."""
    text = r.string(node, "source")
    source = r.path.parent / text
    try:
        st = source.stat()
    except OSError as e:
        raise r.err(node, f"source {text!r} ({source.absolute()}) cannot be read: "
                    f"{e.strerror}.") from None
    want_dir = kind == "directory"
    if stat.S_ISDIR(st.st_mode) != want_dir or not (want_dir or stat.S_ISREG(st.st_mode)):
        raise r.err(node, f"source {text!r} is not a "
                    + ("directory" if want_dir else "regular file")
                    + f"; a {kind} path copies " + ("a directory." if want_dir else "a file."))
    if not os.access(source, os.R_OK | (os.X_OK if want_dir else 0)):
        raise r.err(node, f"source {text!r} ({source.absolute()}) is not readable.")
    return source


def _owner(r: NodeReader, node: yaml.Node, what: str, accounts: Accounts) -> int:
    """A uid or gid: a number, or the name of an account the spec (or every image) has."""
    text = r.scalar(node, what)
    if text.isdigit():
        return _id(r, node, what)
    ids = accounts.uids() if what == "uid" else accounts.gids()
    if text not in ids:
        kind = "user" if what == "uid" else "group"
        raise r.err(node, f"{what} {text!r} is neither a number nor a {kind} accounts defines "
                    "(or root, " + ("nobody" if what == "uid" else "nogroup") + ")."
                    + did_you_mean(text, set(ids)))
    return ids[text]


def _read_snapshot_mirror(r: NodeReader, node: yaml.Node) -> str:
    url = r.string(node, "snapshot-mirror")
    if not url.strip():   # not "no snapshot archive": a key left half-written
        raise r.err(node, "snapshot-mirror is empty; give the snapshot archive's base URL "
                          "or drop the key.")
    return url


def _read_layering(r: NodeReader, node: yaml.Node) -> Layering:
    lm = r.mapping(node, "layering", LAYERING_KEYS)
    strategy = r.string(lm["strategy"], "strategy") if "strategy" in lm else "origin"
    if strategy not in LAYERING_STRATEGIES:
        raise r.err(lm["strategy"], f"unknown layering strategy {strategy!r}."
                    + did_you_mean(strategy, LAYERING_STRATEGIES)
                    + " Strategies: " + ", ".join(LAYERING_STRATEGIES) + ".")
    budget = DEFAULT_BUDGET
    if "budget" in lm:
        if strategy != "origin":
            raise r.err(lm["budget"], "budget applies to the origin strategy only.")
        budget = _int(r, lm["budget"], "budget")
        if not 1 <= budget <= MAX_BUDGET:
            raise r.err(lm["budget"], f"budget {budget} is out of range (1 to {MAX_BUDGET} "
                        "package layers).")
    return Layering(strategy, budget)


def _read_link_check(r: NodeReader, node: yaml.Node) -> list[str]:
    lc = r.mapping(node, "link-check", LINK_CHECK_KEYS)
    if "ignore" not in lc:
        return []
    ignore = r.strings(lc["ignore"], "link-check.ignore")
    for n, g in zip(r.seq(lc["ignore"], "link-check.ignore"), ignore, strict=True):
        if not g.startswith("/"):
            raise r.err(n, f"link-check.ignore entry {g!r} must be an absolute path "
                        "or glob, such as /usr/lib/app/plugins/*.so.")
    return ignore


def _construct(r: NodeReader, root: yaml.Node, text: bytes) -> dict[str, Any]:
    try:
        return yaml.safe_load(text)
    except CONSTRUCT_ERRORS:
        # The readers above take every value as text; only a tag (!foo, !!binary) that
        # YAML itself cannot construct gets here.
        bad = _unconstructible(root)
        raise r.err(bad, f"YAML cannot read the value tagged {bad.tag!r}. Remove the tag "
                    "(values are plain strings, lists and mappings).") from None


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


def _absolute(r: NodeReader, node: yaml.Node, what: str) -> str:
    v = r.string(node, what)
    if not v.startswith("/"):
        raise r.err(node, f"{what} {v!r} must be an absolute path.")
    return v


def _alternatives(r: NodeReader, node: yaml.Node) -> dict[str, dict[str, Any]]:
    """`name: /path` chooses among the release's table; `name: {link, path}` adds one."""
    if not isinstance(node, yaml.MappingNode):
        raise r.err(node, "alternatives must be a mapping of names to paths, such as "
                    "'java: /usr/lib/jvm/java-17-openjdk-amd64/bin/java'.")
    out: dict[str, dict[str, Any]] = {}
    for k, v in node.value:
        name = r.string(k, "an alternative's name")
        if name in out:
            raise r.err(k, f"alternative {name!r} appears twice.")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+\-]*", name):
            raise r.err(k, f"alternative name {name!r} is not usable (letters, digits, '.', "
                        "'_', '+', '-').")
        entry: dict[str, Any] = {"line": _node_line(k)}
        if isinstance(v, yaml.MappingNode):
            m = r.mapping(v, f"alternative {name!r}", ALTERNATIVE_KEYS)
            if "path" not in m:
                raise r.err(v, f"alternative {name!r} needs 'path' (what the link points to).")
            for key, value in m.items():
                entry[key] = _absolute(r, value, f"alternative {name!r} {key}")
        else:
            entry["path"] = _absolute(r, v, f"alternative {name!r}")
        out[name] = entry
    return out


def _certificates(r: NodeReader, node: yaml.Node) -> list[dict[str, Any]]:
    """apko's shape: additional: [{name, content: PEM}], or path: a PEM file beside the spec."""
    m = r.mapping(node, "certificates", CERTIFICATES_KEYS)
    out: list[dict[str, Any]] = []
    names: dict[str, int] = {}
    for n in r.seq(m.get("additional", yaml.SequenceNode("", [])), "certificates.additional"):
        cm = r.mapping(n, "a certificate", CERTIFICATE_KEYS)
        if "name" not in cm or ("content" in cm) == ("path" in cm):
            raise r.err(n, "a certificate needs 'name' and one of 'content' (PEM text) or "
                        "'path' (a PEM file, relative to the spec).")
        name = r.string(cm["name"], "certificate name")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", name):
            raise r.err(cm["name"], f"certificate name {name!r} is not usable as a file name "
                        "(letters, digits, '.', '_', '-').")
        if name in names:
            raise r.err(cm["name"], f"certificate {name!r} appears twice (also on line "
                        f"{names[name]}).")
        names[name] = _node_line(n)
        if "content" in cm:
            content = r.string(cm["content"], "certificate content")
        else:
            file = r.path.parent / r.string(cm["path"], "certificate path")
            try:
                content = file.read_text("utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise r.err(cm["path"], f"cannot read certificate file {file} "
                            f"({getattr(e, 'strerror', None) or e}).") from None
        out.append({"name": name, "content": content, "line": _node_line(n)})
    return out

"""The package universe a resolver works on, whatever the package format.

Debian and Alpine loaders both produce a Universe: packages by name, who
provides what, and the format's version ordering. Records stay compact tuples
until a package is actually looked at, which keeps warm loads fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from assembler.cache import Cache
from assembler.distro.definition import Distro
from assembler.progress import Progress


def relation_holds(cmp: int, op: str) -> bool:
    """Given cmp(have, wanted) as -1/0/1, does `have op wanted` hold (Debian operators)?

    '<' and '>' are dpkg's obsolete spellings of '<=' and '>='.
    """
    if op == "=":
        return cmp == 0
    if op in (">=", ">"):
        return cmp >= 0
    if op in ("<=", "<"):
        return cmp <= 0
    if op == ">>":
        return cmp > 0
    if op == "<<":
        return cmp < 0
    raise ValueError(f"unknown version relation {op!r}")


@dataclass(frozen=True, slots=True)
class Dep:
    """One alternative of a dependency: name, optional (op, version), optional arch qualifier."""

    name: str
    op: str | None = None
    version: str | None = None
    arch: str | None = None

    def __str__(self) -> str:
        s = self.name + (f":{self.arch}" if self.arch else "")
        return s + (f" ({self.op} {self.version})" if self.op else "")


@dataclass(slots=True)
class Package:
    name: str
    version: str
    arch: str
    depends: list[list[Dep]]          # AND of OR-groups, Pre-Depends first
    provides: list[tuple[str, str | None]]
    conflicts: list[Dep]              # Conflicts and Breaks alike: cannot be installed together
    essential: bool = False
    multi_arch: str = ""
    priority: str = ""
    archive: str = ""
    suite: str = ""
    filename: str = ""
    size: int = 0
    sha256: str = ""
    source: str = ""
    provider_priority: int = 0        # Alpine's provider_priority; 0 elsewhere
    install_if: list[Dep] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.version, self.arch)

    def __str__(self) -> str:
        return f"{self.name}={self.version}"


@dataclass
class Timings:
    """Where an index loader's time went (the benches print it)."""

    download: float = 0.0
    verify: float = 0.0
    parse: float = 0.0
    load: float = 0.0


class IndexLoader:
    """What every format's index loader holds: where the archives are, the cache, and
    whether the network may be used. Subclasses implement load(arch) -> Universe."""

    def __init__(self, distro: Distro, mirrors: dict[str, str], cache: Cache,
                 offline: bool = False, progress: Progress | None = None) -> None:
        self.distro = distro
        self.mirrors = mirrors
        self.cache = cache
        self.offline = offline
        self.progress = progress or Progress(quiet=True)
        self.timings = Timings()

    def load(self, arch: str) -> Universe:
        raise NotImplementedError


class Universe:
    """All available packages for one architecture, merged over archives and suites.

    Loaders add compact records; `make` turns a record into a Package the first
    time someone looks at it.
    """

    def __init__(self, arch: str, version_key: Callable[[str], Any],
                 make: Callable[[tuple], Package],
                 essential: Callable[[tuple], bool] | None = None) -> None:
        self.arch = arch
        self.version_key = version_key
        self._make = make
        # Answers "is this record Essential?" without building a Package: making
        # all 66k Packages of an archive to find ~30 essential ones takes seconds.
        self._essential = essential or (lambda r: self._make(r).essential)
        self._raw: dict[str, list[tuple]] = {}
        self._pkgs: dict[str, list[Package]] = {}
        self._provides: dict[str, list[tuple[str, tuple]]] = {}  # virtual -> (provider, record)
        self._by_record: dict[int, Package] = {}
        self.sources: list[dict] = []   # the indexes it was made from, for the lock
        # name -> packages with an install_if atom on it (Alpine), so a resolver
        # need not build every Package to find what a selection triggers
        self.triggers: dict[str, set[str]] = {}

    def add_raw(self, name: str, record: tuple, provides: Sequence[str] = ()) -> None:
        """`record` is whatever `make` understands; it must stay alive (ids are keys)."""
        self._raw.setdefault(name, []).append(record)
        self._pkgs.pop(name, None)
        for virtual in provides:
            self._provides.setdefault(virtual, []).append((name, record))

    def add_bulk(self, items: list[tuple[str, str, str]], tag: object,
                 split_provides: Callable[[str], list[str]]) -> None:
        """Add loader records (name, provides text, payload) in one tight loop."""
        raw = self._raw
        provides_map = self._provides
        self._pkgs.clear()
        for name, provides, payload in items:
            record = (payload, tag)
            bucket = raw.get(name)
            if bucket is None:
                raw[name] = [record]
            else:
                bucket.append(record)
            if provides:
                for virtual in split_provides(provides):
                    provides_map.setdefault(virtual, []).append((name, record))

    def add(self, pkg: Package) -> None:
        self.add_raw(pkg.name, (pkg,), [n for n, _ in pkg.provides])
        for d in pkg.install_if:
            self.triggers.setdefault(d.name, set()).add(pkg.name)

    def _package(self, record: tuple) -> Package:
        if len(record) == 1 and isinstance(record[0], Package):
            return record[0]
        return self._make(record)

    def versions(self, name: str) -> list[Package]:
        """Every available version of `name`, highest first (the first index wins a tie)."""
        pkgs = self._pkgs.get(name)
        if pkgs is None:
            pairs = [(self._package(r), r) for r in self._raw.get(name, ())]
            for p, r in pairs:
                self._by_record[id(r)] = p
            pkgs = [p for p, _ in pairs]
            pkgs.sort(key=lambda p: self.version_key(p.version), reverse=True)
            self._pkgs[name] = pkgs
        return pkgs

    def providers(self, name: str) -> list[Package]:
        """Packages (any version) whose Provides names `name`."""
        out = []
        for provider, record in self._provides.get(name, ()):
            self.versions(provider)
            out.append(self._by_record[id(record)])
        return out

    def names(self) -> set[str]:
        return set(self._raw)

    def essential_names(self) -> list[str]:
        """Names with at least one Essential version (the candidate may still not be)."""
        return sorted(name for name, records in self._raw.items()
                      if any(r[0].essential if isinstance(r[0], Package) else self._essential(r)
                             for r in records))


    def __contains__(self, name: str) -> bool:
        return name in self._raw or name in self._provides

    def __len__(self) -> int:
        return sum(len(v) for v in self._raw.values())

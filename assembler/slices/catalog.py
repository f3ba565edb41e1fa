"""Slice definitions (chisel's format): a release's catalog, read lazily, checked like chisel.

One YAML file per package under a `slices/` directory: ours under
`repos/<family>/<release>/slices/`, or a chisel-releases checkout as it is
(its `chisel.yaml` gives the format, v1 to v3). A slice names the paths it
takes from its package (plain paths, globs with `*`, `**` and `?`, `copy:`
from another path), paths it creates (`text`, `symlink`, `make`), paths only
there for a generator (`until: mutate`) and generated paths (`generate:
manifest | ca-bundle | passwd | group`: declarative stand-ins for chisel's
mutate scripts; nothing from a definition is ever executed).

Files are read when needed: choosing ten slices reads their packages' files
and those of their essentials, and checks those (checks.py); `load`
reads and checks the whole release.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from assembler.errors import SpecError
from assembler.progress import info
from assembler.slices.checks import check_release
from assembler.slices.definition import FILE_NAME, FORMATS, load_file
from assembler.slices.model import (
    GENERATORS,
    PathSpec,
    Slice,
    glob_regex,
    literal_prefix,
    matches,
    overlap,
)
from assembler.slices.mutate import cover, refusal
from assembler.spec.document import did_you_mean

__all__ = ["GENERATORS", "Catalog", "PathSpec", "Slice", "glob_regex", "literal_prefix",
           "matches", "overlap", "release_format"]


def release_format(slices_dir: Path) -> tuple[str | None, set[str] | None]:
    """The format and archive names of the chisel-releases checkout holding `slices_dir`
    (None, None for our own catalogs, which have no chisel.yaml)."""
    path = slices_dir.parent / "chisel.yaml"
    if slices_dir.name != "slices" or not path.is_file():
        return None, None
    from assembler.distro.chisel import read_release

    release = read_release(path)
    return release.format, release.pinnable


def _index(dirs: tuple[Path | None, ...]) -> dict[str, Path]:
    """Package name -> definition file, from the directory listings only."""
    files: dict[str, Path] = {}

    def walk(d: Path) -> None:
        with os.scandir(d) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if e.is_dir():
                walk(Path(e.path))
                continue
            if not e.name.endswith(".yaml"):
                continue
            m = FILE_NAME.match(e.name)
            if not m:
                raise SpecError(f"{e.path}: invalid slice definition filename {e.name!r}.")
            name = m.group(1)
            if name in files:
                raise SpecError(f"package {name!r} slices defined more than once: "
                                f"{files[name]} and {e.path}.")
            files[name] = Path(e.path)

    for d in dirs:
        if d is not None and d.is_dir():
            walk(d)
    return files


class Catalog:
    """The slices of a release. Built from slices (checked at once) or opened on
    directories (`open`: files read on demand; `load`: all read and checked)."""

    def __init__(self, slices: list[Slice] | None = None, files: dict[str, Path] | None = None,
                 format: str | None = None, archives: set[str] | None = None,
                 ) -> None:
        self.files = files or {}
        self.format = format
        self.archives = archives
        self.warnings: list[str] = []
        self.slices: dict[str, Slice] = {}
        self.packages: dict[str, list[Slice]] = {}
        self._checked: set[str] = set()
        for s in slices or []:
            self._add(s)
        if slices is not None:
            self.check()

    @classmethod
    def open(cls, *dirs: Path | None) -> Catalog:
        fmt, archives = None, None
        for d in dirs:
            if d is not None and d.is_dir():
                fmt, archives = release_format(d)
                break
        if fmt is not None and fmt not in FORMATS:
            raise SpecError(f"unknown slice format {fmt!r}.")
        return cls(None, _index(dirs), fmt, archives)

    @classmethod
    def load(cls, *dirs: Path | None) -> Catalog:
        cat = cls.open(*dirs)
        cat.read_all()
        cat.check()
        return cat

    def _add(self, s: Slice) -> None:
        self.slices[s.full] = s
        self.packages.setdefault(s.package, []).append(s)

    def _read(self, package: str) -> bool:
        """Read one package's file if the release has it; whether it does."""
        if package in self.packages:
            return True
        path = self.files.get(package)
        if path is None:
            return False
        before = len(self.warnings)
        slices, archive = load_file(path, self.format, self.warnings)
        if archive is not None and self.archives is not None and archive not in self.archives:
            raise SpecError(f"{path}: package refers to undefined archive {archive!r}.")
        self.packages[package] = []
        for s in slices:
            cover(s)
            self._add(s)
        for w in self.warnings[before:]:
            info(f"warning: {w}")
        return True

    def read_all(self) -> None:
        for package in self.files:
            self._read(package)

    def check(self) -> None:
        """chisel's release checks, over the packages read so far."""
        if set(self.packages) == self._checked:
            return
        check_release(self.packages, set(self.files) | set(self.packages))
        self._checked = set(self.packages)

    def get(self, full: str, where: str = "") -> Slice:
        s = self.slices.get(full)
        if s is None and self._read(full.partition("_")[0]):
            s = self.slices.get(full)
        if s is None:
            pkg = full.partition("_")[0]
            known = [x.full for x in self.packages.get(pkg, [])]
            hint = (" Slices of " + pkg + ": " + ", ".join(known) + ".") if known else \
                did_you_mean(pkg, list(self.files) or list(self.packages))
            raise SpecError(f"{where + ': ' if where else ''}no slice {full!r} in the catalog."
                            + hint)
        return s

    def closure(self, names: list[str], arch: str) -> list[Slice]:
        """The slices named and all their essentials for `arch`, in a stable order; the
        packages read for them are checked, and a slice we cannot cut is refused."""
        seen: dict[str, Slice] = {}
        todo = list(names)
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            s = self.get(n)
            seen[n] = s
            for e, _ in s.essential:   # read every arch's essentials: the checks see them
                self._read(e.partition("_")[0])
            todo.extend(s.essentials(arch))
        self.check()
        self.refuse_scripts(list(seen.values()))
        return [seen[k] for k in sorted(seen)]

    def chosen(self, names: list[str], where: str = "") -> list[Slice]:
        """The slices a lock names (their essentials are named too), checked."""
        out = [self.get(n, where) for n in names]
        for s in out:
            for e, _ in s.essential:
                self._read(e.partition("_")[0])
        self.check()
        self.refuse_scripts(out)
        return out

    @staticmethod
    def refuse_scripts(slices: list[Slice]) -> None:
        for s in slices:
            why = refusal(s)
            if why:
                raise SpecError(why)
            for p in s.contents.values():
                if p.generate and p.generate not in GENERATORS:
                    raise SpecError(f"{s.where(p.line)}: slice {s.full} has invalid 'generate' "
                                    f"for path {p.path}: {p.generate!r} (known: "
                                    + ", ".join(GENERATORS) + ").")

    def providers(self, path: str, arch: str | None = None) -> list[Slice]:
        """Slices whose contents name `path` (exactly or by a glob)."""
        self.read_all()
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

        self.read_all()
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
        self.read_all()
        self.check()   # chisel checks the release on find too
        words = [w.lower() for w in query.replace("_", " ").split() if w]
        out = [s for s in self.slices.values() if all(w in s.full for w in words)]
        return sorted(out, key=lambda s: (s.package, s.name))

    def describe(self, names: list[str]) -> str:
        """The definitions of packages or slices, as YAML in the definition format."""
        out = []
        for name in names:
            self._read(name.partition("_")[0])
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
                if s.hint:
                    body["hint"] = s.hint
                body.update(_describe_essentials(s.essential, self.format))
                body["contents"] = {p.path: _describe_path(s.written.get(p.path, p))
                                    for p in s.contents.values()}
                if s.mutate:
                    body["mutate"] = s.mutate
                doc["slices"][s.name] = body
            out.append(yaml.dump(doc, Dumper=_Dumper, sort_keys=False,
                                 default_flow_style=False))
        return "---\n".join(out)


def _describe_essentials(essential: list[tuple[str, tuple[str, ...] | None]],
                         fmt: str | None) -> dict:
    """In the format's style: v3 a map; v1/v2 a list, arch-specific ones in `v3-essential`;
    our catalogs a list, or a map when some are arch-specific."""
    if not essential:
        return {}
    as_map = {n: ({"arch": list(a)} if a else None) for n, a in essential}
    with_arch = any(a for _, a in essential)
    if fmt == "v3" or (fmt is None and with_arch):
        return {"essential": as_map}
    out: dict = {}
    plain = [n for n, a in essential if not a]
    if plain:
        out["essential"] = plain
    if with_arch:
        out["v3-essential"] = {n: v for n, v in as_map.items() if v}
    return out


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (mutate scripts) as `|` blocks, the way definitions write them."""


_Dumper.add_representer(str, lambda d, v: d.represent_scalar(
    "tag:yaml.org,2002:str", v, style="|" if "\n" in v.rstrip("\n") else None))


def _describe_path(p: PathSpec) -> dict | None:
    d: dict = {}
    for key, value in (("text", p.text), ("symlink", p.link), ("copy", p.source),
                       ("generate", p.generate), ("until", p.until), ("prefer", p.prefer)):
        if value is not None:
            d[key] = value
    if p.kind == "dir":
        d["make"] = True
    if p.mutable:
        d["mutable"] = True
    if p.mode is not None:
        d["mode"] = f"0{p.mode:o}"
    if p.arch:
        d["arch"] = list(p.arch) if len(p.arch) > 1 else p.arch[0]
    return d or None

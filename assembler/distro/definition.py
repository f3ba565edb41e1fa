"""Distro definitions (repos/<family>/<release>.yaml): archives, suites, keys.

A definition names archives, never mirrors: where an archive is served from is
the user's configuration (see mirror.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from assembler.errors import SpecError
from assembler.spec.document import compose_yaml, did_you_mean

# Families whose definitions may leave `format:` out.
FAMILY_FORMATS = {"debian": "deb", "ubuntu": "deb", "alpine": "apk", "wolfi": "apk"}


def _repos_dir() -> Path:
    """repos/: package data `assembler/repos` in an installed wheel (setup.py puts it
    there), the checkout's top-level repos/ when running from source or editable."""
    here = Path(__file__).resolve().parents[1]
    for candidate in (here / "repos", here.parent / "repos"):
        if candidate.is_dir():
            return candidate
    return here / "repos"   # find_distro then says no distro is known, and lists none


REPOS_DIR = _repos_dir()


@dataclass
class Archive:
    name: str                      # the mirror key, e.g. "debian", "debian-security"
    suites: list[str]
    components: list[str]
    available_components: list[str]
    keys: list[Path | bytes]       # key files, or armored keys given inline (chisel.yaml)
    # How to recognise this archive among the host's apt sources when none of our
    # suites is listed there (a bookworm host building trixie): suite regex + URI path.
    host_suite: str = ".*"
    host_path: str = ""
    url: str | None = None          # set for extra repositories given with a URL
    # apk repository tag (`@edge URL` in /etc/apk/repositories): its packages are only
    # eligible for requests naming the tag (`pkg@edge`) and their dependencies.
    tag: str = ""
    # Keys named by URL (apko's `keyring`, a definition's `key-urls`), fetched once and
    # kept in the cache (distro/keyring.py); `keys` gets their local copies.
    key_urls: list[str] = field(default_factory=list)
    archs: list[str] | None = None  # only these architectures (Ubuntu's ports archive)
    priority: int = 0               # chisel.yaml's: higher wins for a package in several

    def serves(self, arch: str) -> bool:
        return self.archs is None or arch in self.archs


@dataclass
class Distro:
    family: str                    # "debian", "alpine", ...: the distro's name for itself
    release: str
    path: Path
    archives: list[Archive]
    merged_usr: bool = False
    slices_dir: Path | None = None
    extra: dict = field(default_factory=dict)
    format: str = ""               # the package format ("deb", "apk"): packages/format.py


def available_distros() -> list[str]:
    return sorted(f"{p.parent.name}/{p.stem}" for p in REPOS_DIR.glob("*/*.yaml")
                  if not p.name.startswith("_"))


def find_distro(name: str, spec_dir: Path | None = None) -> Path:
    """A name like 'debian/bookworm' from repos/, or a path to a definition file."""
    candidates = []
    if name.endswith((".yaml", ".yml")):
        candidates.append((spec_dir or Path.cwd()) / name)
    candidates.append(REPOS_DIR / f"{name}.yaml")
    # A family with one definition is named by the family alone ("wolfi").
    if "/" not in name and (REPOS_DIR / name).is_dir():
        only = sorted((REPOS_DIR / name).glob("*.yaml"))
        if len(only) == 1:
            candidates.append(only[0])
    for c in candidates:
        if c.is_file():
            return c
    here = Path(name) if Path(name).is_absolute() else (spec_dir or Path.cwd()) / name
    if "/" in name and here.is_dir():   # find_chisel_yaml took those with a chisel.yaml
        raise SpecError(f"distro {name!r} is a directory with no chisel.yaml, so not a "
                        "chisel-releases checkout of a release: check out a release branch "
                        "(e.g. git checkout ubuntu-24.04; the main branch has none) or name "
                        "a distro such as debian/bookworm.")
    raise SpecError(f"unknown distro {name!r}." + did_you_mean(name, available_distros())
                    + " Known: " + ", ".join(available_distros()) + ".")


def load_distro(name: str, spec_dir: Path | None = None) -> Distro:
    from assembler.distro.chisel import chisel_distro, find_chisel_yaml

    chisel_yaml = find_chisel_yaml(name, spec_dir)
    if chisel_yaml is not None:
        return chisel_distro(chisel_yaml)
    path = find_distro(name, spec_dir)
    _, text = compose_yaml(path, "distro definition")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:   # a tag such as !foo: the text was YAML, the value is not
        raise SpecError(f"{path}: malformed distro definition "
                        f"({getattr(e, 'problem', None) or e}).") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a distro definition is a mapping with family, release and "
                        "archives.")
    base = path.parent

    def strings(value: object, what: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SpecError(f"{path}: {what} must be a list of strings, not {value!r}.")
        return list(value)

    try:
        archives = []
        if not isinstance(data["archives"], list):
            raise SpecError(f"{path}: archives must be a list of archive mappings.")
        for a in data["archives"]:
            if not isinstance(a, dict):
                raise SpecError(f"{path}: each archive must be a mapping (name, suites, keys, "
                                f"...), not {a!r}.")
            files = [(base / k).resolve() for k in strings(a.get("keys", []),
                                                            f"keys of {a['name']!r}")]
            for k in files:
                if not k.is_file():
                    raise SpecError(f"{path}: archive {a['name']!r} names key {k}, "
                                    "which does not exist.")
            components = strings(a.get("components", ["main"]), "components")
            archives.append(Archive(
                name=a["name"], suites=strings(a["suites"], f"suites of {a['name']!r}"),
                components=components,
                available_components=strings(a.get("available-components", components),
                                             "available-components"),
                keys=list[Path | bytes](files), host_suite=a.get("host-suite", ".*"),
                host_path=a.get("host-path", ""), url=a.get("url"),
                archs=strings(a["archs"], f"archs of {a['name']!r}") if "archs" in a else None,
                key_urls=strings(a.get("key-urls", []), f"key-urls of {a['name']!r}")))
            if not files and not archives[-1].key_urls:
                raise SpecError(f"{path}: archive {a['name']!r} names no keys.")
        slices = data.get("slices")
        if slices is not None and not isinstance(slices, str):
            raise SpecError(f"{path}: slices must be a directory path, not {slices!r}.")
        family = data["family"]
        fmt = data.get("format", FAMILY_FORMATS.get(family, ""))
        if not isinstance(fmt, str) or not fmt:
            raise SpecError(f"{path}: say which package format family {family!r} uses "
                            "(format: deb or format: apk).")
        return Distro(family=family, release=data["release"], path=path, format=fmt,
                      archives=archives, merged_usr=bool(data.get("merged-usr", False)),
                      slices_dir=(base / slices) if slices else None,
                      extra={k: v for k, v in data.items()
                             if k not in ("family", "release", "archives", "slices",
                                          "format")})
    except KeyError as e:
        raise SpecError(f"{path}: incomplete distro definition (missing {e}).") from None


def with_components(distro: Distro, components: list[str] | None) -> Distro:
    """Apply a spec's `contents.components` choice to every archive that offers them."""
    if not components:
        return distro
    for a in distro.archives:
        unknown = [c for c in components if c not in a.available_components]
        if unknown:
            raise SpecError(f"component {unknown[0]!r} is not offered by archive {a.name!r} "
                            f"of {distro.family}/{distro.release}; it offers "
                            + ", ".join(a.available_components) + ".")
        a.components = list(components)
    return distro


def suite_matches(archive: Archive, suite: str) -> bool:
    return re.fullmatch(archive.host_suite, suite) is not None

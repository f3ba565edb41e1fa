"""One package format (deb, apk): everything the generic pipeline asks of it.

A distro definition names its format (`format: deb|apk`, or implied by its
family); `format_for` picks the implementation once. Generic modules never
branch on the family: what differs between Debian and Alpine (index loading,
request syntax, resolution rules, lock completion, installing into the tree,
the package database, link-check hints, SBOM identity) lives behind this.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from assembler.errors import SpecError

if TYPE_CHECKING:
    from assembler.cache import Cache
    from assembler.distro.definition import Distro
    from assembler.lock.model import LockedIndex, LockedPackage
    from assembler.packages.installed import Installed
    from assembler.packages.resolution import Resolution, Resolver, Want
    from assembler.packages.universe import IndexLoader, Universe
    from assembler.progress import Progress
    from assembler.rootfs.tree import Tree
    from assembler.spec.document import Spec

# name -> the module whose FORMAT implements it (imported only when used).
FORMATS = {"deb": "assembler.debian.format", "apk": "assembler.alpine.format"}


class PackageFormat(Protocol):
    name: str            # "deb", "apk": the PURL type as well
    file_noun: str       # how people call its files in prose: ".debs", ".apks"
    # Its archives have snapshot archives (<base>/archive/<archive>/<timestamp>/, the
    # layout distro/snapshot.py speaks), so a lock can outlive the mirror's pool.
    has_snapshots: bool

    def index_loader(self, distro: Distro, mirrors: dict[str, str], cache: Cache,
                     offline: bool, progress: Progress,
                     snapshots: dict[str, str] | None = None) -> IndexLoader:
        """Loads (and verifies, and caches) one Universe per architecture. `snapshots`:
        archive name -> the snapshot timestamp its mirror URL points into."""
        ...

    def wants(self, spec: Spec) -> list[Want]:
        """The spec's whole-package requests in this format's syntax (slices are not)."""
        ...

    def resolver(self, universe: Universe, wants: list[Want], exclude: set[str],
                 include_essential: bool, prefer: dict[str, str] | None) -> Resolver:
        ...

    def slice_picker(self, universe: Universe, pins: list[Want], prefer: dict[str, str],
                     where: str) -> Callable[[str], object | None]:
        """name -> the candidate Package for a sliced package (slices carry no Depends)."""
        ...

    def complete(self, loader: IndexLoader, arch: str, resolution: Resolution) -> None:
        """Fill in what the lock needs but the index does not say."""
        ...

    def reads_package_file(self, cache: Cache, sha256: str) -> bool:
        """Will install() read this cached package file's bytes? (Then fetching hashes
        the cached copy first, so a damaged one is fetched again.)"""
        ...

    def install(self, spec: Spec, packages: list[LockedPackage], files: Mapping[str, Path],
                distro: Distro, arch: str, cache: Cache, progress: Progress,
                lock_file: str) -> tuple[Tree, list[str]]:
        """The packages' files in a new Tree, plus the package database; warnings."""
        ...

    def is_database(self, path: str) -> bool:
        """Is this image path (no leading slash) part of the format's package database?"""
        ...

    def read_installed(self, files: dict[str, bytes]) -> tuple[list[Installed], list[str]]:
        """From an image's database files (path -> bytes, the paths is_database chose):
        the packages installed, and which databases were read (inspect, diff)."""
        ...

    def providers(self, distro: Distro, mirrors: dict[str, str], cache: Cache, arch: str,
                  offline: bool) -> Callable[[str], str | None] | None:
        """What package would provide a missing file (link-check hints), if it knows."""
        ...

    # -- identity: os-release and SBOMs
    version_file: str    # the distro's version file in the image, e.g. "etc/debian_version"

    def release_version(self, distro: Distro, indexes: list[LockedIndex]) -> str:
        """The full release (12.15, 3.21.3) the lock's signed indexes name; "" if none."""
        ...

    def distro_qualifier(self, os_id: str, version_id: str) -> str:
        """The PURL `distro` qualifier as scanners spell it (debian-12, 3.21.3)."""
        ...

    def package_db(self, tree: Tree) -> PackageDb:
        """The image's package database, read for SBOM facts."""
        ...


class PackageDb(Protocol):
    def has(self, name: str, version: str) -> bool:
        """Whether the database lists this package at this version."""
        ...

    def package_facts(self, name: str) -> tuple[str, str]:
        """(supplier or "", SPDX licence expression or NOASSERTION)."""
        ...

    def package_files(self, name: str) -> list[str]:
        """The paths the image has of a (sliced) package, when the database lists them."""
        ...


def format_for(distro: Distro) -> PackageFormat:
    module = FORMATS.get(distro.format)
    if module is None:
        raise SpecError(f"{distro.path}: package format {distro.format!r} is not supported "
                        "(known: " + ", ".join(sorted(FORMATS)) + ").")
    return importlib.import_module(module).FORMAT


def all_formats() -> list[PackageFormat]:
    """Every format, for reading an image whose format is not known (inspect)."""
    return [importlib.import_module(FORMATS[name]).FORMAT for name in sorted(FORMATS)]

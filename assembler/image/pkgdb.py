"""The package databases an image carries, put together: who installed what, which files.

Each package format reads its own database (dpkg's status.d or status, apk's
installed: PackageFormat.read_installed); chisel's manifest.wall adds the
slices. Whatever is present is read, so an image of unknown origin works. A
file's owners are its slices where a chisel manifest names them, else its
packages.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from assembler.packages.format import all_formats
from assembler.packages.installed import Installed
from assembler.slices.manifest import FILENAME, read_manifest

MAX_FILE = 32 << 20     # a database file larger than this is not read (bounded memory)
MAX_TOTAL = 256 << 20   # nor any once this much has been kept


def is_database(path: str) -> bool:
    """Is this image path (no leading slash) a package database file inspect reads?"""
    return posixpath.basename(path) == FILENAME or \
        any(f.is_database(path) for f in all_formats())


@dataclass
class Database:
    packages: dict[str, Installed] = field(default_factory=dict)
    owners: dict[str, set[str]] = field(default_factory=dict)   # path -> packages or slices
    sources: list[str] = field(default_factory=list)            # database files read


def read_databases(files: dict[str, bytes]) -> Database:
    """`files`: image path -> contents, for the paths is_database() chose."""
    db = Database()
    for f in all_formats():
        packages, sources = f.read_installed({p: d for p, d in files.items()
                                              if f.is_database(p)})
        db.sources += sources
        for pkg in packages:
            db.packages[pkg.name] = pkg
            for path in pkg.files:
                db.owners.setdefault(path, set()).add(pkg.name)
    for path in sorted(p for p in files if posixpath.basename(p) == FILENAME):
        manifest = read_manifest(files[path])
        if manifest is None:
            continue
        db.sources.append(path)
        sliced, owners = manifest
        for name, (version, arch, slices) in sliced.items():
            db.packages.setdefault(name, Installed(name, version, arch)).slices = slices
        db.owners.update(owners)
    db.sources.sort()
    return db

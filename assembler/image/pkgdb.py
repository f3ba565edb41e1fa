"""The package databases an image carries, read back: who installed what, and which files.

dpkg's status.d (distroless and ours: one control paragraph per package, plus
<pkg>.md5sums), dpkg's status with info/<pkg>.list (a Debian system), apk's
lib/apk/db/installed and chisel's manifest.wall (slices and the paths each
one put in the image). Whatever is present is read; a file's owners are its
slices where a chisel manifest names them, else its packages.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field

import zstandard

from assembler.alpine.installed import parse_installed

STATUS_D = "var/lib/dpkg/status.d/"
STATUS = "var/lib/dpkg/status"
DPKG_INFO = "var/lib/dpkg/info/"
APK_DB = "lib/apk/db/installed"
CHISEL = "manifest.wall"
MAX_FILE = 32 << 20     # a database file larger than this is not read (bounded memory)
MAX_TOTAL = 256 << 20   # nor any once this much has been kept
MAX_MANIFEST = 256 << 20  # a decompressed chisel manifest


def is_database(path: str) -> bool:
    """Is this image path a package database file whose contents are needed?"""
    return (path.startswith(STATUS_D) or path in (STATUS, APK_DB)
            or path.startswith(DPKG_INFO) and path.endswith(".list")
            or posixpath.basename(path) == CHISEL)


@dataclass
class Installed:
    name: str
    version: str
    arch: str
    installed_size: int | None = None   # bytes, as the database states it
    slices: list[str] | None = None     # chisel slices, None for a whole package
    files: list[str] = field(default_factory=list)


@dataclass
class Database:
    packages: dict[str, Installed] = field(default_factory=dict)
    owners: dict[str, set[str]] = field(default_factory=dict)   # path -> packages or slices
    sources: list[str] = field(default_factory=list)            # database files read

    def own(self, path: str, owner: str) -> None:
        self.owners.setdefault(path.strip("/"), set()).add(owner)


def _paragraphs(text: str) -> list[dict[str, str]]:
    out, fields, key = [], {}, ""
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if fields:
                out.append(fields)
            fields, key = {}, ""
        elif line[0] in " \t":
            if key:
                fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
    return out


def _kib(value: str | None) -> int | None:
    return int(value) * 1024 if value and value.isdigit() else None


def _dpkg(db: Database, fields: dict[str, str]) -> Installed | None:
    name = fields.get("package")
    if not name or "not-installed" in fields.get("status", "") or \
            "config-files" in fields.get("status", ""):
        return None
    pkg = Installed(name, fields.get("version", ""), fields.get("architecture", ""),
                    _kib(fields.get("installed-size")))
    db.packages[name] = pkg
    return pkg


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def read_databases(files: dict[str, bytes]) -> Database:
    """`files`: image path -> contents, for the paths is_database() chose."""
    db = Database()
    for path in sorted(files):
        data = files[path]
        if path.startswith(STATUS_D) and not path.endswith(".md5sums"):
            for fields in _paragraphs(_text(data)):
                pkg = _dpkg(db, fields)
                lists = files.get(path + ".md5sums")
                if pkg is not None and lists is not None:
                    for line in _text(lists).splitlines():
                        _, _, owned = line.partition("  ")
                        if owned:
                            pkg.files.append(owned.strip("/"))
            if STATUS_D.rstrip("/") not in db.sources:
                db.sources.append(STATUS_D.rstrip("/"))
        elif path == STATUS:
            for fields in _paragraphs(_text(data)):
                pkg = _dpkg(db, fields)
                if pkg is None:
                    continue
                lists = files.get(f"{DPKG_INFO}{pkg.name}.list") or \
                    files.get(f"{DPKG_INFO}{pkg.name}:{pkg.arch}.list") or b""
                pkg.files += [p.strip("/") for p in _text(lists).splitlines() if p.strip("/")]
            db.sources.append(path)
        elif path == APK_DB:
            try:
                installed = parse_installed(_text(data))
            except ValueError:
                continue    # not a database apk could read either: report no packages
            for ip in installed:
                r = ip.record
                db.packages[r.name] = Installed(r.name, r.version, r.arch, r.installed_size,
                                                files=ip.paths())
            db.sources.append(path)
    for pkg in db.packages.values():
        for p in pkg.files:
            db.own(p, pkg.name)
    for path in sorted(p for p in files if posixpath.basename(p) == CHISEL):
        if _chisel(db, files[path]):
            db.sources.append(path)
    return db


def _chisel(db: Database, blob: bytes) -> bool:
    """Slices from a chisel manifest: they replace package owners for the paths they list."""
    try:
        # A stream read bounded by what we take, whatever size the frame header claims.
        with zstandard.ZstdDecompressor().stream_reader(blob) as reader:
            text = reader.read(MAX_MANIFEST + 1)
        if len(text) > MAX_MANIFEST:
            return False
        entries = [json.loads(line) for line in text.decode().splitlines() if line.strip()]
    except (zstandard.ZstdError, ValueError, UnicodeDecodeError):
        return False
    slices: dict[str, list[str]] = {}
    sliced: dict[str, set[str]] = {}
    for e in entries:
        if not isinstance(e, dict):
            continue
        if e.get("kind") == "package" and isinstance(e.get("name"), str):
            pkg = db.packages.setdefault(e["name"], Installed(
                e["name"], str(e.get("version", "")), str(e.get("arch", ""))))
            pkg.slices = pkg.slices or []
        elif e.get("kind") == "slice" and isinstance(e.get("name"), str):
            package, _, part = e["name"].partition("_")
            slices.setdefault(package, []).append(part)
        elif e.get("kind") == "path" and isinstance(e.get("path"), str):
            names = [s for s in e.get("slices", []) if isinstance(s, str)]
            sliced[e["path"].strip("/")] = set(names)
    for package, parts in slices.items():
        if package in db.packages:
            db.packages[package].slices = sorted(parts)
    for path, names in sliced.items():
        db.owners[path] = names
    return True

"""What an SBOM says about one platform's image: the document model, from the lock and
the image tree, that the SPDX and CycloneDX writers serialize.

The lock gives what was chosen and why (versions, the package files' sha256, slices,
the reasons that become DEPENDS_ON); the tree gives what the image itself says (its
os-release, each package's control or apk record: supplier and licence). Nothing is
read from the clock or the machine: the same spec and lock give the same model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from urllib.parse import quote

from assembler.alpine.installed import parse_installed
from assembler.debian.copyright import MAX_COPYRIGHT, license_expression, spdx_expression
from assembler.errors import SpecError
from assembler.rootfs.tree import Tree

NOASSERTION = "NOASSERTION"
# A package database record is a few KB; a bigger one is not ours to parse.
MAX_RECORD = 1 << 20


@dataclass(frozen=True)
class PackageFile:
    path: str                   # absolute, as in the image
    sha256: str
    sha1: str


@dataclass
class SbomPackage:
    name: str
    version: str
    arch: str
    source: str                 # the source package (Debian) or origin (Alpine)
    supplier: str               # "Name <mail>" from the package, or "" when it names none
    license: str                # an SPDX expression, or NOASSERTION
    purl: str
    sha256: str                 # of the .deb/.apk file, from the lock
    filename: str               # archive-relative path of that file
    slices: list[str] = field(default_factory=list)
    files: list[PackageFile] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)   # names of packages in the image


@dataclass
class Sbom:
    name: str                   # the image's name (the spec's stem)
    digest: str                 # the platform manifest's digest: what is described
    arch: str
    os_id: str                  # os-release ID: "debian", "alpine" ("" when the image has none)
    os_version: str             # the full release: "12.15", "3.21.3"
    os_name: str                # PRETTY_NAME
    created: int                # SOURCE_DATE_EPOCH
    tool: str                   # "assembler-0.1.0"
    packages: list[SbomPackage]


def os_release(tree: Tree) -> dict[str, str]:
    for path in ("etc/os-release", "usr/lib/os-release"):
        entry = tree.resolve(path)
        if entry is not None and entry.kind == "file" and entry.size <= MAX_RECORD:
            out = {}
            for line in tree.read(entry.path).decode("utf-8", "replace").splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    out[key.strip()] = value.strip().strip('"')
            return out
    return {}


def _read(tree: Tree, path: str, limit: int = MAX_RECORD) -> bytes | None:
    entry = tree.resolve(path)
    if entry is None or entry.kind != "file" or entry.size > limit:
        return None
    return tree.read(entry.path)


def _control(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        if line and line[0] not in " \t" and ":" in line:
            k, _, v = line.partition(":")
            out[k.strip().lower()] = v.strip()
    return out


def purl(kind: str, namespace: str, name: str, version: str, arch: str, distro: str) -> str:
    """Package URL as Syft and Trivy spell it: qualifiers sorted, version %-encoded."""
    q = quote(version, safe=".-_~")
    return f"pkg:{kind}/{namespace}/{quote(name, safe='.-_~')}@{q}?arch={quote(arch)}" + \
        (f"&distro={quote(distro)}" if distro else "")


class _Debian:
    kind, namespace = "deb", "debian"

    def __init__(self, tree: Tree, osr: dict[str, str]) -> None:
        self.tree = tree
        vid = osr.get("VERSION_ID", "")
        self.distro = f"{osr.get('ID', 'debian')}-{vid}" if vid else ""

    def facts(self, name: str) -> tuple[str, str]:
        record = _read(self.tree, f"var/lib/dpkg/status.d/{name}")
        supplier = _control(record).get("maintainer", "") if record else ""
        copyright_ = _read(self.tree, f"usr/share/doc/{name}/copyright", MAX_COPYRIGHT)
        expr = license_expression(copyright_) if copyright_ is not None else None
        return supplier, expr or NOASSERTION

    def files(self, name: str) -> list[str]:
        data = _read(self.tree, f"var/lib/dpkg/status.d/{name}.md5sums", 64 << 20)
        if not data:
            return []
        return sorted(line.split("  ", 1)[1] for line in
                      data.decode("utf-8", "surrogateescape").splitlines() if "  " in line)


class _Alpine:
    kind, namespace = "apk", "alpine"

    def __init__(self, tree: Tree, osr: dict[str, str]) -> None:
        self.distro = osr.get("VERSION_ID", "")
        data = _read(tree, "lib/apk/db/installed", 256 << 20)
        installed = parse_installed(data.decode("utf-8", "replace")) if data else []
        self.records = {p.record.name: p.record for p in installed}

    def facts(self, name: str) -> tuple[str, str]:
        r = self.records.get(name)
        if r is None:
            return "", NOASSERTION
        # apk's license field is SPDX already (abuild checks it); an empty one says nothing.
        return r.maintainer, spdx_expression(r.license) or NOASSERTION

    def files(self, name: str) -> list[str]:
        return []


def describe(name: str, digest: str, arch: str, family: str, packages: list[dict],
             tree: Tree, created: int, tool: str) -> Sbom:
    """The SBOM model of one platform's image."""
    osr = os_release(tree)
    reader: _Debian | _Alpine
    if family == "alpine":
        reader = _Alpine(tree, osr)
    elif family == "debian":
        reader = _Debian(tree, osr)
    else:
        raise SpecError(f"no SBOM support for the {family!r} family.")
    version_file = _read(tree, "etc/debian_version" if family == "debian"
                         else "etc/alpine-release")
    os_version = (version_file.decode("utf-8", "replace").strip() if version_file else "") \
        or osr.get("VERSION_ID", "")
    names = {p["name"] for p in packages}
    out = []
    for p in packages:
        supplier, license_ = reader.facts(p["name"])
        pkg = SbomPackage(
            name=p["name"], version=p["version"], arch=p["arch"],
            source=(p.get("source") or p.get("origin") or p["name"]).split(" ")[0],
            supplier=supplier, license=license_,
            purl=purl(reader.kind, reader.namespace, p["name"], p["version"], p["arch"],
                      reader.distro),
            sha256=p["sha256"], filename=p["filename"], slices=list(p.get("slices", [])))
        if pkg.slices:
            pkg.files = [_file(tree, path) for path in reader.files(p["name"])]
        # reason lists who pulled a package in: that package DEPENDS_ON this one.
        out.append(pkg)
    by_name = {p.name: p for p in out}
    for p in packages:
        for r in p["reason"]:
            who = r.partition("_")[0] if r not in names else r
            if who in by_name and who != p["name"] and p["name"] not in by_name[who].depends_on:
                by_name[who].depends_on.append(p["name"])
    for p in out:
        p.depends_on.sort()
    return Sbom(name=name, digest=digest, arch=arch, os_id=osr.get("ID", ""),
                os_version=os_version, os_name=osr.get("PRETTY_NAME", ""), created=created,
                tool=tool, packages=sorted(out, key=lambda p: p.name))


def _file(tree: Tree, path: str) -> PackageFile:
    entry = tree.get(path.lstrip("/"))
    data = tree.read(entry.path) if entry is not None and entry.kind == "file" else b""
    return PackageFile("/" + path.lstrip("/"), hashlib.sha256(data).hexdigest(),
                       hashlib.sha1(data, usedforsecurity=False).hexdigest())

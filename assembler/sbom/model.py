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

from assembler.lock.model import LockedPackage
from assembler.packages.format import PackageFormat
from assembler.rootfs.tree import Tree, read_small


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
        data = read_small(tree, path)
        if data is not None:
            out = {}
            for line in data.decode("utf-8", "replace").splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    out[key.strip()] = value.strip().strip('"')
            return out
    return {}


def purl(kind: str, namespace: str, name: str, version: str, arch: str, distro: str) -> str:
    """Package URL as Syft and Trivy spell it: qualifiers sorted, version %-encoded."""
    q = quote(version, safe=".-_~")
    return f"pkg:{kind}/{namespace}/{quote(name, safe='.-_~')}@{q}?arch={quote(arch)}" + \
        (f"&distro={quote(distro)}" if distro else "")


def describe(name: str, digest: str, arch: str, fmt: PackageFormat,
             packages: list[LockedPackage],
             tree: Tree, created: int, tool: str) -> Sbom:
    """The SBOM model of one platform's image."""
    osr = os_release(tree)
    os_id = osr.get("ID", "")
    db = fmt.package_db(tree)
    qualifier = fmt.distro_qualifier(os_id, osr.get("VERSION_ID", ""))
    version_file = read_small(tree, fmt.version_file)
    os_version = (version_file.decode("utf-8", "replace").strip() if version_file else "") \
        or osr.get("VERSION_ID", "")
    names = {p.name for p in packages}
    out = []
    for p in packages:
        supplier, license_ = db.package_facts(p.name)
        pkg = SbomPackage(
            name=p.name, version=p.version, arch=p.arch,
            source=(p.source or p.name).split(" ")[0], supplier=supplier, license=license_,
            purl=purl(fmt.name, os_id or fmt.name, p.name, p.version, p.arch, qualifier),
            sha256=p.sha256, filename=p.filename, slices=list(p.slices or []))
        if pkg.slices:
            pkg.files = [_file(tree, path) for path in db.package_files(p.name)]
        out.append(pkg)
    by_name = {p.name: p for p in out}
    # A lock reason names who pulled a package in: that package DEPENDS_ON this one
    # (a slice name, pkg_slice, stands for its package).
    for p in packages:
        for r in p.reason:
            who = r if r in names else r.partition("_")[0]
            if who in by_name and who != p.name and p.name not in by_name[who].depends_on:
                by_name[who].depends_on.append(p.name)
    for made in out:
        made.depends_on.sort()
    return Sbom(name=name, digest=digest, arch=arch, os_id=os_id, os_version=os_version,
                os_name=osr.get("PRETTY_NAME", ""), created=created, tool=tool,
                packages=sorted(out, key=lambda p: p.name))


def _file(tree: Tree, path: str) -> PackageFile:
    entry = tree.get(path.lstrip("/"))
    sha256, sha1 = hashlib.sha256(), hashlib.sha1(usedforsecurity=False)
    if entry is not None and entry.kind == "file":
        # Streamed: a JRE's lib/modules alone is 120 MB.
        with tree.open_entry(entry) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                sha256.update(chunk)
                sha1.update(chunk)
    return PackageFile("/" + path.lstrip("/"), sha256.hexdigest(), sha1.hexdigest())

"""SBOM files beside an image: their names, writing them, and reading them back as
push attachments.

`image.tar` gets `image.spdx.json` and `image.cdx.json`; a multi-arch image gets one
pair per platform, `image.amd64.spdx.json`. Each document names the platform manifest
it describes, and push attaches it only to that manifest: a stale SBOM (from an
earlier build) is refused, never attached to an image it does not describe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from assembler import __version__
from assembler.cache import atomic_write
from assembler.errors import AssemblerError, SpecError
from assembler.lock.model import Lock, LockedPackage
from assembler.packages.format import PackageFormat
from assembler.rootfs.tree import Tree
from assembler.sbom.cyclonedx import MEDIA_TYPE as CYCLONEDX_TYPE
from assembler.sbom.cyclonedx import cyclonedx_document
from assembler.sbom.model import describe
from assembler.sbom.spdx import MEDIA_TYPE as SPDX_TYPE
from assembler.sbom.spdx import spdx_document

FORMATS = {"spdx": (".spdx.json", SPDX_TYPE, spdx_document),
           "cyclonedx": (".cdx.json", CYCLONEDX_TYPE, cyclonedx_document)}
MAX_SBOM = 64 << 20
TOOL = f"assembler-{__version__}"


@dataclass(frozen=True)
class Attachment:
    """One SBOM to push as a referrer of `subject` (a platform manifest digest)."""

    subject: str
    artifact_type: str
    data: bytes
    path: Path


def sbom_path(output: Path, fmt: str, arch: str, multi: bool) -> Path:
    stem = output.name.removesuffix(".tar") if output.suffix == ".tar" else output.name
    return output.with_name(stem + (f".{arch}" if multi else "") + FORMATS[fmt][0])


def render(formats: list[str], name: str, digest: str, arch: str, fmt: PackageFormat,
           packages: list[LockedPackage], tree: Tree, created: int) -> dict[str, bytes]:
    """The documents of one platform's image, by format."""
    if not formats:
        return {}
    model = describe(name, digest, arch, fmt, packages, tree, created, TOOL)
    return {f: FORMATS[f][2](model) for f in formats}


def write_all(output: Path, documents: dict[str, dict[str, bytes]]) -> list[Path]:
    """Write {platform: {format: bytes}} beside `output`; returns the paths. Files are
    named by the OCI platform's tag suffix (amd64, arm64, armv7), not the distro's arch
    names, so push finds them from the image alone."""
    multi = len(documents) > 1
    written = []
    for suffix, docs in sorted(documents.items()):
        for fmt, data in docs.items():
            path = sbom_path(output, fmt, suffix, multi)
            try:
                atomic_write(path, data)
            except OSError as e:
                raise AssemblerError(f"writing {path} failed ({e.strerror or e}).") from None
            written.append(path)
    return written


def described_digest(data: bytes, fmt: str, path: Path) -> str:
    try:
        doc = json.loads(data)
        if fmt == "spdx":
            return next(p["versionInfo"] for p in doc["packages"]
                        if p.get("SPDXID") == "SPDXRef-Image")
        return str(doc["metadata"]["component"]["version"])
    except (ValueError, KeyError, TypeError, StopIteration):
        raise SpecError(f"{path}: not an SBOM assemble wrote (no described image digest); "
                        "remove it or rebuild.") from None


def attachments(image: Path) -> list[Attachment]:
    """The SBOM files beside `image`, one pair per platform manifest it holds."""
    from assembler.image.reader import open_image

    with open_image(image) as f:
        platforms = {_suffix(i.platform): i.digest for i in f.images() if i.digest}
    out = []
    multi = len(platforms) > 1
    for arch, digest in sorted(platforms.items()):
        for fmt, (_, media_type, _) in FORMATS.items():
            path = sbom_path(image, fmt, arch, multi)
            if not path.is_file():
                continue
            if path.stat().st_size > MAX_SBOM:
                raise SpecError(f"{path} is larger than {MAX_SBOM >> 20} MB; not an SBOM "
                                "assemble wrote.")
            data = path.read_bytes()
            described = described_digest(data, fmt, path)
            if described != digest:
                raise SpecError(f"{path} describes {described}, not the image's {arch} "
                                f"manifest {digest}: it is from another build. Run "
                                f"'assemble sbom {image}' or rebuild.")
            out.append(Attachment(digest, media_type, data, path))
    return out


def _suffix(platform: str) -> str:
    """"linux/arm/v7" -> "armv7", "linux/arm64/v8" -> "arm64": oci.Platform.tag_suffix."""
    parts = platform.split("/")
    arch = parts[1] if len(parts) > 1 else ""
    return arch + parts[2] if arch == "arm" and len(parts) > 2 else arch


def for_image(image: Path, lock: Lock, fmt: PackageFormat, name: str, formats: list[str],
              created: int, output: Path | None = None) -> list[Path]:
    """Write the SBOMs of an image already built from `lock` (`assemble sbom`)."""
    from assembler.image.oci import platform_for
    from assembler.image.reader import open_image

    documents: dict[str, dict[str, bytes]] = {}
    with open_image(image) as f:
        for im in f.images():
            if not im.digest:
                raise SpecError(f"{image} is a docker-save archive without OCI manifests; "
                                "an SBOM names the manifest it describes. Use the image "
                                "'assemble build' wrote.")
            arch = next((a for a in lock.archs if platform_for(a).architecture == im.arch),
                        None)
            if arch is None:
                raise SpecError(f"{image} has a {im.platform} image, which the lock has no "
                                "packages for (it has " + ", ".join(lock.archs) + ").")
            packages = lock.archs[arch].packages
            with f.load_tree(im, contents=True) as tree:
                _check_built_from(tree, packages, fmt, image)
                documents[_suffix(im.platform)] = render(formats, name, im.digest, arch, fmt,
                                                         packages, tree, created)
    return write_all(output or image, documents)


def _check_built_from(tree: Tree, packages: list[LockedPackage], fmt: PackageFormat,
                      image: Path) -> None:
    """The image's package database must list what the lock does, or the SBOM would lie."""
    db = fmt.package_db(tree)
    for p in packages:
        if not db.has(p.name, p.version):
            raise SpecError(f"{image} has no {p.name} {p.version} in its package "
                            "database, but the lock does: the image was not built from this "
                            "lock. Rebuild it, or give the spec it was built from.")

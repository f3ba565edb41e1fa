"""The image's OS identity: /usr/lib/os-release, the /etc/os-release link and the
distro's version file (/etc/debian_version, /etc/alpine-release).

Scanners decide which vulnerability feed applies from these files alone; an image
without them is reported as OS "none" and matched against nothing. The base package
(base-files, alpine-release) ships them when it is in the image; otherwise they are
generated from the distro definition's `os-release` template, filled with what the
archive's signed index says (Debian: the Release's Version; Alpine: the APKINDEX
DESCRIPTION or the alpine-release version its index lists), so that the bytes are the
ones the base package would have shipped. A template's `files:` adds the distro's other
identity files (Ubuntu: /etc/lsb-release, which Trivy reads, and /etc/debian_version,
whose text names the Debian base rather than a version).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assembler.distro.definition import Distro
from assembler.errors import IntegrityError, SpecError
from assembler.rootfs.tree import Tree

OS_RELEASE = "usr/lib/os-release"
OS_RELEASE_LINK = "etc/os-release"
ORIGIN = "os-release"


@dataclass(frozen=True)
class Identity:
    """The files that name the OS, as they go into the image."""

    os_release: bytes
    version_file: str            # image path, e.g. "etc/debian_version"; "" for none
    version_text: bytes
    # Set when the lock records no signed version (it predates that): the version
    # file is then left out rather than guessed.
    missing_version: bool = False
    # (image path, bytes) of the template's other files, e.g. ("etc/lsb-release", ...).
    files: tuple[tuple[str, bytes], ...] = ()


# A series that names a release ("12", "24.04", "3.21"); "edge" is a branch, not one.
_SERIES = re.compile(r"\d+(\.\d+)*")


def identity_for(distro: Distro, signed: str) -> Identity | None:
    """The identity a definition's `os-release:` template gives, or None without one.
    `signed` is the full release the lock's signed indexes name ("" when it has none)."""
    template = distro.extra.get("os-release")
    if template is None:
        return None
    if not isinstance(template, dict) or not isinstance(template.get("text"), str):
        raise SpecError(f"{distro.path}: os-release must be a mapping with a 'text' template "
                        "(and optionally 'version-file' and 'files').")
    files = template.get("files") or {}
    if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise SpecError(f"{distro.path}: os-release files must map image paths to text "
                        "templates (e.g. /etc/lsb-release: |...).")
    series = str(distro.extra.get("version", ""))
    version = signed or series
    if _SERIES.fullmatch(series) and version != series and \
            not version.startswith(series + "."):
        raise IntegrityError(
            f"{distro.path} is for release {series}, but the signed index of "
            f"{distro.archives[0].name} {distro.archives[0].suites[0]} says {version}; the "
            "mirror serves another release. Check the mirror or the distro definition.")
    values = {"version": version, "series": series, "codename": distro.release}

    def fill(what: str, text: str) -> bytes:
        try:
            return text.format(**values).encode()
        except (KeyError, IndexError, ValueError) as e:
            raise SpecError(f"{distro.path}: os-release {what} uses an unknown placeholder "
                            f"({e}); known: " + ", ".join("{" + k + "}" for k in values) +
                            ".") from None

    version_file = str(template.get("version-file", "")).lstrip("/") if signed else ""
    return Identity(os_release=fill("text", template["text"]), version_file=version_file,
                    version_text=f"{version}\n".encode() if version_file else b"",
                    missing_version=bool(template.get("version-file")) and not signed,
                    files=tuple((_image_path(distro, p), fill(f"file {p}", t))
                                for p, t in sorted(files.items())))


def _image_path(distro: Distro, path: str) -> str:
    """An absolute, plain image path from a definition; a relative or dotted one is
    refused, since what it names would depend on how it is joined."""
    parts = path.split("/")
    if not path.startswith("/") or any(p in ("", ".", "..") for p in parts[1:]):
        raise SpecError(f"{distro.path}: os-release files: {path!r} is not an absolute path "
                        "without '.', '..' or empty parts.")
    return path.lstrip("/")


def write_identity(tree: Tree, identity: Identity) -> list[str]:
    """Add whichever of the identity files the packages did not ship; return the paths
    written. A path a package shipped is kept as is: that is what the package says."""
    written = []
    if tree.get(OS_RELEASE) is None:
        tree.add_file(OS_RELEASE, identity.os_release, 0o644, origin=ORIGIN)
        written.append(OS_RELEASE)
    if tree.get(OS_RELEASE_LINK) is None:
        tree.add_symlink(OS_RELEASE_LINK, "../" + OS_RELEASE, origin=ORIGIN)
        written.append(OS_RELEASE_LINK)
    if identity.version_file and tree.get(identity.version_file) is None:
        tree.add_file(identity.version_file, identity.version_text, 0o644, origin=ORIGIN)
        written.append(identity.version_file)
    for path, data in identity.files:
        if tree.get(path) is None:
            tree.add_file(path, data, 0o644, origin=ORIGIN)
            written.append(path)
    return written

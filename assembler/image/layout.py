"""An OCI image layout read back (our image tar, or a layout directory), blob bytes exact.

Pushing must send the very bytes that were built: a manifest re-serialized
by a JSON library gets another digest, and then the digest printed by
`assemble build` is not the one in the registry. So documents are never
parsed-and-dumped here; they are returned as stored, after their sha256 and
size were checked against the descriptor that names them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from assembler.errors import AssemblerError, IntegrityError
from assembler.image.store import MAX_DOCUMENT, TarOrDir

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
# Docker's schema 2 types: a layout made by other tools may carry them.
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = (MEDIA_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (MEDIA_MANIFEST, DOCKER_MANIFEST)
# Documents are read into memory; nothing legitimate comes close.


class LayoutError(AssemblerError):
    """The file given to push is not a usable OCI image layout."""

    exit_code = 2


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, str] | None = None

    @classmethod
    def from_json(cls, obj: Any, where: str) -> Descriptor:
        try:
            digest, size = obj["digest"], obj["size"]
            media_type = obj.get("mediaType", "")
        except (KeyError, TypeError):
            raise LayoutError(f"{where}: a descriptor lacks digest or size.") from None
        algo, _, hexdigest = str(digest).partition(":")
        if algo != "sha256" or len(hexdigest) != 64 or not isinstance(size, int) or size < 0:
            raise LayoutError(f"{where}: unsupported descriptor {digest!r} (size {size!r}).")
        return cls(media_type, digest, size, obj.get("platform"))


class Layout(TarOrDir):
    """Read access to one OCI image layout; use `open_layout`."""

    error = LayoutError

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        if not self.has("oci-layout"):
            self.close()
            raise LayoutError(f"{path} is a directory but not an OCI image layout (no "
                              "oci-layout file)." if path.is_dir() else
                              f"{path} holds no OCI image layout (no oci-layout member).")

    def not_a_tar(self, e: Exception) -> str:
        # tarfile lists each decompressor it tried on lines of their own; one is enough.
        reason = str(e) if "\n" not in str(e) else "not a tar archive"
        return (f"{self.path} is not an image tar ({reason}); give the file that 'assemble "
                "build' wrote, or an OCI layout directory.")

    def __enter__(self) -> Layout:
        return self

    # -- blobs -----------------------------------------------------------------------
    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        """A stream of the blob's bytes; the caller verifies the digest while reading."""
        return self.open("blobs/sha256/" + desc.digest.partition(":")[2])

    def read_blob(self, desc: Descriptor) -> bytes:
        """The blob's exact bytes, checked against its descriptor."""
        with self.open_blob(desc) as f:
            data = f.read(desc.size + 1)
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if len(data) != desc.size or got != desc.digest:
            raise IntegrityError(f"{self.path}: blob {desc.digest} has {len(data)} bytes with "
                                 f"digest {got}, not the {desc.size} bytes its descriptor "
                                 "names; the image is damaged, rebuild it.")
        return data

    def document(self, desc: Descriptor) -> tuple[bytes, dict[str, Any]]:
        """A manifest or index: its exact bytes and their parse."""
        if desc.size > MAX_DOCUMENT:
            raise LayoutError(f"{self.path}: {desc.digest} is too large for a manifest.")
        data = self.read_blob(desc)
        try:
            doc = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise LayoutError(f"{self.path}: {desc.digest} is not JSON.") from None
        if not isinstance(doc, dict):
            raise LayoutError(f"{self.path}: {desc.digest} is not a JSON object.")
        return data, doc

    # -- structure -------------------------------------------------------------------
    def top(self) -> Descriptor:
        """What index.json names: one image (all tags must name the same digest)."""
        try:
            index = json.loads(self.read_small("index.json"))
            entries = [Descriptor.from_json(e, f"{self.path}: index.json")
                       for e in index["manifests"]]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            raise LayoutError(f"{self.path}: index.json is not an OCI index.") from None
        digests = {e.digest for e in entries}
        if len(digests) != 1:
            raise LayoutError(f"{self.path}: index.json names {len(digests)} different images; "
                              "push needs exactly one (an image index for several platforms).")
        return entries[0]

    def walk(self, top: Descriptor) -> Iterator[tuple[Descriptor, list[Descriptor]]]:
        """Each manifest reachable from `top` with the blobs it needs (config first).

        Child manifests of an index come before the index itself, which is the
        order a registry must receive them in.
        """
        _, doc = self.document(top)
        media_type = top.media_type or str(doc.get("mediaType", "")) or (
            MEDIA_INDEX if "manifests" in doc else MEDIA_MANIFEST)
        top = replace(top, media_type=media_type)
        where = f"{self.path}: {top.digest}"
        if media_type in INDEX_TYPES:
            for m in doc.get("manifests", []):
                yield from self.walk(Descriptor.from_json(m, where))
            yield top, []
        elif media_type in MANIFEST_TYPES:
            try:
                blobs = [Descriptor.from_json(doc["config"], where)]
                blobs += [Descriptor.from_json(x, where) for x in doc.get("layers", [])]
            except (KeyError, TypeError):
                raise LayoutError(f"{where} is not an image manifest.") from None
            yield top, blobs
        else:
            raise LayoutError(f"{where} has unknown media type {media_type!r}.")


def open_layout(path: Path | str) -> Layout:
    p = Path(path)
    if not p.exists():
        raise LayoutError(f"{p} does not exist; build it first ('assemble build').")
    return Layout(p)

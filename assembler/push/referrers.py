"""Attaching documents (SBOMs) to a pushed image as OCI 1.1 referrers.

Each document becomes an artifact manifest: an image manifest whose
`artifactType` says what it is, whose config is the empty descriptor, whose one
layer is the document, and whose `subject` is the platform manifest it describes.
A registry with the referrers API answers the manifest PUT with `OCI-Subject` and
indexes it itself. One without (docker-registry 2.8) gets the distribution spec's
fallback: an image index tagged `sha256-<subject hex>` listing the referrers,
read, extended and written back, so earlier attachments are kept.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from typing import IO, Any, Protocol

from assembler.errors import AssemblerError
from assembler.image.layout import Descriptor
from assembler.image.oci import MEDIA_INDEX, MEDIA_MANIFEST, canonical_json
from assembler.sbom.files import Attachment

MEDIA_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"


class _Client(Protocol):
    registry: str

    def blob_exists(self, repository: str, digest: str) -> bool: ...
    def upload(self, repository: str, desc: Descriptor, layout: Any,
               progress: Any = None) -> int: ...
    def get_manifest(self, repository: str, reference: str, accept: str) -> bytes | None: ...
    def put_manifest(self, repository: str, reference: str, desc: Descriptor,
                     data: bytes) -> str: ...


class _Blobs:
    """Blobs held in memory, read the way a Layout's are (for Client.upload)."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        return io.BytesIO(self.blobs[desc.digest])


def _descriptor(media_type: str, data: bytes) -> Descriptor:
    return Descriptor(media_type, "sha256:" + hashlib.sha256(data).hexdigest(), len(data))


def artifact_manifest(att: Attachment, subject: Descriptor) -> bytes:
    layer = _descriptor(att.artifact_type, att.data)
    return canonical_json({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "artifactType": att.artifact_type,
        "config": {"mediaType": MEDIA_EMPTY, "digest": _descriptor(MEDIA_EMPTY, EMPTY).digest,
                   "size": len(EMPTY), "data": "e30="},
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest,
                    "size": layer.size}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest,
                    "size": subject.size},
    })


def fallback_tag(subject: str) -> str:
    return subject.replace(":", "-", 1)


def attach(client: _Client, repository: str, attachments: Sequence[Attachment],
           subjects: dict[str, Descriptor], stats: Any) -> list[str]:
    """Push every attachment as a referrer of its subject; returns lines for the log."""
    lines = []
    fallback: dict[str, list[tuple[Descriptor, str]]] = {}
    for att in attachments:
        subject = subjects.get(att.subject)
        if subject is None:
            raise AssemblerError(f"{att.path} describes {att.subject}, which is not a manifest "
                                 "of the image being pushed.")
        manifest = artifact_manifest(att, subject)
        blobs = {d.digest: data for d, data in ((_descriptor(MEDIA_EMPTY, EMPTY), EMPTY),
                                                (_descriptor(att.artifact_type, att.data),
                                                 att.data))}
        for digest, data in blobs.items():
            if not client.blob_exists(repository, digest):
                stats.uploaded_bytes += client.upload(repository, Descriptor(
                    "application/octet-stream", digest, len(data)), _Blobs(blobs))
                stats.uploaded += 1
        desc = _descriptor(MEDIA_MANIFEST, manifest)
        answered = client.put_manifest(repository, desc.digest, desc, manifest)
        stats.manifests += 1
        if answered != att.subject:
            fallback.setdefault(att.subject, []).append((desc, att.artifact_type))
        lines.append(f"attached {att.path.name} to {att.subject[:19]} as {desc.digest[:19]}")
    for digest, added in fallback.items():
        _update_fallback_index(client, repository, digest, added)
        stats.manifests += 1
    return lines


def _update_fallback_index(client: _Client, repository: str, subject: str,
                           added: list[tuple[Descriptor, str]]) -> None:
    tag = fallback_tag(subject)
    current = client.get_manifest(repository, tag, MEDIA_INDEX)
    manifests: list[dict[str, Any]] = []
    if current is not None:
        try:
            manifests = list(json.loads(current)["manifests"])
        except (ValueError, KeyError, TypeError):
            raise AssemblerError(f"{client.registry}/{repository}:{tag} is not an image index; "
                                 "it cannot list the referrers of "
                                 f"{subject}. Delete that tag and push again.") from None
    have = {m.get("digest") for m in manifests if isinstance(m, dict)}
    for desc, artifact_type in added:
        if desc.digest not in have:
            manifests.append({"mediaType": desc.media_type, "digest": desc.digest,
                              "size": desc.size, "artifactType": artifact_type})
    data = canonical_json({"schemaVersion": 2, "mediaType": MEDIA_INDEX,
                           "manifests": manifests})
    client.put_manifest(repository, tag, _descriptor(MEDIA_INDEX, data), data)

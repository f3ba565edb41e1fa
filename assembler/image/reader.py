"""Any image on disk read back as a filesystem: its layers applied in order into a Tree.

Accepts what `assemble build` writes (an OCI layout that is also a `docker
load` archive, as a tar or a directory), other OCI archives and layouts
(skopeo, buildah, `docker save` since Docker 25) and the older `docker
save` format (manifest.json and per-layer directories). An OCI index yields
one image per platform; attestation manifests (platform unknown/unknown)
are skipped.

Layers are applied as overlayfs would: an upper entry replaces a lower one
of another kind, `.wh.NAME` deletes NAME from lower layers and
`.wh..wh..opq` hides everything lower layers put in its directory.

The tree is for inspection (the link check), not for writing an image:
only ELF files and ld.so configuration keep their contents, so a large
image costs one pass of decompression and little else.

An image on disk is the user's input, not ours: every tar in it (the archive
and each layer) is read within boundedtar's limits, as a package's tars are,
and a JSON document within MAX_DOCUMENT. A refusal names the image and the
layer (exit 2).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import zstandard

from assembler.errors import AssemblerError
from assembler.fetch.boundedtar import Budget, open_stream
from assembler.image.layout import INDEX_TYPES, Descriptor
from assembler.image.store import TarOrDir
from assembler.linkcheck.elf import MAGIC
from assembler.rootfs.tree import Tree, normalize

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
# Contents kept besides ELF files: what the link check reads as text.
_KEEP_TEXT = ("etc/ld.so.conf",)


class ImageError(AssemblerError):
    """The path is not a readable image (archive or layout)."""

    exit_code = 2


@dataclass(frozen=True)
class PlatformImage:
    """One image (one platform) inside the file: where its layers are."""

    platform: str  # "linux/amd64", "linux/arm64/v8"; "" when the file does not say
    layers: tuple[tuple[str, str | None], ...]  # (member name, sha256 digest to verify or None)
    config: str = ""  # member name of the image configuration
    digest: str = ""  # the manifest's, when the file is an OCI layout

    @property
    def arch(self) -> str:
        parts = self.platform.split("/")
        return parts[1] if len(parts) > 1 else ""


class ImageFile(TarOrDir):
    """Read access to an image archive or layout directory; use `open_image`."""

    error = ImageError

    def not_a_tar(self, e: Exception) -> str:
        return (f"{self.path} is not an image: not a readable tar archive (truncated, or "
                "another kind of file) nor an OCI layout directory.")

    def missing(self, name: str) -> str:
        return f"{self.path}: {name} is missing; the image is incomplete."

    def __enter__(self) -> ImageFile:
        return self

    def _json(self, name: str) -> Any:
        data = self.read_small(name)
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise ImageError(f"{self.path}: {name} is not a JSON document.") from None

    # -- structure -------------------------------------------------------------
    def images(self) -> list[PlatformImage]:
        """Every image in the file, one per platform, in the order the file lists them."""
        if self.has("index.json"):
            found = self._oci()
        elif self.has("manifest.json"):
            found = self._docker()
        else:
            raise ImageError(f"{self.path} is not an image: it has neither index.json (OCI) "
                             "nor manifest.json (docker save).")
        if not found:
            raise ImageError(f"{self.path} holds no image manifest.")
        return found

    def images_for(self, arch: str | None) -> list[PlatformImage]:
        """images(), or only the one for `arch` (amd64, or a platform like linux/arm64/v8)."""
        images = self.images()
        if not arch:
            return images
        wanted = [i for i in images if arch in (i.arch, i.platform)]
        if not wanted:
            have = ", ".join(i.platform or "unknown" for i in images)
            raise ImageError(f"{self.path} has no {arch} image; it has {have}.")
        return wanted

    def _oci(self) -> list[PlatformImage]:
        index = self._json("index.json")
        out: dict[str, PlatformImage] = {}
        try:
            todo = [Descriptor.from_json(d, f"{self.path}: index.json")
                    for d in index["manifests"]]
        except (KeyError, TypeError):
            raise ImageError(f"{self.path}: index.json is not an OCI index.") from None
        seen: set[str] = set()
        while todo:
            desc = todo.pop(0)
            if desc.digest in seen:
                continue  # several tags for one image
            seen.add(desc.digest)
            doc = self._json(_blob(desc.digest))
            where = f"{self.path}: {desc.digest}"
            if not isinstance(doc, dict):
                raise ImageError(f"{where} is not a JSON object.")
            if desc.media_type in INDEX_TYPES or "manifests" in doc:
                todo += [Descriptor.from_json(d, where) for d in doc.get("manifests", [])]
                continue
            platform = _platform(desc.platform) if desc.platform else ""
            if platform.startswith("unknown/"):
                continue  # buildx attestations: not a filesystem
            try:
                config = Descriptor.from_json(doc["config"], where)
                layers = tuple((_blob(d.digest), d.digest) for d in
                               (Descriptor.from_json(x, where) for x in doc.get("layers", [])))
            except (KeyError, TypeError):
                raise ImageError(f"{where} is not an image manifest.") from None
            if not platform:
                platform = _platform(self._json(_blob(config.digest)))
            out[desc.digest] = PlatformImage(platform, layers, _blob(config.digest),
                                             desc.digest)
        return list(out.values())

    def _docker(self) -> list[PlatformImage]:
        manifest = self._json("manifest.json")
        out: dict[str, PlatformImage] = {}
        try:
            for m in manifest:
                config = str(m["Config"])
                if config not in out:
                    layers = tuple((str(layer), None) for layer in m["Layers"])
                    out[config] = PlatformImage(_platform(self._json(config)), layers, config)
        except (KeyError, TypeError):
            raise ImageError(f"{self.path}: manifest.json is not a docker save manifest.") \
                from None
        return list(out.values())

    def config(self, image: PlatformImage) -> dict[str, Any]:
        """The image configuration document (user, entrypoint, env, history...)."""
        doc = self._json(image.config) if image.config else {}
        return doc if isinstance(doc, dict) else {}

    # -- layers ----------------------------------------------------------------
    def load_tree(self, image: PlatformImage, contents: bool = False) -> Tree:
        """The image's filesystem: its layers applied in order (see the module docstring).
        `contents` keeps every file's bytes (for an SBOM), not only what the link check
        reads."""
        tree = Tree(allow_setuid=True)
        budget = self.budget()
        try:
            for i, (name, digest) in enumerate(image.layers):
                origin = f"layer {i + 1}"
                opaque: list[str] = []
                for info, f in self.layer_members(name, digest, budget=budget):
                    _apply_member(tree, info, f, origin, opaque, contents)
                for directory in opaque:
                    _hide_lower(tree, directory, origin)
        except BaseException:
            tree.close()
            raise
        return tree

    def budget(self) -> Budget:
        """What the layers of one image may hold together (members, bytes of files): what
        reading them keeps in memory or spools grows with it."""
        return Budget(str(self.path), self.limits, ceiling="image", subject="image")

    def layer_members(self, name: str, digest: str | None, stats: LayerStats | None = None,
                      budget: Budget | None = None
                      ) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
        """The tar members of one layer blob in order, decompressed, each with its content
        stream (regular files). The blob's digest is checked once it has been read.
        Members are counted against `budget` (one image's, shared by its layers), or
        against the layer's own."""
        with self.open(name) as raw:
            hashing = _HashingReader(raw)
            buffered = io.BufferedReader(hashing, 1 << 16)
            head = buffered.peek(4)[:4]
            stream: IO[bytes]
            if head[:2] == b"\x1f\x8b":
                stream = cast(IO[bytes], gzip.GzipFile(fileobj=buffered, mode="rb"))
            elif head == b"\x28\xb5\x2f\xfd":
                stream = zstandard.ZstdDecompressor().stream_reader(
                    buffered, read_across_frames=True)
            else:
                stream = buffered
            what = f"{self.path}: layer {name}"
            budget = budget or self.budget()
            budget.what = what   # a refusal names the layer being read
            try:
                with open_stream(stream, what, self.limits, "layer", "image") as tf:
                    for info in tf:
                        budget.admit(info)
                        yield info, tf.extractfile(info) if info.isreg() else None
                    # Read to the end so the digest covers the whole blob.
                    while hashing.read(1 << 20):
                        pass
            except (OSError, EOFError, tarfile.TarError, zstandard.ZstdError) as e:
                # A damaged blob is better reported as such than by what broke first.
                while digest is not None and hashing.read(1 << 20):
                    pass
                _check_digest(self.path, digest, hashing)
                raise ImageError(f"{self.path}: layer {name} is not a readable tar ({e})."
                                 ) from None
            if stats is not None:
                stats.compressed = hashing.count
                stats.digest = f"sha256:{hashing.hexdigest()}"
            _check_digest(self.path, digest, hashing)


def _check_digest(path: Path, digest: str | None, hashing: _HashingReader) -> None:
    if digest is not None and hashing.hexdigest() != digest.partition(":")[2]:
        raise ImageError(f"{path}: layer {digest} does not match its digest; the image is "
                         "damaged.")


@dataclass
class LayerStats:
    compressed: int = 0   # bytes of the blob as stored
    digest: str = ""      # sha256 of the blob as stored


def _blob(digest: str) -> str:
    algo, _, hexdigest = digest.partition(":")
    return f"blobs/{algo}/{hexdigest}"


def _platform(obj: Any) -> str:
    if not isinstance(obj, dict):
        return ""
    parts = [str(obj.get("os", "")), str(obj.get("architecture", ""))]
    if obj.get("variant"):
        parts.append(str(obj["variant"]))
    return "/".join(parts) if all(parts) else ""


class _HashingReader(io.RawIOBase):
    """Passes a stream through, hashing every byte (so a layer is checked while it is read)."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self._sha = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(b))
        self._sha.update(data)
        self.count += len(data)
        b[: len(data)] = data
        return len(data)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


class _Prefixed(io.RawIOBase):
    """`head` followed by the rest of `rest`: a stream that was peeked at."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(b))
        b[: len(data)] = data
        return len(data)


def _apply_member(tree: Tree, info: tarfile.TarInfo, f: IO[bytes] | None, origin: str,
                  opaque: list[str], contents: bool = False) -> None:
    try:
        path = normalize(info.name, origin)
    except AssemblerError:
        return  # '..': nothing an unpacker would write inside the root
    parent, _, base = path.rpartition("/")
    try:
        if base == OPAQUE:
            opaque.append(parent)
            return
        if base.startswith(WHITEOUT):
            hidden = tree.get(posixpath.join(parent, base[len(WHITEOUT):]))
            if hidden is not None and hidden.origin != origin:
                tree.remove(hidden.path)
            return
        existing = tree.get(path)
        if existing is not None and existing.origin != origin and \
                not (existing.kind == "dir" and info.isdir()):
            tree.remove(existing.path)  # an upper layer's entry replaces the lower one
        if info.isreg() and f is not None and not contents:
            head = f.read(len(MAGIC))
            if head == MAGIC or path.startswith(_KEEP_TEXT):
                f = io.BufferedReader(_Prefixed(head, f))
            else:
                info = _empty(info)
                f = io.BytesIO(b"")
        tree.add_tar_member(info, f, origin)
    except AssemblerError:
        # What the tree refuses (a link above the root, a hardlink to nothing)
        # cannot hold a library the loader would find: leave it out.
        return


def _empty(info: tarfile.TarInfo) -> tarfile.TarInfo:
    copy = tarfile.TarInfo(info.name)
    copy.mode, copy.uid, copy.gid, copy.mtime, copy.type = (
        info.mode, info.uid, info.gid, info.mtime, tarfile.REGTYPE)
    return copy


def _hide_lower(tree: Tree, directory: str, origin: str) -> None:
    """What `.wh..wh..opq` in `directory` means: lower layers' entries below it are gone."""
    top = tree.get(directory) if directory else None
    if directory and (top is None or top.kind != "dir"):
        return
    prefix = top.path + "/" if top is not None else ""
    below = [e for e in tree.entries() if e.path.startswith(prefix)]
    # A lower directory that this layer put something into stays (it was re-created).
    keep: set[str] = set()
    for e in below:
        if e.origin == origin:
            parent = e.path.rpartition("/")[0]
            while parent.startswith(prefix):
                keep.add(parent)
                parent = parent.rpartition("/")[0]
    for e in reversed(below):
        if e.origin != origin and e.path not in keep:
            tree.remove(e.path, missing_ok=True)


def open_image(path: Path | str) -> ImageFile:
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p} does not exist.")
    if p.is_dir() and not (p / "oci-layout").is_file() and not (p / "manifest.json").is_file():
        raise ImageError(f"{p} is a directory but not an OCI image layout (no oci-layout file).")
    try:
        return ImageFile(p)
    except PermissionError as e:
        raise ImageError(f"{p} is unreadable ({e.strerror}).") from None

"""OCI image config, manifest and index, and the two on-disk output formats.

JSON is serialized one way only (fixed key order, compact separators, maps
sorted, UTF-8), because every byte feeds a digest: the same inputs must give
the same manifest digest on any machine.

Outputs:

* `write_image_tar`: one tar that is at once an OCI image layout (oci-layout,
  index.json, blobs/sha256/...) and a `docker load` archive (manifest.json
  whose Config and Layers point at the same blobs), so docker, podman and
  skopeo (`oci-archive:` and `docker-archive:`) all read it without copies.
* `write_oci_dir`: the OCI image layout as a directory (umoci, skopeo `oci:`).

One image is referenced directly from index.json; several (multi-arch) go
through an image index blob, whose digest is then *the* image digest, the
one a registry will report after a push.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assembler.cache import atomic_writer
from assembler.errors import AssemblerError, IntegrityError, SpecError
from assembler.image.layer import Layer

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
# What containerd and `docker save` use to carry the full name next to the tag.
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_COPY_CHUNK = 1 << 20


@dataclass(frozen=True, order=True)
class Platform:
    """An OCI platform (Go's GOOS/GOARCH names, plus the ARM variant)."""

    os: str
    architecture: str
    variant: str = ""

    def as_json(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    @property
    def tag_suffix(self) -> str:
        """`amd64`, `arm64`, `armv7`: appended to docker tags in multi-arch archives."""
        if self.architecture == "arm" and self.variant:
            return self.architecture + self.variant
        return self.architecture


# Debian and Alpine architecture names -> OCI platform. arm64 carries variant
# v8 because that is what registries and `docker buildx` publish, and
# runtimes match on it.
_ARCHES: dict[str, tuple[str, str]] = {
    "amd64": ("amd64", ""),
    "x86_64": ("amd64", ""),
    "arm64": ("arm64", "v8"),
    "aarch64": ("arm64", "v8"),
    "armhf": ("arm", "v7"),  # Debian armhf is ARMv7 + VFPv3
    "armv7": ("arm", "v7"),  # Alpine
    "armel": ("arm", "v5"),
    "i386": ("386", ""),
    "x86": ("386", ""),
    "ppc64el": ("ppc64le", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
    "mips64el": ("mips64le", ""),
    "loong64": ("loong64", ""),
    "loongarch64": ("loong64", ""),
}


def platform_for(arch: str, os_name: str = "linux") -> Platform:
    """The OCI platform of a distribution architecture name (Debian's or Alpine's)."""
    try:
        architecture, variant = _ARCHES[arch]
    except KeyError:
        known = ", ".join(sorted(_ARCHES))
        raise SpecError(f"Unknown architecture {arch!r}; known: {known}.") from None
    return Platform(os_name, architecture, variant)


@dataclass
class ImageConfig:
    """The runtime part of the image config (what `docker inspect` shows as Config)."""

    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: Mapping[str, str] | Sequence[str] = field(default_factory=dict)
    working_dir: str = ""
    user: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    # "8080/tcp"; absolute paths. Empty sets (JSON {}) are what the OCI spec gives as values.
    exposed_ports: Sequence[str] = ()
    volumes: Sequence[str] = ()


@dataclass
class Image:
    """One platform's image: its layers (already written) and configuration.

    `created` is the SOURCE_DATE_EPOCH; `history` optionally gives one
    created_by text per layer (defaults to "assembler").
    """

    platform: Platform
    layers: list[Layer]
    config: ImageConfig = field(default_factory=ImageConfig)
    created: int = 0
    annotations: Mapping[str, str] = field(default_factory=dict)
    history: list[str] | None = None


@dataclass(frozen=True)
class Blob:
    """A serialized JSON document and its descriptor fields."""

    media_type: str
    data: bytes
    digest: str
    size: int

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest}
        out["size"] = self.size
        out.update(extra)
        return out


@dataclass(frozen=True)
class BuiltImage:
    image: Image
    config: Blob
    manifest: Blob


def canonical_json(obj: Any) -> bytes:
    """The one serialization used for every document (keys in insertion order)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _blob(media_type: str, obj: Any) -> Blob:
    data = canonical_json(obj)
    return Blob(media_type, data, "sha256:" + hashlib.sha256(data).hexdigest(), len(data))


def iso8601(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sorted_map(m: Mapping[str, str]) -> dict[str, str]:
    return {k: str(m[k]) for k in sorted(m)}


def config_document(image: Image) -> dict[str, Any]:
    """The image config, in the OCI spec's field order."""
    c = image.config
    runtime: dict[str, Any] = {}
    if c.user:
        runtime["User"] = c.user
    if c.exposed_ports:
        runtime["ExposedPorts"] = {p: {} for p in sorted(c.exposed_ports)}
    env = [f"{k}={v}" for k, v in c.env.items()] if isinstance(c.env, Mapping) else list(c.env)
    if env:
        runtime["Env"] = env
    if c.entrypoint:
        runtime["Entrypoint"] = list(c.entrypoint)
    if c.cmd:
        runtime["Cmd"] = list(c.cmd)
    if c.volumes:
        runtime["Volumes"] = {v: {} for v in sorted(c.volumes)}
    if c.working_dir:
        runtime["WorkingDir"] = c.working_dir
    if c.labels:
        runtime["Labels"] = _sorted_map(c.labels)
    if c.stop_signal:
        runtime["StopSignal"] = c.stop_signal
    created = iso8601(image.created)
    history_text = image.history or []
    if image.history is not None and len(history_text) != len(image.layers):
        raise AssemblerError(
            f"Image for {image.platform.tag_suffix}: {len(history_text)} history entries "
            f"for {len(image.layers)} layers."
        )
    doc: dict[str, Any] = {"created": created}
    doc.update(image.platform.as_json())
    doc["config"] = runtime
    doc["rootfs"] = {"type": "layers", "diff_ids": [layer.diff_id for layer in image.layers]}
    doc["history"] = [
        {"created": created, "created_by": history_text[i] if history_text else "assembler"}
        for i in range(len(image.layers))
    ]
    return doc


def build(image: Image) -> BuiltImage:
    """Serialize the config and manifest of one image."""
    config = _blob(MEDIA_CONFIG, config_document(image))
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.descriptor(),
        "layers": [
            {"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}
            for layer in image.layers
        ],
    }
    if image.annotations:
        manifest["annotations"] = _sorted_map(image.annotations)
    return BuiltImage(image, config, _blob(MEDIA_MANIFEST, manifest))


def manifest_digest(image: Image) -> str:
    return build(image).manifest.digest


def _ordered(images: Sequence[Image]) -> list[Image]:
    if not images:
        raise AssemblerError("No image to write.")
    ordered = sorted(images, key=lambda i: i.platform)
    seen = {i.platform for i in ordered}
    if len(seen) != len(ordered):
        raise AssemblerError("Two images for the same platform.")
    # Sorting makes the index independent of the order archs were listed in.
    return ordered


def build_index(built: Sequence[BuiltImage], annotations: Mapping[str, str] | None = None) -> Blob:
    """An image index over several platform manifests."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [b.manifest.descriptor(platform=b.image.platform.as_json()) for b in built],
    }
    if annotations:
        doc["annotations"] = _sorted_map(annotations)
    return _blob(MEDIA_INDEX, doc)


def image_digest(images: Sequence[Image]) -> str:
    """The digest a registry will report: the manifest's for one image, else the index's."""
    return _Plan(images, []).top.digest


@dataclass(frozen=True)
class Tag:
    """A parsed tag: `name` is the full reference (docker.io/library/app:1.4), `tag` 1.4."""

    name: str
    repository: str
    tag: str


def parse_tag(ref: str) -> Tag:
    """Parse a user's tag reference, normalizing it as docker does."""
    if "@" in ref or not ref or any(c.isspace() for c in ref):
        raise SpecError(f"Invalid image tag {ref!r}: expected [registry/]repository[:tag].")
    repo, tag = ref, "latest"
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = ref.rsplit(":", 1)
    if not repo or not tag or repo != repo.lower().rstrip("/") or repo.startswith("/"):
        raise SpecError(
            f"Invalid image tag {ref!r}: repository names are lower case, tags may not be empty."
        )
    first, _, rest = repo.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        repo = "docker.io/" + (repo if rest else "library/" + repo)
    return Tag(f"{repo}:{tag}", repo, tag)


def _short_name(tag: Tag) -> str:
    # What docker prints and puts in RepoTags: without the implicit docker.io/library/.
    name = tag.name
    for prefix in ("docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


class _Plan:
    """Everything to write for a set of images and tags, computed before any I/O."""

    def __init__(self, images: Sequence[Image], tags: Sequence[str]) -> None:
        self.built = [build(i) for i in _ordered(images)]
        self.tags = [parse_tag(t) for t in tags]
        self.index: Blob | None = None
        if len(self.built) == 1:
            self.top = self.built[0].manifest
            top_descriptor = self.top.descriptor()
        else:
            self.index = build_index(self.built)
            self.top = self.index
            top_descriptor = self.top.descriptor()
        # index.json: one entry per tag (the layout's way to name images), or
        # one unnamed entry.
        entries: list[dict[str, Any]] = []
        for tag in self.tags:
            entry = dict(top_descriptor)
            entry["annotations"] = {
                ANNOTATION_IMAGE_NAME: tag.name,
                ANNOTATION_REF_NAME: tag.tag,
            }
            entries.append(entry)
        if not entries:
            entries.append(top_descriptor)
        self.index_json = canonical_json(
            {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": entries}
        )

    def json_blobs(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for b in self.built:
            out[b.config.digest] = b.config.data
            out[b.manifest.digest] = b.manifest.data
        if self.index is not None:
            out[self.index.digest] = self.index.data
        return out

    def layers(self) -> dict[str, Layer]:
        out: dict[str, Layer] = {}
        for b in self.built:
            for layer in b.image.layers:
                out.setdefault(layer.digest, layer)
        return out

    def docker_manifest(self) -> bytes:
        multi = len(self.built) > 1
        entries = []
        for b in self.built:
            repo_tags = [
                _short_name(t) + (f"-{b.image.platform.tag_suffix}" if multi else "")
                for t in self.tags
            ]
            entries.append(
                {
                    "Config": _blob_path(b.config.digest),
                    "RepoTags": repo_tags,
                    "Layers": [_blob_path(layer.digest) for layer in b.image.layers],
                }
            )
        return canonical_json(entries)


def _blob_path(digest: str) -> str:
    algo, _, hexdigest = digest.partition(":")
    return f"blobs/{algo}/{hexdigest}"


class _TarSink:
    """Wraps a streaming tarfile for adding members with fixed, neutral metadata."""

    def __init__(self, tf: tarfile.TarFile, mtime: int) -> None:
        self.tf = tf
        self.mtime = mtime

    def _info(self, name: str, kind: bytes, size: int = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = self.mtime
        info.size = size
        return info

    def dir(self, name: str) -> None:
        self.tf.addfile(self._info(name, tarfile.DIRTYPE))

    def file(self, name: str, data: bytes) -> None:
        self.tf.addfile(self._info(name, tarfile.REGTYPE, len(data)), io.BytesIO(data))

    def layer(self, name: str, layer: Layer) -> None:
        # tarfile copies exactly `size` bytes from a file object; verify while copying.
        info = self._info(name, tarfile.REGTYPE, layer.size)
        reader = _VerifyingReader(layer)
        self.tf.addfile(info, reader)
        reader.check()


class _VerifyingReader:
    def __init__(self, layer: Layer) -> None:
        self.layer = layer
        try:
            self.f = open(layer.path, "rb")  # noqa: SIM115 - closed in check()
        except OSError as e:
            raise AssemblerError(f"Layer blob {layer.path} is unreadable: {e.strerror}.") from None
        self.h = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.h.update(data)
        self.size += len(data)
        if n > 0 and len(data) < n and self.size < self.layer.size:
            self._fail()  # shrunk: fail here, before tarfile reports a bare OSError
        return data

    def check(self) -> None:
        extra = self.f.read(1)
        self.f.close()
        if extra or "sha256:" + self.h.hexdigest() != self.layer.digest:
            self._fail()

    def _fail(self) -> None:
        self.f.close()
        raise IntegrityError(
            f"Layer blob {self.layer.path} changed after it was written "
            f"(expected {self.layer.digest}, {self.layer.size} bytes); rebuild the image."
        )


def write_image_tar(
    path: Path | str,
    images: Sequence[Image],
    tags: Sequence[str] = (),
    *,
    mtime: int | None = None,
) -> str:
    """Write an OCI-layout + docker-load tar atomically; returns the image digest.

    Archive members carry `mtime` (default: the newest image's `created`).
    """
    plan = _Plan(images, tags)
    if mtime is None:
        mtime = max(b.image.created for b in plan.built)
    blobs: dict[str, bytes | Layer] = dict(plan.json_blobs())
    blobs.update(plan.layers())
    try:
        with (
            atomic_writer(Path(path)) as raw,
            # "w", not the stream mode "w|": the same bytes, without _Stream's buffer
            # concatenation, and layers copied in 1 MiB reads rather than 16 KiB ones.
            tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf,
        ):
            tf.copybufsize = _COPY_CHUNK  # type: ignore[attr-defined]
            sink = _TarSink(tf, mtime)
            sink.dir("blobs/")
            sink.dir("blobs/sha256/")
            for digest in sorted(blobs):
                item = blobs[digest]
                name = _blob_path(digest)
                if isinstance(item, Layer):
                    sink.layer(name, item)
                else:
                    sink.file(name, item)
            sink.file("index.json", plan.index_json)
            sink.file("manifest.json", plan.docker_manifest())
            sink.file("oci-layout", OCI_LAYOUT)
    except tarfile.TarError as e:
        raise AssemblerError(f"Writing {path} failed: {e}.") from None
    return plan.top.digest


def write_oci_dir(path: Path | str, images: Sequence[Image], tags: Sequence[str] = ()) -> str:
    """Write an OCI image layout directory; returns the image digest.

    The layout is assembled in a temporary sibling directory and renamed
    into place, so `path` is never a half-written layout. An existing `path`
    is replaced only if it is empty or itself an OCI layout.
    """
    plan = _Plan(images, tags)
    dest = Path(path)
    _recover(dest)
    if dest.exists() and not (
        dest.is_dir() and ((dest / "oci-layout").is_file() or not any(dest.iterdir()))
    ):
        raise AssemblerError(f"{dest} exists and is not an OCI layout; refusing to overwrite it.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".tmp-{dest.name}-"))
    try:
        os.chmod(tmp, 0o755)
        blob_dir = tmp / "blobs" / "sha256"
        blob_dir.mkdir(parents=True)
        for digest, data in plan.json_blobs().items():
            _write_file(tmp / _blob_path(digest), data)
        for digest, layer in plan.layers().items():
            reader = _VerifyingReader(layer)
            with open(tmp / _blob_path(digest), "wb") as out:
                shutil.copyfileobj(reader, out, _COPY_CHUNK)
            reader.check()
        _write_file(tmp / "oci-layout", OCI_LAYOUT)
        _write_file(tmp / "index.json", plan.index_json)
        _put_in_place(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return plan.top.digest


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step (Linux renameat2 RENAME_EXCHANGE): at every
    instant each name holds a whole layout. False where the system cannot."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _put_in_place(new: Path, dest: Path) -> None:
    """Make `new` the layout at `dest`; whatever happens, `dest` keeps a whole layout
    (the old one until the new one is there)."""
    try:
        os.rename(new, dest)   # no layout there yet (or an empty directory)
        return
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    if exchange(new, dest):
        shutil.rmtree(new, ignore_errors=True)   # now the previous layout
        return
    # Two renames; on any failure between them the old layout goes back, and a
    # process killed there leaves it in .old-<name>-*/layout for _recover.
    old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".old-{dest.name}-"))
    os.replace(dest, old / "layout")
    try:
        os.replace(new, dest)
    except BaseException:
        with suppress(OSError):
            os.replace(old / "layout", dest)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _recover(dest: Path) -> None:
    """Put back a layout a run killed between two renames left aside, if `dest` has none."""
    stranded = sorted(dest.parent.glob(f".old-{glob.escape(dest.name)}-*/layout"),
                      key=lambda p: p.stat().st_mtime)
    for layout in reversed(stranded):
        if not dest.exists():
            with suppress(OSError):
                os.replace(layout, dest)
        shutil.rmtree(layout.parent, ignore_errors=True)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)

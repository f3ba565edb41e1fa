"""The least a family of images could store if every distinct file were kept once.

A registry deduplicates whole layers, so no layering can store less than the family's
distinct files. Two bounds, over the layers of the given images (one layer each or not,
the files are the same):

* per file: every distinct file once. A file is its tar member's path, type, mode,
  owner, link target and the sha256 of its content; the mtime is left out (a layering
  can date a shared file alike in every image), which only lowers the bound.
* per package: every distinct package content once, i.e. a package with the same files
  in two images counts once, but the same package cut into other slices (or installed
  with other files) counts again; files no package owns (generated files, directories,
  symlinks, which Debian's `status.d/*.md5sums` does not list) count once each, as in
  the per-file bound. This is what a layering with one layer per package could reach.

Each bound is given uncompressed (tar bytes: 512-byte header plus content padded to 512)
and compressed: the bound's files written as one tar, in the order the images first hold
them, through gzip at the level assemble compresses layers with. One stream compresses a
little better than separate layers would, so the compressed figure errs low, as a bound
should.

Run on its own: .venv/bin/python bench/dedup_bound.py IMAGE.tar ... (images as
`assemble build` writes them).
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assembler.image.layer import GZIP_LEVEL  # noqa: E402

STATUS_D = "var/lib/dpkg/status.d/"

Key = tuple[str, bytes, int, int, int, str, str]


@dataclass(frozen=True)
class Bound:
    total_tar: int       # every image's files, uncompressed
    files_tar: int       # every distinct file once
    files_gz: int
    packages_tar: int    # every distinct package content once
    packages_gz: int


def layers(image: Path) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    """(member, content) of every layer of an image tar, bottom layer first."""
    with tarfile.open(image) as outer:
        entry = json.load(outer.extractfile("manifest.json"))[0]
        for name in entry["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(name), mode="r|*") as layer:
                for m in layer:
                    data = layer.extractfile(m).read() if m.isfile() else b""
                    yield m, data


def key(m: tarfile.TarInfo, data: bytes) -> Key:
    return (m.name.removeprefix("./").rstrip("/"), m.type, m.mode, m.uid, m.gid, m.linkname,
            hashlib.sha256(data).hexdigest())


def tar_size(m: tarfile.TarInfo) -> int:
    return 512 + -(-m.size // 512) * 512


def owners(image: Path) -> dict[str, str]:
    """path -> the package whose md5sums list it; each status.d file is its package's."""
    out = {}
    for m, data in layers(image):
        name = m.name.removeprefix("./")
        if not name.startswith(STATUS_D) or not m.isfile():
            continue
        package = name[len(STATUS_D):].removesuffix(".md5sums")
        out[name] = package
        if name.endswith(".md5sums"):
            for line in data.decode("utf-8", "replace").splitlines():
                _, _, path = line.partition("  ")
                if path:
                    out[path.lstrip("/")] = package
    return out


class _GzipCount:
    """Counts what gzip makes of what is written, keeping nothing."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(self._z.compress(data))
        return len(data)

    def close(self) -> int:
        self.size += len(self._z.flush())
        return self.size


def bound(images: list[Path]) -> Bound:
    # Pass 1: which package contents each image is the first to hold.
    seen_units: set[str] = set()
    new_units: list[set[str]] = []
    for image in images:
        own = owners(image)
        units: dict[str, list[Key]] = {}
        for m, data in layers(image):
            package = own.get(m.name.removeprefix("./"))
            if package is not None:
                units.setdefault(package, []).append(key(m, data))
        fresh = set()
        for package, keys in units.items():
            unit = hashlib.sha256(repr((package, sorted(keys))).encode()).hexdigest()
            if unit not in seen_units:
                seen_units.add(unit)
                fresh.add(package)
        new_units.append(fresh)
    # Pass 2: write each bound's files once.
    total = files_tar = packages_tar = 0
    files_gz, packages_gz = _GzipCount(), _GzipCount()
    seen_files: set[Key] = set()
    seen_loose: set[Key] = set()
    with tarfile.open(fileobj=files_gz, mode="w|", format=tarfile.PAX_FORMAT) as files, \
            tarfile.open(fileobj=packages_gz, mode="w|", format=tarfile.PAX_FORMAT) as pkgs:
        for image, fresh in zip(images, new_units, strict=True):
            own = owners(image)
            for m, data in layers(image):
                k = key(m, data)
                total += tar_size(m)
                if k not in seen_files:
                    seen_files.add(k)
                    files_tar += tar_size(m)
                    files.addfile(m, io.BytesIO(data))
                package = own.get(m.name.removeprefix("./"))
                if package in fresh or (package is None and k not in seen_loose):
                    if package is None:
                        seen_loose.add(k)
                    packages_tar += tar_size(m)
                    pkgs.addfile(m, io.BytesIO(data))
    return Bound(total, files_tar, files_gz.close(), packages_tar, packages_gz.close())


def main() -> None:
    images = [Path(a) for a in sys.argv[1:]]
    if not images:
        raise SystemExit(__doc__)
    b = bound(images)
    print(f"{len(images)} images: {b.total_tar / 1e6:.1f} MB of files uncompressed")
    print(f"every distinct file once: {b.files_tar / 1e6:.1f} MB uncompressed "
          f"({b.files_tar / b.total_tar:.0%}), {b.files_gz / 1e6:.1f} MB gzip")
    print(f"every distinct package content once: {b.packages_tar / 1e6:.1f} MB uncompressed "
          f"({b.packages_tar / b.total_tar:.0%}), {b.packages_gz / 1e6:.1f} MB gzip")


if __name__ == "__main__":
    main()

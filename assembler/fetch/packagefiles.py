"""Package files into the content-addressed cache: parallel, verified, atomic.

A file enters the cache only under its sha256 and only after the bytes were
hashed on the way in (transport.download), so a killed download leaves a
stray temp file at worst, never a wrong entry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from assembler.cache import Cache, sha256_file
from assembler.distro.snapshot import missing_message
from assembler.errors import NetworkError
from assembler.progress import Progress
from assembler.transport import NotFound, download

WORKERS = 6


@dataclass(frozen=True)
class Wanted:
    name: str
    url_base: str        # mirror of its archive
    filename: str        # archive-relative (pool/...)
    sha256: str
    size: int
    fallback: str | None = None   # a snapshot archive root, for a file the mirror dropped
    snapshots: bool = False       # its archive has snapshots (so say how to configure one)


def _intact(cache: Cache, it: Wanted, will_read: Callable[[str], bool]) -> bool:
    """Is the cached file there and whole? Its size is always checked; its hash when
    it is about to be read (a warm build reads only its unpacked form)."""
    path = cache.blob_path(it.sha256)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    if (it.size and size != it.size) or (will_read(it.sha256)
                                         and sha256_file(path) != it.sha256):
        # Damaged on disk (a bad sector, a hand edit): fetch it again.
        with suppress(FileNotFoundError):
            path.unlink()
        return False
    return True


class Arriving(Mapping[str, Path]):
    """{sha256: cached path} whose lookups wait for that file's download: the install
    unpacks each package as soon as it is in, while the rest still arrive."""

    def __init__(self, ready: dict[str, Path], coming: dict[str, Future[Path]]) -> None:
        self._ready = ready
        self._coming = coming

    def __getitem__(self, sha256: str) -> Path:
        if sha256 in self._ready:
            return self._ready[sha256]
        return self._coming[sha256].result()

    def __iter__(self) -> Iterator[str]:
        return iter([*self._ready, *self._coming])

    def __len__(self) -> int:
        return len(self._ready) + len(self._coming)


@contextmanager
def fetching(items: list[Wanted], cache: Cache, offline: bool = False,
             progress: Progress | None = None,
             will_read: Callable[[str], bool] = lambda sha256: True) -> Iterator[Arriving]:
    """Download what is missing or damaged in the background, in `items` order (the
    order an install takes them), and give the files as they arrive. Leaving the block
    waits for every download and raises the first failure; an exception inside it
    cancels the downloads not yet started."""
    progress = progress or Progress(quiet=True)
    ready: dict[str, Path] = {}
    missing = []
    for it in items:
        if _intact(cache, it, will_read):
            ready[it.sha256] = cache.blob_path(it.sha256)
        else:
            missing.append(it)
    if missing and offline:
        names = ", ".join(it.name for it in missing[:5])
        raise NetworkError(f"--offline: {len(missing)} package file(s) are not in the cache, "
                           f"or were damaged there and deleted ({names}"
                           f"{', ...' if len(missing) > 5 else ''}); build once online.")
    total = sum(it.size for it in missing)
    done = [0]
    lock = threading.Lock()

    def tick(n: int) -> None:
        with lock:
            done[0] += n
            progress.status(f"downloading {len(missing)} packages: "
                            f"{done[0] / 1e6:.1f}/{total / 1e6:.1f} MB", part="download")

    def one(it: Wanted) -> Path:
        dest = cache.blob_path(it.sha256)
        url = f"{it.url_base}/{it.filename}"
        try:
            download(url, dest, it.sha256, it.size, tick)
            return dest
        except NotFound:
            if not it.fallback:
                raise NetworkError(missing_message(it.name, url, None, it.snapshots)) from None
        # The lock's sha256 is what is verified, wherever the bytes come from.
        try:
            download(f"{it.fallback}/{it.filename}", dest, it.sha256, it.size, tick)
        except NotFound:
            raise NetworkError(missing_message(it.name, url, f"{it.fallback}/{it.filename}",
                                               True)) from None
        return dest

    pool = ThreadPoolExecutor(WORKERS)
    try:
        coming = {it.sha256: pool.submit(one, it) for it in missing}
        yield Arriving(ready, coming)
        for f in coming.values():
            f.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        progress.done(part="download")


def fetch_all(items: list[Wanted], cache: Cache, offline: bool = False,
              progress: Progress | None = None,
              will_read: Callable[[str], bool] = lambda sha256: True) -> dict[str, Path]:
    """Return {sha256: cached path} for every item, downloading what is missing or
    damaged. `will_read(sha256)`: the caller reads that file's bytes (so hash it)."""
    with fetching(items, cache, offline, progress, will_read) as files:
        return {it.sha256: files[it.sha256] for it in items}

"""Package files into the content-addressed cache: parallel, verified, atomic.

A file enters the cache only under its sha256 and only after the bytes were
hashed on the way in (transport.download), so a killed download leaves a
stray temp file at worst, never a wrong entry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
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


def fetch_all(items: list[Wanted], cache: Cache, offline: bool = False,
              progress: Progress | None = None,
              will_read: Callable[[str], bool] = lambda sha256: True) -> dict[str, Path]:
    """Return {sha256: cached path} for every item, downloading what is missing or
    damaged. `will_read(sha256)`: the caller reads that file's bytes (so hash it)."""
    progress = progress or Progress(quiet=True)
    out: dict[str, Path] = {}
    missing = []
    for it in items:
        if _intact(cache, it, will_read):
            out[it.sha256] = cache.blob_path(it.sha256)
        else:
            missing.append(it)
    if not missing:
        return out
    if offline:
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
                            f"{done[0] / 1e6:.1f}/{total / 1e6:.1f} MB")

    def one(it: Wanted) -> None:
        dest = cache.blob_path(it.sha256)
        url = f"{it.url_base}/{it.filename}"
        try:
            download(url, dest, it.sha256, it.size, tick)
            return
        except NotFound:
            if not it.fallback:
                raise NetworkError(missing_message(it.name, url, None, it.snapshots)) from None
        # The lock's sha256 is what is verified, wherever the bytes come from.
        try:
            download(f"{it.fallback}/{it.filename}", dest, it.sha256, it.size, tick)
        except NotFound:
            raise NetworkError(missing_message(it.name, url, f"{it.fallback}/{it.filename}",
                                               True)) from None

    # Larger files first so the pool does not end waiting on one big download.
    with ThreadPoolExecutor(WORKERS) as pool:
        for f in [pool.submit(one, it) for it in sorted(missing, key=lambda i: -i.size)]:
            f.result()
    progress.done()
    for it in missing:
        out[it.sha256] = cache.blob_path(it.sha256)
    return out

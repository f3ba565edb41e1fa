"""A Debian archive as a package universe: verified, parsed, cached.

InRelease is OpenPGP-verified against the distro's keys; each Packages file
is fetched (by-hash where offered) and must match the SHA256 in the verified
InRelease before it is parsed. Only then is the parsed index cached, keyed by
that hash, so nothing unverified ever reaches the cache.
"""

from __future__ import annotations

import hashlib
import lzma
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from assembler.cache import Cache, atomic_write
from assembler.debian.openpgp import verify_clearsigned
from assembler.debian.packages import (
    is_essential,
    make_package,
    parse_packages_pieces,
    provided_names,
)
from assembler.debian.release import Release, check_release, parse_release
from assembler.debian.version import version_key
from assembler.distro import snapshot
from assembler.distro.definition import Archive, Distro
from assembler.errors import IntegrityError, MalformedError, NetworkError
from assembler.packages.universe import IndexLoader, Universe
from assembler.progress import Progress
from assembler.transport import NotFound, fetch
from assembler.untrusted import MAX_INDEX_SIZE, index_size_limit

CACHE_FORMAT = "deb-index-3"   # 3: sealed (Cache.store_parsed)
# Prefer the smallest transfer that is still fast to decompress.
class _Plain:
    """The no-compression case with a decompressor's interface."""

    eof = True

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        return data


# xz's own memory need is set by the file (its dictionary): Debian's indexes
# need 8 to 64 MiB, a hostile one could ask for gigabytes.
_XZ_MEMLIMIT = 256 << 20
_COMPRESSIONS = ((".xz", lambda: lzma.LZMADecompressor(memlimit=_XZ_MEMLIMIT)),
                 (".gz", lambda: zlib.decompressobj(16 + 15)), ("", _Plain))


_PIECE = 1 << 20


def _inflate(d: object, chunk: bytes | memoryview) -> Iterator[bytes]:
    """What feeding `chunk` to `d` gives, in pieces of at most _PIECE bytes."""
    if isinstance(d, lzma.LZMADecompressor):
        yield d.decompress(chunk, _PIECE)
        while not d.needs_input and not d.eof:
            yield d.decompress(b"", _PIECE)
        return
    while chunk:
        yield d.decompress(chunk, _PIECE)  # type: ignore[attr-defined]
        chunk = getattr(d, "unconsumed_tail", b"")


def decompressed_pieces(data: bytes, make: Callable[[], object],
                        limit: int | None = None, what: str = "the index") -> Iterator[bytes]:
    # Parsed piece by piece: the whole bookworm main index is 50 MB of text
    # (more once decoded), which dominated a cold build's peak RSS. Bounded
    # while inflating: a small hostile .xz never grows past `limit` in memory.
    d = make()
    limit = limit or index_size_limit()
    total = 0
    view = memoryview(data)
    step = 1 << 16
    for i in range(0, len(data), step):
        for out in _inflate(d, view[i:i + step]):
            total += len(out)
            if total > limit:
                raise MalformedError(f"{what} inflates to more than {limit} bytes "
                                     f"({MAX_INDEX_SIZE[0]} raises the limit); refusing it.")
            if out:
                yield out
    if isinstance(d, lzma.LZMADecompressor) and not d.eof:
        raise EOFError("compressed data ends early")
    if hasattr(d, "flush"):
        tail = d.flush()
        if tail:
            yield tail



_SIGNATURE_END = b"\n-----END PGP SIGNATURE-----"


def _inrelease_end(window: bytes) -> int | None:
    """Where a clearsigned InRelease ends: its armor's last line, plus a line break
    (a few bytes of slack); whatever a mirror sends after that is refused unread."""
    at = window.find(_SIGNATURE_END)
    return None if at < 0 else at + len(_SIGNATURE_END) + 8


@dataclass
class SuiteIndex:
    archive: str
    suite: str
    release: Release
    inrelease_sha256: str
    raw: bytes
    pointer: Path
    expired: bool = False   # a snapshot's Valid-Until had passed (accepted for snapshots)

    def remember(self, cache: Cache) -> None:
        """Cache the InRelease, once everything it vouches for has verified too."""
        cache.put_blob(self.raw, self.inrelease_sha256)
        atomic_write(self.pointer, self.inrelease_sha256.encode())


class DebianIndexLoader(IndexLoader):
    """InRelease + Packages per suite: fetch (by-hash), verify, parse, cache."""

    def __init__(self, distro: Distro, mirrors: dict[str, str], cache: Cache,
                 offline: bool = False, progress: Progress | None = None,
                 snapshots: dict[str, str] | None = None) -> None:
        super().__init__(distro, mirrors, cache, offline, progress)
        self._releases: dict[tuple[str, str], SuiteIndex] = {}
        # archive name -> the snapshot timestamp its mirror URL points into (lock --snapshot)
        self.snapshots = snapshots or {}

    # -- InRelease ---------------------------------------------------------------
    def _pointer(self, url: str) -> Path:
        return self.cache.derived_path("inrelease", hashlib.sha256(url.encode()).hexdigest())

    def release(self, archive: Archive, suite: str) -> SuiteIndex:
        key = (archive.name, suite)
        if key in self._releases:
            return self._releases[key]
        url = f"{self.mirrors[archive.name]}/dists/{suite}/InRelease"
        pointer = self._pointer(url)
        data: bytes | None = None
        if self.offline:
            data = self.cache.pointed_blob(pointer)
            if data is None:
                raise NetworkError(f"--offline: {url} is not in the cache; run once online.")
        else:
            t = time.perf_counter()
            self.progress.status(f"fetching {archive.name} {suite} InRelease")
            try:
                data = fetch(url, end=_inrelease_end)
            except NotFound:
                raise NetworkError(f"{url} does not exist: is {self.mirrors[archive.name]} "
                                   f"really a mirror of archive {archive.name!r} that carries "
                                   f"suite {suite!r}?") from None
            self.timings.download += time.perf_counter() - t
        t = time.perf_counter()
        signed = verify_clearsigned(data, archive.keys, url)
        rel = parse_release(signed.decode("utf-8", "replace"), url)
        expired = check_release(rel, suite, url, snapshot=archive.name in self.snapshots)
        self.timings.verify += time.perf_counter() - t
        digest = hashlib.sha256(data).hexdigest()
        si = SuiteIndex(archive.name, suite, rel, digest, data, pointer, expired)
        self._releases[key] = si
        return si

    # -- Packages ----------------------------------------------------------------
    def _packages(self, archive: Archive, si: SuiteIndex, component: str, arch: str
                  ) -> list[tuple[str, str, str]] | None:
        base = f"{component}/binary-{arch}/Packages"
        for ext, decompress in _COMPRESSIONS:  # noqa: B007 (used after the loop)
            entry = si.release.sha256.get(base + ext)
            if entry:
                break
        else:
            return None  # the suite has no such component/arch (e.g. empty -updates)
        sha, size = entry
        cached = self.cache.derived_path("index", f"{CACHE_FORMAT}-{sha}.marshal")
        t = time.perf_counter()
        records = self.cache.load_parsed(cached)
        if isinstance(records, list):
            self.timings.load += time.perf_counter() - t
            return records
        if self.offline:
            raise NetworkError(f"--offline: the {si.archive} {si.suite} {base} index is not in "
                               "the cache; run once online.")
        mirror = self.mirrors[archive.name]
        url = f"{mirror}/dists/{si.suite}/{base}{ext}"
        self.progress.status(f"downloading {si.archive} {si.suite} {base}{ext} "
                             f"({size / 1e6:.1f} MB)", force=True)
        t = time.perf_counter()
        data = None
        try:
            if si.release.acquire_by_hash:
                # by-hash cannot change under us mid-update; fall back like apt does.
                try:
                    data = fetch(f"{mirror}/dists/{si.suite}/{component}/binary-{arch}/"
                                 f"by-hash/SHA256/{sha}", size)
                except NotFound:
                    data = None
            if data is None:
                data = fetch(url, size)
        except IntegrityError as e:
            raise IntegrityError(f"{si.archive} {si.suite} {base}{ext}: {e}") from None
        self.timings.download += time.perf_counter() - t
        t = time.perf_counter()
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha or len(data) != size:
            raise IntegrityError(
                f"{url}: sha256 {actual} ({len(data)} bytes) does not match the signed InRelease "
                f"({sha}, {size} bytes). The index was not used or cached; the mirror may be "
                "mid-update (try again) or tampered with.")
        self.timings.verify += time.perf_counter() - t
        t = time.perf_counter()
        self.progress.status(f"parsing {si.archive} {si.suite} {base}", force=True)
        try:
            records = parse_packages_pieces(decompressed_pieces(data, decompress,
                                                                what=url))
        except (lzma.LZMAError, zlib.error, OSError, EOFError) as e:
            raise IntegrityError(f"{url}: cannot decompress ({e}).") from None
        self.timings.parse += time.perf_counter() - t
        self.cache.store_parsed(cached, records)
        return records

    def _source(self, archive: Archive, si: SuiteIndex) -> dict:
        """The lock's record of one index, with the snapshot that keeps its files."""
        rel = si.release
        out = {"archive": archive.name, "suite": si.suite,
               "date": rel.date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "inrelease-sha256": si.inrelease_sha256,
               "snapshot": self.snapshots.get(archive.name) or snapshot.for_index(rel.date)}
        if rel.version:  # the signed point release: what /etc/debian_version says
            out["version"] = rel.version
        if si.expired and rel.valid_until is not None:
            out["valid-until-expired"] = rel.valid_until.astimezone(UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
        return out

    def load(self, arch: str) -> Universe:
        sources: list[dict] = []
        universe = Universe(arch, version_key, lambda r: make_package(r[0], sources[r[1]]),
                            lambda r: is_essential(r[0]))
        # chisel.yaml priorities: a package comes from the highest-priority archive that
        # has it, whatever the versions elsewhere (equal priorities: apt's rule, all
        # versions compete). The sort is stable, so equal priorities keep their order.
        archives = sorted((a for a in self.distro.archives if a.serves(arch)),
                          key=lambda a: -a.priority)
        ranked = len({a.priority for a in archives}) > 1
        first: dict[str, int] = {}      # package name -> priority of its archive
        for archive in archives:
            seen: set[str] = set()
            for suite in archive.suites:
                si = self.release(archive, suite)
                if arch not in si.release.architectures:
                    raise IntegrityError(f"{archive.name} {suite} does not carry architecture "
                                         f"{arch!r} (it has "
                                         + ", ".join(si.release.architectures) + ").")
                # Like apt: binary-all only when the Release lists "all" and does not
                # say it is folded into each architecture's index.
                archs = [arch]
                if "all" in si.release.architectures and not si.release.all_in_arch:
                    archs.append("all")
                for component in archive.components:
                    for a in archs:
                        records = self._packages(archive, si, component, a)
                        if records is None:
                            continue
                        if ranked:
                            records = [r for r in records
                                       if first.get(r[0], archive.priority) == archive.priority]
                            seen.update(r[0] for r in records)
                        idx = len(sources)
                        sources.append({"archive": archive.name, "suite": suite,
                                        "component": component,
                                        "index": f"{self.mirrors[archive.name]}/dists/"
                                                 f"{suite}/{component}/binary-{a}/Packages"})
                        universe.add_bulk(records, idx, provided_names)
                if not self.offline:
                    si.remember(self.cache)
                universe.sources.append(self._source(archive, si))
            for name in seen:
                first.setdefault(name, archive.priority)
        self.progress.done()
        return universe

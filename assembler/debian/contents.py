"""Which package ships a shared library: the archive's Contents-<arch> index, reduced.

Only asked when a link check fails, to say what would provide the missing
soname. Contents-amd64.gz is ~12 MB (150 MB of text) per suite, so it is
fetched, verified against the signed InRelease like any index, and reduced to
library basename -> packages, which is what gets cached.
"""

from __future__ import annotations

import hashlib
import re
import zlib

from assembler.cache import Cache
from assembler.debian.archive import DebianIndexLoader, decompressed_pieces
from assembler.distro.definition import Distro
from assembler.errors import AssemblerError, IntegrityError
from assembler.progress import Progress
from assembler.transport import fetch
from assembler.untrusted import index_size_limit

CACHE_FORMAT = "contents-libs-2"   # 2: sealed (Cache.store_parsed)
# Only files in library directories that look like shared objects.
_LIB = re.compile(rb"^(?:usr/)?lib[^/ ]*/(?:[^/ ]+/)?((?:lib|ld-)[^/ ]*\.so(?:\.[0-9][^/ ]*)?)"
                  rb"\s+(\S+)$", re.M)


def _reduce(text_gz: bytes) -> dict[str, list[str]]:
    out: dict[str, set[str]] = {}

    def collect(lines: bytes) -> None:
        for m in _LIB.finditer(lines):
            pkgs = {p.rpartition(b"/")[2].decode() for p in m.group(2).split(b",")}
            out.setdefault(m.group(1).decode(), set()).update(pkgs)

    rest = b""
    # Streamed and reduced as it goes: a Contents file may be many times an index's size.
    for piece in decompressed_pieces(text_gz, lambda: zlib.decompressobj(16 + 15),
                                     limit=16 * index_size_limit(), what="Contents"):
        buf = rest + piece
        cut = buf.rfind(b"\n") + 1
        collect(buf[:cut])
        rest = buf[cut:]
    collect(rest + b"\n")
    return {k: sorted(v) for k, v in out.items()}


class LibraryIndex:
    """soname -> packages that ship a file of that name, over the distro's suites."""

    def __init__(self, distro: Distro, mirrors: dict[str, str], cache: Cache, arch: str,
                 offline: bool = False, progress: Progress | None = None) -> None:
        self.loader = DebianIndexLoader(distro, mirrors, cache, offline, progress)
        self.distro = distro
        self.cache = cache
        self.arch = arch
        self.offline = offline
        self._map: dict[str, list[str]] | None = None

    def _load(self) -> dict[str, list[str]]:
        merged: dict[str, set[str]] = {}
        for archive in self.distro.archives:
            for suite in archive.suites:
                si = self.loader.release(archive, suite)
                for component in archive.components:
                    name = f"{component}/Contents-{self.arch}.gz"
                    entry = si.release.sha256.get(name)
                    if entry is None:
                        continue
                    sha, size = entry
                    cached = self.cache.derived_path("index", f"{CACHE_FORMAT}-{sha}.marshal")
                    part = self.cache.load_parsed(cached)
                    if not isinstance(part, dict):
                        if self.offline:
                            continue
                        url = f"{self.loader.mirrors[archive.name]}/dists/{suite}/{name}"
                        data = fetch(url, size)
                        if hashlib.sha256(data).hexdigest() != sha or len(data) != size:
                            raise IntegrityError(f"{url}: does not match the signed InRelease; "
                                                 "not used.")
                        part = _reduce(data)
                        self.cache.store_parsed(cached, part)
                    for lib, pkgs in part.items():
                        merged.setdefault(lib, set()).update(pkgs)
        return {k: sorted(v) for k, v in merged.items()}

    def __call__(self, soname: str) -> str | None:
        """'package libssl3' (or several), for the link check's message; None if unknown."""
        if self._map is None:
            try:
                self._map = self._load()
            except (AssemblerError, OSError, zlib.error):
                # Only a hint for an error message already on its way: never mask that error.
                self._map = {}
        pkgs = self._map.get(soname.rpartition("/")[2])
        if not pkgs:
            return None
        return ("package " if len(pkgs) == 1 else "packages ") + ", ".join(pkgs[:5])

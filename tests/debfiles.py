"""The files of real Debian packages, for checks of the slice catalog.

- `PackageFiles.load(release, arch, names, cache)`: the current candidate of
  each named package on one release and architecture (highest version over the
  release's suites, like a lock), fetched into an assembler cache (verified,
  content-addressed) and unpacked there; `{name: Deb}`.
- `Deb`: name, version, sha256, `blob` (the cached .deb), `unpacked` (the
  engine's unpacked package), `members` ({absolute path without trailing
  slash: (kind, link target)}) and `read(path)` for a regular file's bytes.

Mirrors come from assembler.distro.mirror (the host's apt sources or
ASSEMBLER_MIRROR_*), exactly as `assemble` finds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from assembler.cache import Cache
from assembler.debian import deb
from assembler.debian.archive import DebianIndexLoader
from assembler.distro.definition import load_distro
from assembler.distro.mirror import resolve_mirrors
from assembler.fetch.packagefiles import Wanted, fetch_all
from assembler.fetch.unpacked import FILE, Unpacked, unpacked
from assembler.packages.universe import Universe


@dataclass
class Deb:
    name: str
    version: str
    arch: str
    sha256: str
    blob: Path
    unpacked: Unpacked
    members: dict[str, tuple[str, str]] = field(default_factory=dict)
    _offsets: dict[str, tuple[int, int]] = field(default_factory=dict)

    def read(self, path: str) -> bytes:
        offset, size = self._offsets[path]
        with open(self.unpacked.path, "rb") as f:
            f.seek(offset)
            return f.read(size)

    def regular_files(self) -> list[str]:
        return sorted(self._offsets)


def normalize(name: str) -> str:
    name = name.lstrip(".")
    name = "/" + name.lstrip("/")
    return name.rstrip("/") or "/"


def _deb(name: str, pkg, blob: Path, up: Unpacked) -> Deb:
    d = Deb(name, pkg.version, pkg.arch, pkg.sha256, blob, up)
    for m in up.members:
        path = normalize(m[0])
        d.members[path] = (m[1], m[6])
        if m[1] == FILE:
            d._offsets[path] = (m[8], m[5])
    return d


class PackageFiles:
    _universes: dict[tuple[str, str], Universe] = {}

    @classmethod
    def universe(cls, release: str, arch: str, cache: Cache) -> tuple[Universe, dict[str, str]]:
        distro = load_distro(f"debian/{release}")
        mirrors = resolve_mirrors(distro.archives, {}, {})
        key = (release, arch)
        if key not in cls._universes:
            cls._universes[key] = DebianIndexLoader(distro, mirrors, cache).load(arch)
        return cls._universes[key], mirrors

    @classmethod
    def load(cls, release: str, arch: str, names: list[str], cache: Cache | Path) -> dict[str, Deb]:
        if not isinstance(cache, Cache):
            cache = Cache(Path(cache))
        universe, mirrors = cls.universe(release, arch, cache)
        chosen = {}
        missing = []
        for name in names:
            versions = universe.versions(name)
            if not versions:
                missing.append(name)
                continue
            chosen[name] = versions[0]
        if missing:
            raise LookupError(f"{release}/{arch}: no package " + ", ".join(missing))
        items = [Wanted(n, mirrors[p.archive].rstrip("/"), p.filename, p.sha256, p.size)
                 for n, p in chosen.items()]
        files = fetch_all(items, cache)
        out = {}
        for n, p in chosen.items():
            path = files[p.sha256]
            up = unpacked(cache, p.sha256, lambda path=path: deb.iter_data(path),
                          lambda path=path: {"control": deb.read_control(path)})
            out[n] = _deb(n, p, path, up)
        return out

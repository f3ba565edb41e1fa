"""The files of real Debian packages, for checks of the slice catalog.

- `PackageFiles.load(release, arch, names, cache)`: the current candidate of
  each named package on one release and architecture (highest version over the
  release's suites, like a lock), fetched into an assembler cache (verified,
  content-addressed) and unpacked there; `{name: Deb}`.
- `Deb`: name, version, `members` ({absolute path without trailing slash:
  (kind, link target)}) and `read(path)` for a regular file's bytes.
- `elf_info(data)`: (interpreter, soname, needed) of an ELF file, or None.

Mirrors come from assembler.mirror (the host's apt sources or
ASSEMBLER_MIRROR_*), exactly as `assemble` finds them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from assembler.cache import Cache
from assembler.debian import deb
from assembler.debian.archive import DebianIndexLoader
from assembler.distro import load_distro
from assembler.fetch import Wanted, fetch_all
from assembler.index import Universe
from assembler.mirror import resolve_mirrors
from assembler.unpacked import FILE, Unpacked, unpacked


@dataclass
class Deb:
    name: str
    version: str
    arch: str
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


def _deb(name: str, pkg, up: Unpacked) -> Deb:
    d = Deb(name, pkg.version, pkg.arch, up)
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
            out[n] = _deb(n, p, up)
        return out


# ----------------------------------------------------------------------------- ELF

_PT_INTERP, _PT_DYNAMIC, _PT_LOAD = 3, 2, 1
_DT_NEEDED, _DT_STRTAB, _DT_SONAME = 1, 5, 14


def elf_info(data: bytes) -> tuple[str | None, str | None, list[str]] | None:
    """(interpreter, soname, DT_NEEDED list) of a 64- or 32-bit ELF file, else None."""
    if data[:4] != b"\x7fELF" or len(data) < 64:
        return None
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if is64:
        phoff, = struct.unpack_from(end + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x36)
    else:
        phoff, = struct.unpack_from(end + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x2A)
    loads = []
    interp = None
    dynamic = None
    for i in range(phnum):
        at = phoff + i * phentsize
        if is64:
            p_type, _flags, off, vaddr, _pa, filesz = struct.unpack_from(end + "IIQQQQ", data, at)
        else:
            p_type, off, vaddr, _pa, filesz = struct.unpack_from(end + "IIIII", data, at)
        if p_type == _PT_INTERP:
            interp = data[off:off + filesz].rstrip(b"\0").decode()
        elif p_type == _PT_DYNAMIC:
            dynamic = (off, filesz)
        elif p_type == _PT_LOAD:
            loads.append((vaddr, off, filesz))
    if dynamic is None:
        return interp, None, []

    def file_offset(vaddr: int) -> int:
        for v, o, s in loads:
            if v <= vaddr < v + s:
                return vaddr - v + o
        raise ValueError("address outside every PT_LOAD")

    fmt, size = (end + "qQ", 16) if is64 else (end + "iI", 8)
    strtab = None
    needed_at: list[int] = []
    soname_at = None
    off, filesz = dynamic
    for at in range(off, off + filesz, size):
        tag, val = struct.unpack_from(fmt, data, at)
        if tag == 0:
            break
        if tag == _DT_NEEDED:
            needed_at.append(val)
        elif tag == _DT_STRTAB:
            strtab = file_offset(val)
        elif tag == _DT_SONAME:
            soname_at = val

    def string(i: int) -> str:
        assert strtab is not None
        return data[strtab + i:data.index(b"\0", strtab + i)].decode()

    return interp, (string(soname_at) if soname_at is not None else None), \
        [string(i) for i in needed_at]

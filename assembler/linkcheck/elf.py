"""What the dynamic loader needs to know about an ELF file, read from its headers only.

The link check runs in every build over every file of the image, so this
reads as little as it can: the 64-byte header, the program headers, the
dynamic segment and the few strings it names (never section headers, which
the loader ignores and `strip` may remove; never the whole file). See
docs/decisions.md for why this is hand-written rather than pyelftools.

Files come from packages and from arbitrary images: anything can be in
them. `read_elf` returns None for a file that is not ELF and raises
ElfError for one that claims to be ELF but is truncated or inconsistent;
it never raises anything else and never reads more than a bounded amount.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO

MAGIC = b"\x7fELF"
HEADER_SIZE = 64  # the 64-bit header; the 32-bit one (52 bytes) fits in it

ET_EXEC, ET_DYN = 2, 3
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ = 0, 1, 5, 10
DT_SONAME, DT_RPATH, DT_RUNPATH = 14, 15, 29

# Bounds that no real file comes near, so that garbage cannot make us read much.
_MAX_PHNUM = 4096
_MAX_DYNAMIC = 1 << 20
_MAX_STRING = 4096
_STRING_CHUNK = 256

# e_machine values of the architectures Debian and Alpine build for.
MACHINES = {3: "i386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390", 40: "arm",
            62: "x86-64", 183: "aarch64", 243: "riscv"}


class ElfError(ValueError):
    """The file starts like ELF but its headers are truncated or inconsistent."""


@dataclass(frozen=True, slots=True)
class ElfInfo:
    bits: int  # 32 or 64
    little_endian: bool
    machine: int  # e_machine
    type: int  # e_type: ET_EXEC, ET_DYN, ...
    interpreter: str | None = None  # PT_INTERP
    needed: tuple[str, ...] = ()
    soname: str | None = None
    rpath: tuple[str, ...] = ()  # DT_RPATH, split on ':'
    runpath: tuple[str, ...] = ()  # DT_RUNPATH, split on ':'

    @property
    def abi(self) -> tuple[int, bool, int]:
        """What a library must share with its user to be loadable (class, byte order, machine)."""
        return self.bits, self.little_endian, self.machine

    def describe(self) -> str:
        name = MACHINES.get(self.machine, f"machine {self.machine}")
        return f"{self.bits}-bit {name}"


def _read_at(f: IO[bytes], offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


def _exact(f: IO[bytes], offset: int, size: int, what: str) -> bytes:
    data = _read_at(f, offset, size)
    if len(data) != size:
        raise ElfError(f"truncated: {what} at offset {offset} needs {size} bytes")
    return data


def read_elf(f: IO[bytes]) -> ElfInfo | None:
    """Parse the loader-relevant parts of the ELF file `f` (seekable); None if not ELF."""
    head = _read_at(f, 0, HEADER_SIZE)
    if head[:4] != MAGIC:
        return None
    try:
        return _parse(f, head)
    except (struct.error, OverflowError, ValueError) as e:
        if isinstance(e, ElfError):
            raise
        raise ElfError(str(e)) from None


def _parse(f: IO[bytes], head: bytes) -> ElfInfo:
    if len(head) < 52:
        raise ElfError("truncated: shorter than an ELF header")
    ei_class, ei_data = head[4], head[5]
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        raise ElfError(f"unknown ELF class {ei_class} or byte order {ei_data}")
    bits = 32 if ei_class == 1 else 64
    end = "<" if ei_data == 1 else ">"
    if bits == 64:
        if len(head) < 64:
            raise ElfError("truncated: shorter than a 64-bit ELF header")
        e_type, machine, _, _, phoff, _, _, _, phentsize, phnum = struct.unpack_from(
            end + "HHIQQQIHHH", head, 16)
        ph_fmt, ph_size = end + "IIQQQQQQ", 56
    else:
        e_type, machine, _, _, phoff, _, _, _, phentsize, phnum = struct.unpack_from(
            end + "HHIIIIIHHH", head, 16)
        ph_fmt, ph_size = end + "IIIIIIII", 32
    info = ElfInfo(bits, ei_data == 1, machine, e_type)
    if phnum == 0:
        return info  # relocatable objects, some core files: nothing for the loader
    if not ph_size <= phentsize <= 4 * ph_size or phnum > _MAX_PHNUM:
        raise ElfError(f"implausible program header table ({phnum} x {phentsize} bytes)")
    table = _exact(f, phoff, phnum * phentsize, "program headers")
    loads: list[tuple[int, int, int]] = []  # (vaddr, filesz, offset)
    interp: tuple[int, int] | None = None
    dynamic: tuple[int, int] | None = None
    for i in range(phnum):
        fields = struct.unpack_from(ph_fmt, table, i * phentsize)
        if bits == 64:
            p_type, _, p_offset, p_vaddr, _, p_filesz = fields[:6]
        else:
            p_type, p_offset, p_vaddr, _, p_filesz = fields[:5]
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_filesz, p_offset))
        elif p_type == PT_INTERP:
            interp = (p_offset, p_filesz)
        elif p_type == PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
    interpreter = None
    if interp is not None:
        offset, size = interp
        if not 1 < size <= _MAX_STRING:
            raise ElfError(f"implausible PT_INTERP size {size}")
        raw = _exact(f, offset, size, "PT_INTERP")
        interpreter = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    if dynamic is None:
        return ElfInfo(bits, info.little_endian, machine, e_type, interpreter)
    return _dynamic(f, info, interpreter, dynamic, loads, end)


def _dynamic(f: IO[bytes], info: ElfInfo, interpreter: str | None,
             dynamic: tuple[int, int], loads: list[tuple[int, int, int]], end: str) -> ElfInfo:
    offset, size = dynamic
    if size > _MAX_DYNAMIC:
        raise ElfError(f"implausible dynamic segment size {size}")
    entry_fmt = end + ("qQ" if info.bits == 64 else "iI")
    entry_size = struct.calcsize(entry_fmt)
    # A cut file must not pass for one without dependencies: the segment is all
    # on disk (PT_DYNAMIC's filesz) in every file a linker writes.
    data = _exact(f, offset, size, "dynamic segment")
    strtab = strsz = None
    needed: list[int] = []
    named: dict[int, int] = {}
    for tag, value in struct.iter_unpack(entry_fmt, data[: len(data) - len(data) % entry_size]):
        if tag == DT_NULL:
            break
        if tag == DT_NEEDED:
            needed.append(value)
        elif tag in (DT_SONAME, DT_RPATH, DT_RUNPATH):
            named[tag] = value
        elif tag == DT_STRTAB:
            strtab = value
        elif tag == DT_STRSZ:
            strsz = value
    if not needed and not named:
        return ElfInfo(info.bits, info.little_endian, info.machine, info.type, interpreter)
    if strtab is None:
        raise ElfError("dynamic segment names strings but has no DT_STRTAB")
    # DT_STRTAB is an address in memory: find the file offset of the segment holding it.
    for vaddr, filesz, seg_offset in loads:
        if vaddr <= strtab < vaddr + filesz:
            base = strtab - vaddr + seg_offset
            limit = strsz if strsz is not None else vaddr + filesz - strtab
            break
    else:
        raise ElfError(f"DT_STRTAB {strtab:#x} is in no loaded segment")

    def string(index: int) -> str:
        if index >= limit:
            raise ElfError(f"string offset {index} beyond the string table ({limit} bytes)")
        return _cstring(f, base + index, min(limit - index, _MAX_STRING))

    def path_list(tag: int) -> tuple[str, ...]:
        return tuple(string(named[tag]).split(":")) if tag in named else ()

    return ElfInfo(info.bits, info.little_endian, info.machine, info.type, interpreter,
                   needed=tuple(string(i) for i in needed),
                   soname=string(named[DT_SONAME]) if DT_SONAME in named else None,
                   rpath=path_list(DT_RPATH), runpath=path_list(DT_RUNPATH))


def _cstring(f: IO[bytes], offset: int, limit: int) -> str:
    """The NUL-terminated string at `offset`, at most `limit` bytes long."""
    out = b""
    while len(out) < limit:
        chunk = _read_at(f, offset + len(out), min(_STRING_CHUNK, limit - len(out)))
        if not chunk:
            break
        nul = chunk.find(b"\0")
        if nul >= 0:
            return (out + chunk[:nul]).decode("utf-8", "surrogateescape")
        out += chunk
    raise ElfError(f"unterminated string at offset {offset}")

"""Minimal ELF files made byte by byte, for link-check tests.

`make_elf(...)` gives a file the dynamic loader would parse the way a linker
writes it: one PT_LOAD mapping the whole file at address 0x400000, PT_INTERP
if asked, PT_DYNAMIC with DT_NEEDED/SONAME/RPATH/RUNPATH pointing into a
.dynstr. Any class, byte order and machine, so 32-bit and foreign-arch
libraries need no cross compiler.
"""

from __future__ import annotations

import struct

EM_386, EM_X86_64, EM_AARCH64 = 3, 62, 183
ET_EXEC, ET_DYN = 2, 3
INTERP64 = "/lib64/ld-linux-x86-64.so.2"
BASE = 0x400000


def make_elf(*, bits: int = 64, little: bool = True, machine: int = EM_X86_64,
             type: int = ET_DYN, interp: str | None = None, needed: tuple[str, ...] = (),
             soname: str | None = None, rpath: str | None = None,
             runpath: str | None = None) -> bytes:
    end = "<" if little else ">"
    ehsize, phentsize = (64, 56) if bits == 64 else (52, 32)
    dynamic = bool(needed or soname or rpath or runpath)
    phnum = 1 + (interp is not None) + dynamic
    offset = ehsize + phnum * phentsize
    interp_bytes = interp.encode() + b"\0" if interp is not None else b""
    interp_off = offset
    offset += len(interp_bytes)
    strtab = b"\0"
    tags: list[tuple[int, int]] = []

    def add(s: str) -> int:
        nonlocal strtab
        pos = len(strtab)
        strtab += s.encode() + b"\0"
        return pos

    for n in needed:
        tags.append((1, add(n)))
    if soname is not None:
        tags.append((14, add(soname)))
    if rpath is not None:
        tags.append((15, add(rpath)))
    if runpath is not None:
        tags.append((29, add(runpath)))
    str_off = offset
    offset += len(strtab)
    offset += -offset % 8
    tags += [(5, BASE + str_off), (10, len(strtab)), (0, 0)]
    dyn_fmt = end + ("qQ" if bits == 64 else "iI")
    dyn = b"".join(struct.pack(dyn_fmt, t, v) for t, v in tags) if dynamic else b""
    dyn_off = offset
    total = dyn_off + len(dyn)

    def phdr(p_type: int, off: int, size: int) -> bytes:
        if bits == 64:
            return struct.pack(end + "IIQQQQQQ", p_type, 4, off, BASE + off, BASE + off,
                               size, size, 8)
        return struct.pack(end + "IIIIIIII", p_type, off, BASE + off, BASE + off, size, size,
                           4, 4)

    phdrs = phdr(1, 0, total)
    if interp is not None:
        phdrs += phdr(3, interp_off, len(interp_bytes))
    if dynamic:
        phdrs += phdr(2, dyn_off, len(dyn))
    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1 if little else 2, 1]) + bytes(9)
    if bits == 64:
        header = ident + struct.pack(end + "HHIQQQIHHHHHH", type, machine, 1, BASE, ehsize, 0,
                                     0, ehsize, phentsize, phnum, 64, 0, 0)
    else:
        header = ident + struct.pack(end + "HHIIIIIHHHHHH", type, machine, 1, BASE, ehsize, 0,
                                     0, ehsize, phentsize, phnum, 40, 0, 0)
    body = header + phdrs + interp_bytes + strtab
    body += bytes(dyn_off - len(body))
    return body + dyn


def program(*needed: str, interp: str = INTERP64, **kw) -> bytes:
    return make_elf(interp=interp, needed=needed, **kw)


def library(soname: str, *needed: str, **kw) -> bytes:
    return make_elf(soname=soname, needed=needed, **kw)

"""elf.read_elf: loader fields of crafted and gcc-built files; garbage never crashes it."""

from __future__ import annotations

import io
import random
import shutil
import subprocess

import pytest
from elfmaker import EM_386, EM_AARCH64, EM_X86_64, ET_EXEC, INTERP64, make_elf

from assembler.linkcheck.elf import ElfError, ElfInfo, read_elf


def parse(data: bytes) -> ElfInfo | None:
    return read_elf(io.BytesIO(data))


def test_all_loader_fields_64_bit_little_endian():
    info = parse(make_elf(interp=INTERP64, needed=("libfoo.so.1", "libc.so.6"),
                          soname="libbar.so.2", runpath="$ORIGIN/../lib:/opt/x"))
    assert info == ElfInfo(64, True, EM_X86_64, 3, INTERP64, ("libfoo.so.1", "libc.so.6"),
                           "libbar.so.2", (), ("$ORIGIN/../lib", "/opt/x"))


@pytest.mark.parametrize("bits, little, machine", [(32, True, EM_386), (64, False, EM_AARCH64),
                                                   (32, False, 8)])
def test_other_classes_and_byte_orders(bits, little, machine):
    info = parse(make_elf(bits=bits, little=little, machine=machine, type=ET_EXEC,
                          interp="/lib/ld.so.1", needed=("libc.so.6",), rpath="/opt/lib"))
    assert (info.bits, info.little_endian, info.machine, info.type) == (bits, little, machine,
                                                                        ET_EXEC)
    assert (info.interpreter, info.needed, info.rpath, info.runpath) == \
        ("/lib/ld.so.1", ("libc.so.6",), ("/opt/lib",), ())


def test_static_file_has_nothing_to_load():
    info = parse(make_elf(type=ET_EXEC))
    assert info is not None and info.interpreter is None and info.needed == ()


@pytest.mark.parametrize("data", [b"", b"\x7fEL", b"#!/bin/sh\n", b"MZ" + bytes(100)])
def test_not_elf_is_none(data):
    assert parse(data) is None


def test_every_truncation_is_an_elf_error_or_the_full_answer():
    full_bytes = make_elf(interp=INTERP64, needed=("libfoo.so.1",), soname="libx.so.1",
                          rpath="/r")
    full = parse(full_bytes)
    for cut in range(4, len(full_bytes)):
        try:
            got = parse(full_bytes[:cut])
        except ElfError:
            continue
        # Only a cut in the padding after everything the loader reads may parse.
        assert got == full, cut


def test_random_garbage_after_the_magic_never_crashes():
    rng = random.Random(4)
    base = bytearray(make_elf(interp=INTERP64, needed=("libfoo.so.1",), runpath="/x"))
    outcomes = set()
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(4, len(data))] = rng.randrange(256)
        try:
            parse(bytes(data))
            outcomes.add("parsed")
        except ElfError:
            outcomes.add("error")
    assert outcomes == {"parsed", "error"}  # both paths were really exercised


class CountingReader(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.requested = 0

    def read(self, n: int = -1) -> bytes:
        self.requested += n if n >= 0 else 1 << 40
        return super().read(n)


def test_hostile_header_counts_are_refused_before_reading():
    data = bytearray(make_elf(needed=("libfoo.so.1",)))
    data[56:58] = (0xFFFF).to_bytes(2, "little")  # e_phnum
    f = CountingReader(bytes(data) + bytes(1 << 20))
    with pytest.raises(ElfError, match="program header"):
        read_elf(f)
    assert f.requested < 4096


def test_reads_headers_not_the_whole_file():
    f = CountingReader(make_elf(interp=INTERP64, needed=("libfoo.so.1",)) + bytes(8 << 20))
    assert read_elf(f).needed == ("libfoo.so.1",)
    assert f.requested < 8192


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_gcc_built_program_and_library(tmp_path):
    (tmp_path / "foo.c").write_text("int foo(void) { return 42; }\n")
    (tmp_path / "app.c").write_text("int foo(void);\nint main(void) { return foo() != 42; }\n")
    lib = tmp_path / "libfoo.so.1"
    app = tmp_path / "app"
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", "-o", str(lib),
                    str(tmp_path / "foo.c")], check=True)
    subprocess.run(["gcc", "-o", str(app), str(tmp_path / "app.c"), str(lib),
                    "-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags"], check=True)
    with open(app, "rb") as f:
        a = read_elf(f)
    with open(lib, "rb") as f:
        b = read_elf(f)
    assert a.interpreter == INTERP64 and a.needed[0] == "libfoo.so.1" and "libc.so.6" in a.needed
    assert a.runpath == ("$ORIGIN/../lib",) and a.rpath == ()
    assert b.soname == "libfoo.so.1" and b.interpreter is None and b.abi == a.abi

"""Each package-contents limit on its own (fetch/boundedtar.py), on small in-memory tars."""

from __future__ import annotations

import dataclasses
import io
import tarfile

import pytest
from hostiletar import header, member, tar

from assembler.errors import MalformedError
from assembler.fetch.boundedtar import Budget, Limits, open_bytes, open_stream, parse_size

BASE = Limits.from_env({})


def _read(data: bytes, limits: Limits = BASE, declared: int | None = None) -> int:
    """Read every member as the package readers do; returns the bytes of file content."""
    budget = Budget("pkg.deb (data.tar)", limits, declared, "Installed-Size")
    total = 0
    with open_stream(io.BytesIO(data), "pkg.deb (data.tar)", limits) as tf:
        for info in tf:
            budget.admit(info)
            f = tf.extractfile(info) if info.isreg() else None
            total += len(f.read()) if f else 0
    return total


def _files(n: int, size: int = 10) -> bytes:
    return tar([(member(f"./f{i}", size), b"x" * size) for i in range(n)])


def test_honest_tar_reads():
    assert _read(_files(3)) == 30


@pytest.mark.parametrize("field, value, data, words", [
    ("members", 2, _files(3), ["more than 2 members", "ASSEMBLER_MAX_MEMBERS"]),
    ("member", 5, _files(1), ["declares 10 bytes", "ASSEMBLER_MAX_MEMBER_SIZE"]),
    ("package", 25, _files(3), ["more than 25 bytes", "ASSEMBLER_MAX_PACKAGE_SIZE"]),
    ("stream", 4096, _files(8), ["decompresses to more than 4,096", "ASSEMBLER_MAX_TAR_STREAM"]),
    ("name", 8, tar([(member("./" + "n" * 20), b"")]), ["longer than 8 bytes"]),
    ("header", 600, tar([(member("./x", pax={"comment": "c" * 700}), b"")]),
     ["extension header declares", "ASSEMBLER_MAX_TAR_HEADER"]),
])
def test_each_limit(field, value, data, words):
    limits = dataclasses.replace(BASE, **{field: value})
    with pytest.raises(MalformedError) as e:
        _read(data, limits)
    assert all(w in str(e.value) for w in words), e.value


def test_installed_size_bound_and_margin():
    data = tar([(member("./big", 3 << 20), b"\0" * (3 << 20))])
    with pytest.raises(MalformedError, match="2x its signed Installed-Size of 1,024 bytes"):
        _read(data, declared=1024)
    assert _read(data, dataclasses.replace(BASE, margin=4), declared=1 << 20) == 3 << 20
    assert _read(data, dataclasses.replace(BASE, margin=0), declared=1024) == 3 << 20


def test_chained_extension_headers_refused():
    chain = b"".join(header("././@LongLink", 100, tarfile.GNUTYPE_LONGNAME) + b"a" * 512
                     for _ in range(2000))
    with pytest.raises(MalformedError, match="chains more than 4 extension headers"):
        _read(chain + tar([(member("./x"), b"")]))


def test_global_headers_add_up():
    blocks = b"".join(header(f"./g{i}", 400 * 1024, tarfile.XGLTYPE) +
                      (b"%d k%d=%s\n" % (400 * 1024, i, b"v" * (400 * 1024 - 16)))
                      .ljust(400 * 1024, b"\n") for i in range(4))
    with pytest.raises(MalformedError, match="global tar headers add up"):
        _read(blocks + tar([(member("./x"), b"")]))


@pytest.mark.parametrize("pax", [{"size": "12ab"}, {"mtime": "soon"}, {"uid": "-"},
                                 {"GNU.sparse.map": "0,10"}, {"GNU.sparse.major": "1",
                                                               "GNU.sparse.minor": "0"}])
def test_pax_tricks_refused(pax):
    with pytest.raises(MalformedError):
        _read(tar([(member("./x", 5, pax=pax), b"hello")]))


def test_damaged_second_header_is_not_the_end():
    data = bytearray(_files(3))
    data[512 * 2 + 148] ^= 1   # the second member's checksum
    with pytest.raises(MalformedError, match="damaged or cut short"):
        _read(bytes(data))


def test_in_memory_tars_are_checked_too():
    with pytest.raises(MalformedError, match="is sparse"), \
            open_bytes(tar([(member("./x", pax={"GNU.sparse.size": "9" * 30}), b"")]),
                       "x.apk (control)", BASE) as tf:
        tf.getmembers()


@pytest.mark.parametrize("text, value", [("123", 123), ("64K", 64 << 10), ("8m", 8 << 20),
                                         ("2G", 2 << 30), ("1T", 1 << 40)])
def test_sizes(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("env", [{"ASSEMBLER_MAX_TAR_NAME": "x"}, {"ASSEMBLER_MAX_MEMBERS": "-1"},
                                 {"ASSEMBLER_INSTALLED_SIZE_MARGIN": "1.5"}])
def test_bad_variables_are_one_paragraph(env):
    with pytest.raises(MalformedError) as e:
        Limits.from_env(env)
    assert next(iter(env)) in str(e.value)

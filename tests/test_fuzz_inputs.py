"""Must-show (issue 10): bounded fuzzing of the parsers of package content and user input.

Each target starts from a valid input (a .deb, an .apk, a spec, a slice definition
file, an auth file), mutates it with hypothesis (derandomized: the same examples on
every run, no example database) and asserts that every input ends in success or one
of our own errors (AssemblerError), never another exception. Budgets are a few
hundred examples each, about a second or two per target.

Package mutations are made below the compression and the hashes, where a hostile
repository works: the tars are mutated and then packaged properly (valid ar framing,
a .PKGINFO datahash that matches), so the examples reach the tar and header parsers
instead of dying at a CRC.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tarfile
import tempfile
from pathlib import Path

import pytest
from aptrepo import Entry, File, Pkg, Symlink, ar_archive, build_deb, format_control
from fuzzing import examples as fuzz_examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_apk_support import file_info, gz, tar_bytes

from assembler.alpine.package import open_apk
from assembler.debian import deb
from assembler.errors import AssemblerError
from assembler.push.credentials import lookup
from assembler.rootfs.tree import Tree
from assembler.slices.catalog import Catalog
from assembler.spec.document import load_spec

REPO = Path(__file__).resolve().parents[1]


def fuzz(examples: int):
    return settings(derandomize=True, database=None, deadline=None,
                    max_examples=fuzz_examples(examples),
                    suppress_health_check=list(HealthCheck))


# Byte and text mutations: overwrite, insert, delete, truncate, at chosen positions.
_TOKENS = [b"\x00", b"\xff", b"\n", b"0", b"9" * 12, b"7777777", b" ", b"=", b"/", b"..",
           b"GNU.sparse.size=99999999999999999999", b"size=-1", b"path=../x", b"\x80" * 8]


_PRINTABLE = st.text(st.characters(min_codepoint=9, max_codepoint=126), min_size=1,
                     max_size=16).map(str.encode)


@st.composite
def mutated(draw, seed: bytes, tokens: list[bytes] = _TOKENS,
            text: bool = False) -> bytes:
    """`seed` with 1 to 6 mutations; `text` keeps inserted bytes printable ASCII, so a
    YAML or JSON document mostly stays one and the parser behind it is reached."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["set", "insert", "delete", "token", "token", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "set" and data:
            data[pos] = draw(st.integers(32, 126) if text else st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(_PRINTABLE if text else st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif kind == "token":
            tok = draw(st.sampled_from(tokens))
            data[pos:pos + (len(tok) if draw(st.booleans()) else 0)] = tok
        elif kind == "truncate" and pos > len(data) // 2:
            del data[pos:]
    return bytes(data)


def _header_offsets(tar: bytes) -> list[int]:
    """Where `tar`'s header blocks are: 512-aligned blocks whose checksum is right."""
    out = []
    for off in range(0, len(tar) - 511, 512):
        block = tar[off:off + 512]
        try:
            stored = int(block[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
        except ValueError:
            continue
        if block.strip(b"\0") and stored in tarfile.calc_chksums(block):
            out.append(off)
    return out


@st.composite
def tar_mutated(draw, seed: bytes) -> bytes:
    """`seed` mutated, then its header checksums made right again: the examples reach
    tarfile's field and extension-header parsing instead of its checksum test."""
    data = bytearray(draw(mutated(seed)))
    for off in _header_offsets(seed):
        block = data[off:off + 512]
        if len(block) == 512:
            chk = 256 + sum(block[:148]) + sum(block[156:])
            data[off + 148:off + 156] = b"%06o\0 " % chk
    return bytes(data)


def _own_errors_only(action) -> None:
    with contextlib.suppress(AssemblerError):
        action()


# -- .deb ----------------------------------------------------------------------------

def _tar(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def _deb_tars() -> tuple[bytes, bytes]:
    pkg = Pkg("fuzz", "1.0", compression="none", files={
        "usr/bin/tool": File(b"#!/bin/sh\n", mode=0o755), "usr/share/doc/fuzz/copyright": b"c",
        "usr/lib/link": Symlink("../bin/tool"), "etc/fuzz.conf": b"x=1\n",
        "usr/bin/hard": Entry.hardlink("", "./usr/bin/tool"), "var/lib/fuzz": Entry.dir("")})
    members = []
    for e in pkg.data_entries():
        info = e.tarinfo()
        if e.name.endswith("tool"):
            info.pax_headers = {"path": e.name, "SCHILY.xattr.user.x": "y", "mtime": "1.5"}
        members.append((info, e.data))
    control = format_control(pkg.control_fields(4)).encode()
    ctl = tarfile.TarInfo("./control")
    ctl.size = len(control)
    return (_tar([(ctl, control)], tarfile.GNU_FORMAT), _tar(members, tarfile.PAX_FORMAT))


CONTROL_TAR, DATA_TAR = _deb_tars()


def _read_deb(blob: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.deb"
        path.write_bytes(blob)

        def consume() -> None:
            control = deb.read_control(path)
            with Tree(max_bytes=1 << 24) as tree:
                tree.add_tar(deb.iter_data(path, control), "fuzz")
        _own_errors_only(consume)


@fuzz(400)
@given(data=st.one_of(tar_mutated(DATA_TAR), mutated(DATA_TAR)),
       control=st.one_of(st.just(CONTROL_TAR), tar_mutated(CONTROL_TAR)))
def test_fuzz_deb_tars(data, control):
    _read_deb(ar_archive([("debian-binary", b"2.0\n"), ("control.tar", control),
                          ("data.tar", data)]))


@fuzz(200)
@given(blob=mutated(build_deb(Pkg("fuzz", "1.0", compression="gz",
                                  files={"usr/bin/tool": b"x" * 100})),
                    [*_TOKENS, b"!<arch>\n", b"data.tar.xz     ", b"`\n"]))
def test_fuzz_deb_file(blob):
    _read_deb(blob)


# -- .apk ----------------------------------------------------------------------------

def _apk_parts() -> tuple[bytes, bytes]:
    members = []
    for name, content in (("usr/bin/hello", b"#!/bin/sh\necho hi\n"), ("etc/hello.conf", b"x")):
        info = file_info(name, mode=0o755)
        info.pax_headers = {"APK-TOOLS.checksum.SHA1": hashlib.sha1(content).hexdigest()}
        members.append((info, content))
    link = file_info("usr/bin/hi", type_=tarfile.SYMTYPE)
    link.linkname = "hello"
    members.append((link, b""))
    pkginfo = ("pkgname = hello\npkgver = 1.0-r0\narch = x86_64\nsize = 4096\n"
               "origin = hello\nbuilddate = 1700000000\nprovider_priority = 10\n"
               "depend = so:libc.musl-x86_64.so.1\nprovides = cmd:hello=1.0-r0\n")
    return pkginfo.encode(), tar_bytes(members)


PKGINFO, APK_DATA = _apk_parts()


def _apk(pkginfo: bytes, data_tar: bytes) -> bytes:
    data = gz(data_tar)
    text = pkginfo + b"datahash = " + hashlib.sha256(data).hexdigest().encode() + b"\n"
    control = gz(tar_bytes([(file_info(".PKGINFO"), text)], fmt=tarfile.USTAR_FORMAT,
                           end_marker=False))
    return control + data


def _read_apk(blob: bytes) -> None:
    def consume() -> None:
        apk = open_apk(blob, require_signature=False, name="fuzz.apk")
        for e in apk.iter_data():
            e.read()
    _own_errors_only(consume)


@fuzz(400)
@given(pkginfo=st.one_of(st.just(PKGINFO), mutated(PKGINFO, [b" = ", b"size = x", b"\n",
                                                             b"=", b"-1", b"\x00"], True)),
       data=st.one_of(st.just(APK_DATA), tar_mutated(APK_DATA)))
def test_fuzz_apk(pkginfo, data):
    _read_apk(_apk(pkginfo, data))


@fuzz(150)
@given(blob=mutated(_apk(PKGINFO, APK_DATA), [*_TOKENS, b"\x1f\x8b\x08"]))
def test_fuzz_apk_file(blob):
    _read_apk(blob)


# -- spec and slice definitions ----------------------------------------------------

SPEC = (REPO / "specs" / "python3.yaml").read_text() + """\
annotations: {org.opencontainers.image.title: x}
cmd: [-c, "print(1)"]
labels: {a: b}
strip: [docs, man]
paths:
  /etc/motd: {text: "hi\\n", mode: 0644}
"""
_YAML = [b":", b"- ", b"{", b"}", b"[", b"]", b"!!binary ", b"&a ", b"*a", b"\n", b"  ",
         b"~", b"null", b"0x1f", b"1e999", b"\x00", b"\t", b"'", b'"', b"? ", b"|", b"%YAML"]


@fuzz(300)
@given(text=mutated(SPEC.encode(), _YAML, text=True))
def test_fuzz_spec(text):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "image.yaml"
        p.write_bytes(text)
        _own_errors_only(lambda: load_spec(p))


SLICES = (REPO / "repos" / "debian" / "bookworm" / "slices" / "libc6.yaml").read_bytes()


@fuzz(300)
@given(text=mutated(SLICES, [*_YAML, b"/**", b"{arch: [amd64]}", b"{until: mutate}",
                             b"essential:", b"libc6_libs", b"{generate: manifest}"],
                         text=True))
def test_fuzz_slice_definitions(text):
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "libc6.yaml").write_bytes(text)
        _own_errors_only(lambda: Catalog.load(Path(d)))


# -- auth file -------------------------------------------------------------------------

HOST = "127.0.0.1:5000"
_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12),
                       st.sampled_from(["", "\x00", "x" * 300, "dXNlcjpwdw==", "ü", "a/b",
                                        "//79", "dXNlcg=="]))
_json = st.recursive(_json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["auth", "identitytoken", "username", "password", HOST,
                                     f"http://{HOST}/v1/", "x"]), inner, max_size=4)),
    max_leaves=12)
_entry = st.fixed_dictionaries({}, optional={
    k: st.one_of(_json_leaf, _json) for k in ("auth", "identitytoken", "username", "password")})
_auth_file = st.fixed_dictionaries({}, optional={
    "auths": st.one_of(_json, st.dictionaries(st.sampled_from([HOST, f"https://{HOST}",
                                                                f"{HOST}/team"]),
                                              st.one_of(_entry, _json), max_size=2)),
    "credHelpers": st.one_of(_json, st.dictionaries(st.just(HOST), _json_leaf, max_size=1)),
    "credsStore": _json_leaf})


@fuzz(300)
@given(auth=st.one_of(_auth_file, _json), raw=st.none() | st.binary(max_size=40))
def test_fuzz_auth_file(auth, raw):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "auth.json"
        p.write_bytes(raw if raw is not None else json.dumps(auth).encode())
        _own_errors_only(lambda: lookup(HOST, "team/app", files=[p]))


@pytest.mark.parametrize("blob", [b"", b"!<arch>\n", ar_archive([("debian-binary", b"2.0\n")])])
def test_deb_edge_cases_are_our_errors(blob):
    with pytest.raises(AssemblerError), tempfile.TemporaryDirectory() as d:
        (Path(d) / "x.deb").write_bytes(blob)
        deb.read_control(Path(d) / "x.deb")

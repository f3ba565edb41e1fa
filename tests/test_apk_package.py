""".apk reading and verification on every real fixture package, plus crafted attacks."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest
from test_apk_support import FIXTURES, Signer, file_info, gz, make_apk, tar_bytes

from assembler.alpine.installed import parse_installed
from assembler.alpine.package import open_apk, parse_pkginfo
from assembler.alpine.signing import load_keys, member_spans
from assembler.errors import IntegrityError

pytestmark = pytest.mark.needs_shared

PKGS = FIXTURES / "packages"
ALPINE_KEY = "alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub"

# name -> (signing key or None, control checksum Q1 computed once and pinned here,
#          name, version, data entries)
EXPECTED = {
    "alpine-baselayout-3.2.0-r23.apk": (
        ALPINE_KEY, "Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=", "alpine-baselayout", "3.2.0-r23", 83,
    ),
    "hello-wolfi-2.12.1-r0.apk": (
        "melange.rsa.pub", "Q1j9huCmxqWKDR+abKskcY8e/aZMo=", "hello-wolfi", "2.12.1-r0", 144,
    ),
    "hello-2.12-r0.apk": (
        "local-melange.rsa.pub", "Q1mcSFBWnEvXY2r9B55mGVvpEzON4=", "hello", "2.12-r0", 144,
    ),
    "hello-0.1.0-r0.apk": (None, "Q1DNWZeWkviN7MJedLpYM8yBvmnGM=", "hello", "0.1.0-r0", 1),
    "replaces-0.0.1-r0.apk": (None, "Q1fHE4AsjeXVD+2kHg7AHvGDN+FPg=", "replaces", "0.0.1-r0", 6),
}  # fmt: skip


@pytest.fixture(scope="module")
def keys() -> dict[str, bytes]:
    return load_keys(FIXTURES / "keys")


def test_every_fixture_package_is_covered() -> None:
    assert sorted(p.name for p in PKGS.glob("*.apk")) == sorted(EXPECTED)


@pytest.mark.parametrize("filename", sorted(EXPECTED))
def test_fixture_package_policy(filename: str, keys: dict[str, bytes]) -> None:
    key, checksum, name, version, n_entries = EXPECTED[filename]
    path = PKGS / filename
    if key == ALPINE_KEY:
        pkg = open_apk(path, trusted_keys=keys, require_signature=True)
        assert pkg.signed_by == ALPINE_KEY
    else:
        with pytest.raises(IntegrityError) as exc:
            open_apk(path, trusted_keys=keys, require_signature=True)
        message = str(exc.value)
        assert filename in message
        if key:
            assert f"signed by unknown key {key}" in message
        else:
            assert "not signed" in message
        pkg = open_apk(path, trusted_keys=keys, require_signature=False)
        assert pkg.signed_by is None
        assert [s.key_name for s in pkg.signatures] == ([key] if key else [])
    # The control checksum is what an index's C: pins; datahash was checked on open.
    assert pkg.control_checksum == checksum == pkg.info.checksum
    assert pkg.pkginfo_values("datahash") == [pkg.datahash]
    assert (pkg.info.name, pkg.info.version) == (name, version)
    assert pkg.size == path.stat().st_size
    # pinning the expected checksum (as a fetch through a verified index does)
    open_apk(path, require_signature=False, expected_checksum=checksum)
    with pytest.raises(IntegrityError, match="does not match the expected"):
        open_apk(path, require_signature=False, expected_checksum="Q1" + "A" * 27 + "=")
    entries = []
    for entry in pkg.iter_data():
        content = entry.read()  # verifies each file against its SHA1 header
        if entry.info.isfile():
            assert entry.sha1 == hashlib.sha1(content).hexdigest()
        entries.append(entry)
    assert len(entries) == n_entries


def test_checksums_computed_from_the_files_match_what_apk_computes(
    keys: dict[str, bytes],
) -> None:
    # The installed db fixture was written by apk for alpine-baselayout r22; the
    # files unchanged in r23 must carry the very same Z: values.
    db = {
        p.record.name: p
        for p in parse_installed((FIXTURES / "installed-db" / "installed").read_text())
    }
    apk_z = {
        f"{d.path}/{f.name}": f.checksum for d in db["alpine-baselayout"].dirs for f in d.files
    }
    pkg = open_apk(PKGS / "alpine-baselayout-3.2.0-r23.apk", trusted_keys=keys)
    ours = {e.path: e.checksum for e in pkg.iter_data() if e.checksum}
    common = set(ours) & set(apk_z)
    assert len(common) >= 10
    assert {p: ours[p] for p in common} == {p: apk_z[p] for p in common}
    assert ours["var/run"] == apk_z["var/run"]  # a symlink: sha1 of its target


def test_pkginfo_fields(keys: dict[str, bytes]) -> None:
    pkg = open_apk(PKGS / "alpine-baselayout-3.2.0-r23.apk", trusted_keys=keys)
    info = pkg.info
    assert info.depends == [
        "alpine-baselayout-data=3.2.0-r23",
        "/bin/sh",
        "so:libc.musl-aarch64.so.1",
    ]
    assert info.provides == ["cmd:mkmntdirs=3.2.0-r23"]
    assert (info.arch, info.installed_size, info.build_time) == ("aarch64", 339968, 1662926906)
    assert info.license == "GPL-2.0-only" and info.origin == "alpine-baselayout"
    assert set(pkg.scripts) == {".pre-install", ".post-install", ".pre-upgrade", ".post-upgrade"}
    replaces = open_apk(PKGS / "replaces-0.0.1-r0.apk", require_signature=False)
    assert replaces.info.replaces == ["foo", "bar"]
    hello = open_apk(PKGS / "hello-2.12-r0.apk", require_signature=False)
    assert hello.info.provides == ["cmd:hello=2.12-r0"]
    assert hello.info.url == ""


def test_parse_pkginfo_keeps_order_and_repeats() -> None:
    pairs = parse_pkginfo("# c\npkgname = a\ndepend = x\ndepend = y\nurl = \n")
    assert pairs == [("pkgname", "a"), ("depend", "x"), ("depend", "y"), ("url", "")]


# --- tampering ----------------------------------------------------------------


def _flip(data: bytes, offset: int) -> bytes:
    b = bytearray(data)
    b[offset] ^= 0x01
    return bytes(b)


@pytest.mark.parametrize("member", ["control", "data"])
@pytest.mark.parametrize("where", ["middle", "gzip-mtime"])
def test_one_changed_byte_is_refused(
    member: str, where: str, keys: dict[str, bytes], tmp_path: Path
) -> None:
    original = (PKGS / "alpine-baselayout-3.2.0-r23.apk").read_bytes()
    _sig, ctl, data = member_spans(original, what="apk")
    start, end = ctl if member == "control" else data
    offset = (start + end) // 2 if where == "middle" else start + 5
    copy = tmp_path / "alpine-baselayout-3.2.0-r23.apk"
    copy.write_bytes(_flip(original, offset))
    with pytest.raises(IntegrityError) as exc:
        open_apk(copy, trusted_keys=keys)
    if where == "gzip-mtime":
        # still inflates: the signature (control) or the datahash (data) catches it
        expect = "bad signature" if member == "control" else "does not match the datahash"
        assert expect in str(exc.value)


def test_tampered_unsigned_package_is_caught_by_datahash(tmp_path: Path) -> None:
    original = (PKGS / "hello-0.1.0-r0.apk").read_bytes()
    _ctl, (start, _end) = member_spans(original, what="apk")
    with pytest.raises(IntegrityError, match="datahash"):
        open_apk(_flip(original, start + 5), require_signature=False)


def test_tampered_unsigned_control_is_caught_by_the_index_checksum() -> None:
    original = (PKGS / "hello-0.1.0-r0.apk").read_bytes()
    checksum = EXPECTED["hello-0.1.0-r0.apk"][1]
    with pytest.raises(IntegrityError, match="control checksum"):
        open_apk(_flip(original, 5), require_signature=False, expected_checksum=checksum)


# --- crafted packages ---------------------------------------------------------


def test_crafted_signed_package_round_trip() -> None:
    signer = Signer.new()
    blob = make_apk(
        [
            (file_info("usr", mode=0o755, type_=tarfile.DIRTYPE), b""),
            (file_info("usr/hello"), b"hi\n"),
        ],
        signer=signer,
    )
    pkg = open_apk(blob, trusted_keys={signer.key_name: signer.public_pem})
    assert pkg.signed_by == signer.key_name
    seen = [(e.path, e.read()) for e in pkg.iter_data()]
    assert seen == [("usr", b""), ("usr/hello", b"hi\n")]


@pytest.mark.parametrize(
    "evil",
    ["../etc/passwd", "usr/../../etc/passwd", "/etc/passwd", "./../x"],
)
def test_path_traversal_is_refused(evil: str) -> None:
    blob = make_apk([(file_info("usr/ok"), b"fine"), (file_info(evil), b"owned")])
    pkg = open_apk(blob, require_signature=False)  # verifies fine: the attack is in the data
    it = pkg.iter_data()
    assert next(it).path == "usr/ok"
    with pytest.raises(IntegrityError, match="refusing the package"):
        next(it)


def test_hardlink_escaping_the_root_is_refused() -> None:
    link = file_info("usr/link", type_=tarfile.LNKTYPE)
    link.linkname = "../../etc/shadow"
    blob = make_apk([(link, b"")])
    with pytest.raises(IntegrityError, match="climbs out"):
        list(open_apk(blob, require_signature=False).iter_data())


def test_file_content_must_match_its_sha1_header() -> None:
    # A lying per-file header under a correct datahash: only the per-file check notices.
    lying = file_info("usr/hello")
    lying.pax_headers = {"APK-TOOLS.checksum.SHA1": hashlib.sha1(b"other").hexdigest()}
    data_member = gz(tar_bytes([(lying, b"hello")]))
    pkginfo = f"pkgname = x\npkgver = 1-r0\ndatahash = {hashlib.sha256(data_member).hexdigest()}\n"
    control = gz(tar_bytes([(file_info(".PKGINFO"), pkginfo.encode())]))
    pkg = open_apk(control + data_member, require_signature=False)
    for entry in pkg.iter_data():
        with pytest.raises(IntegrityError, match="APK-TOOLS.checksum.SHA1"):
            entry.read()


def test_reading_after_the_stream_moved_on_is_an_error() -> None:
    blob = make_apk([(file_info("a"), b"1"), (file_info("b"), b"2")])
    first, _second = list(open_apk(blob, require_signature=False).iter_data())
    with pytest.raises(RuntimeError, match="moved on"):
        first.read()


def test_missing_datahash_is_refused() -> None:
    control = gz(tar_bytes([(file_info(".PKGINFO"), b"pkgname = x\npkgver = 1-r0\n")]))
    data = gz(tar_bytes([(file_info("f"), b"x")]))
    with pytest.raises(IntegrityError, match="no datahash"):
        open_apk(control + data, require_signature=False)


def test_package_without_data_is_refused() -> None:
    blob = make_apk([(file_info("f"), b"x")])
    ctl_end = member_spans(blob, what="apk")[0][1]
    with pytest.raises(IntegrityError, match="incomplete"):
        open_apk(blob[:ctl_end], require_signature=False)


def test_data_split_over_several_gzip_members_streams_as_one() -> None:
    # apk hashes and reads everything after the control member as one gzip
    # stream; a data tar spread over two members must still verify and stream.
    payload = tar_bytes([(file_info("a"), b"1" * 3000), (file_info("b"), b"2")])
    data = gz(payload[:1024]) + gz(payload[1024:])
    pkginfo = f"pkgname = x\npkgver = 1-r0\ndatahash = {hashlib.sha256(data).hexdigest()}\n"
    control = gz(tar_bytes([(file_info(".PKGINFO"), pkginfo.encode())]))
    pkg = open_apk(control + data, require_signature=False)
    assert [(e.path, len(e.read())) for e in pkg.iter_data()] == [("a", 3000), ("b", 1)]

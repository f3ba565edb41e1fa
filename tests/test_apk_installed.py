"""/lib/apk/db/installed: parse apk's own file and write it back byte for byte."""

from __future__ import annotations

import stat

import pytest
from test_apk_support import FIXTURES

from assembler.alpine.installed import (
    DEFAULT_DIR_ACL,
    Acl,
    InstalledPackage,
    format_installed,
    parse_installed,
)
from assembler.alpine.package import open_apk
from assembler.alpine.signing import load_keys

pytestmark = pytest.mark.needs_shared

DB = FIXTURES / "installed-db" / "installed"


def test_round_trip_is_byte_identical() -> None:
    text = DB.read_text()
    packages = parse_installed(text)
    assert len(packages) == 14
    assert format_installed(packages) == text


def test_parsed_content() -> None:
    pkgs = {p.record.name: p for p in parse_installed(DB.read_text())}
    busybox = pkgs["busybox"]
    assert busybox.record.version == "1.35.0-r17"
    assert busybox.record.checksum == "Q1Meo+LHGPSi3uY9gIouEVb9z8Fbo="
    base = pkgs["alpine-baselayout"]
    root = next(d for d in base.dirs if d.path == "root")
    assert root.acl == Acl(0, 0, 0o700)
    crontab = next(d for d in base.dirs if d.path == "etc/crontabs").files[0]
    assert (crontab.name, crontab.acl, crontab.checksum) == (
        "root", Acl(0, 0, 0o600), "Q1vfk1apUWI4yLJGhhNRd0kJixfvY=",
    )  # fmt: skip
    tmp = next(d for d in base.dirs if d.path == "tmp")
    assert tmp.acl.mode == 0o1777
    assert "etc/motd" in base.paths()
    assert pkgs["musl"].record.provides == ["so:libc.musl-aarch64.so.1=1"]


def test_acl_with_xattr_checksum_round_trips() -> None:
    acl = Acl.parse("0:0:755:Q1abcdefabcdefabcdefabcdefabcdefab=")
    assert acl.mode == 0o755 and acl.xattr_checksum.startswith("Q1")
    assert str(acl) == "0:0:755:Q1abcdefabcdefabcdefabcdefabcdefab="


def test_build_entry_from_a_package_matches_apk_layout() -> None:
    """Filling an InstalledPackage from the .apk's data tar gives what apk wrote
    for the same package (r22 in the db vs r23 here: compare the file layout)."""
    keys = load_keys(FIXTURES / "keys")
    pkg = open_apk(FIXTURES / "packages" / "alpine-baselayout-3.2.0-r23.apk", trusted_keys=keys)
    ours = InstalledPackage(pkg.info)
    for e in pkg.iter_data():
        ours.add_entry(e.path, e.info.mode | _type_bits(e.info), e.info.uid, e.info.gid, e.checksum)
    apk = next(p for p in parse_installed(DB.read_text()) if p.record.name == "alpine-baselayout")
    assert [d.path for d in ours.dirs] == [d.path for d in apk.dirs]
    assert ours.paths() == apk.paths()
    assert {d.path: d.acl for d in ours.dirs} == {d.path: d.acl for d in apk.dirs}
    text = format_installed([ours])
    assert text.startswith("C:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=\nP:alpine-baselayout\nV:3.2.0-r23\n")
    assert "F:root\nM:0:0:700\n" in text and text.endswith("\n\n")
    assert Acl(0, 0, 0o755) == DEFAULT_DIR_ACL


def _type_bits(info) -> int:  # type: ignore[no-untyped-def]
    if info.isdir():
        return stat.S_IFDIR
    if info.issym():
        return stat.S_IFLNK
    return stat.S_IFREG

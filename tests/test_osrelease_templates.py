"""The `os-release:` templates of repos/ render what the base package ships (issue 12,
Build 1), and the signed index gives the release they are filled with.

The expected bytes are what published copies of each release's files say (base-files as
the release pocket has it; Syft's own focal fixture, syft/linux/testdata/os/ubuntu;
Trivy's lsb-release fixture for the layout Trivy reads). Ubuntu's Release says only
`Version: 24.04`, so a point release's base-files (24.04.1 in VERSION and PRETTY_NAME)
is not what an image without base-files gets: docs/sbom.md says so."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest
from test_chisel_setup import chisel_yaml

from assembler.alpine.packagedb import release_version as alpine_release
from assembler.alpine.repository import release_package_version
from assembler.debian.format import FORMAT as DEB
from assembler.distro.chisel import chisel_distro
from assembler.distro.definition import REPOS_DIR, load_distro
from assembler.errors import IntegrityError, SpecError
from assembler.lock.model import LockedIndex
from assembler.rootfs.osrelease import identity_for

_URLS = (b'HOME_URL="https://www.ubuntu.com/"\nSUPPORT_URL="https://help.ubuntu.com/"\n'
         b'BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"\n'
         b'PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"\n')

FOCAL = (b'NAME="Ubuntu"\nVERSION="20.04 LTS (Focal Fossa)"\nID=ubuntu\nID_LIKE=debian\n'
         b'PRETTY_NAME="Ubuntu 20.04 LTS"\nVERSION_ID="20.04"\n' + _URLS +
         b'VERSION_CODENAME=focal\nUBUNTU_CODENAME=focal\n')
JAMMY = (b'PRETTY_NAME="Ubuntu 22.04 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\n'
         b'VERSION="22.04 LTS (Jammy Jellyfish)"\nVERSION_CODENAME=jammy\nID=ubuntu\n'
         b'ID_LIKE=debian\n' + _URLS + b'UBUNTU_CODENAME=jammy\n')
NOBLE = (b'PRETTY_NAME="Ubuntu 24.04 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\n'
         b'VERSION="24.04 LTS (Noble Numbat)"\nVERSION_CODENAME=noble\nID=ubuntu\n'
         b'ID_LIKE=debian\n' + _URLS + b'UBUNTU_CODENAME=noble\nLOGO=ubuntu-logo\n')
RESOLUTE = (b'PRETTY_NAME="Ubuntu 26.04 LTS"\nNAME="Ubuntu"\nVERSION_ID="26.04"\n'
            b'VERSION="26.04 LTS (Resolute Raccoon)"\nVERSION_CODENAME=resolute\nID=ubuntu\n'
            b'ID_LIKE=debian\n' + _URLS + b'UBUNTU_CODENAME=resolute\nLOGO=ubuntu-logo\n')


def _lsb(series: str, codename: str, lts: str = " LTS") -> bytes:
    return (f'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE={series}\nDISTRIB_CODENAME={codename}\n'
            f'DISTRIB_DESCRIPTION="Ubuntu {series}{lts}"\n').encode()


@pytest.mark.parametrize("codename,series,os_release,debian", [
    ("focal", "20.04", FOCAL, b"bullseye/sid\n"),
    ("jammy", "22.04", JAMMY, b"bookworm/sid\n"),
    ("noble", "24.04", NOBLE, b"trixie/sid\n"),
    ("resolute", "26.04", RESOLUTE, b"forky/sid\n"),
])
def test_ubuntu_identity_is_base_files(codename, series, os_release, debian):
    identity = identity_for(load_distro(f"ubuntu/{codename}"), series)
    assert identity is not None and identity.os_release == os_release
    assert dict(identity.files) == {"etc/lsb-release": _lsb(series, codename),
                                    "etc/debian_version": debian}
    # Ubuntu has no version file that holds the Release's version.
    assert identity.version_file == "" and not identity.missing_version


def test_ubuntu_interim_release_is_not_lts():
    identity = identity_for(load_distro("ubuntu/stonking"), "26.10")
    assert identity is not None
    lines = identity.os_release.decode().splitlines()
    assert {'PRETTY_NAME="Ubuntu 26.10"', 'VERSION_ID="26.10"', "ID=ubuntu",
            "VERSION_CODENAME=stonking", 'VERSION="26.10 (Stonking Stingray)"'} <= set(lines)
    assert dict(identity.files)["etc/lsb-release"] == _lsb("26.10", "stonking", "")


def test_ubuntu_release_of_another_series_is_refused():
    with pytest.raises(IntegrityError, match="22.04"):
        identity_for(load_distro("ubuntu/noble"), "22.04")


def test_alpine_edge_takes_the_release_package_version():
    identity = identity_for(load_distro("alpine/edge"), "3.22.0_alpha20250108")
    assert identity is not None
    assert identity.os_release == (
        b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.22.0_alpha20250108\n'
        b'PRETTY_NAME="Alpine Linux edge"\nHOME_URL="https://alpinelinux.org/"\n'
        b'BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"\n')
    assert (identity.version_file, identity.version_text) == \
        ("etc/alpine-release", b"3.22.0_alpha20250108\n")
    # A numbered branch still refuses another branch's release.
    with pytest.raises(IntegrityError):
        identity_for(load_distro("alpine/v3.21"), "3.22.0_alpha20250108")


def _alpine_index(**fields) -> list[LockedIndex]:
    return [LockedIndex({"archive": "alpine", "suite": "edge", **fields})]


def test_alpine_release_comes_from_the_release_package_then_the_description():
    assert alpine_release("alpine", "edge", _alpine_index(
        description="v20250108-1234-g0123456789", **{"alpine-release": "3.22.0_alpha20250108-r0"}
    ), False) == "3.22.0_alpha20250108"
    # edge's DESCRIPTION names a snapshot or the last stable tag: never its release.
    assert alpine_release("alpine", "edge", _alpine_index(
        description="v3.21.0-1030-gbabf0a1684"), False) == ""
    assert alpine_release("alpine", "edge", _alpine_index(
        description="v3.21.3-45-g1a2b3c4d5e"), True) == "3.21.3"
    assert alpine_release("alpine", "v3.21", _alpine_index(description="v3.21.3")) == ""


def test_release_package_version_reads_the_index_records():
    items = [("musl", "so:libc.musl-x86_64.so.1", "C:Q1x\nP:musl\nV:1.2.5-r9"),
             ("alpine-release", "", "C:Q1y\nP:alpine-release\nV:3.22.0_alpha20250108-r0"),
             ("alpine-release", "", "C:Q1z\nP:alpine-release\nV:3.21.9-r0")]
    assert release_package_version(items) == "3.22.0_alpha20250108-r0"
    assert release_package_version(items[:1]) == ""


def test_ubuntu_ports_release_gives_the_version():
    noble = load_distro("ubuntu/noble")
    ports = [LockedIndex({"archive": "ubuntu-ports", "suite": "noble", "version": "24.04"}),
             LockedIndex({"archive": "ubuntu-ports", "suite": "noble-updates",
                          "version": "24.04"})]
    assert DEB.release_version(noble, ports) == "24.04"
    assert DEB.release_version(noble, []) == ""
    # Debian's security archive has another suite: it never stands in for the main one.
    bookworm = load_distro("debian/bookworm")
    security = [LockedIndex({"archive": "debian-security", "suite": "bookworm-security",
                             "version": "12"})]
    assert DEB.release_version(bookworm, security) == ""


@pytest.mark.parametrize("path", ["etc/lsb-release", "/etc/../../x", "/etc//x", "/"])
def test_template_file_outside_a_plain_absolute_path_is_refused(path):
    noble = load_distro("ubuntu/noble")
    template = {**noble.extra["os-release"], "files": {path: "x\n"}}
    distro = dataclasses.replace(noble, extra={**noble.extra, "os-release": template})
    with pytest.raises(SpecError, match="os-release files"):
        identity_for(distro, "24.04")


def test_template_file_with_an_unknown_placeholder_is_refused():
    noble = load_distro("ubuntu/noble")
    template = {**noble.extra["os-release"], "files": {"/etc/lsb-release": "{point}\n"}}
    distro = dataclasses.replace(noble, extra={**noble.extra, "os-release": template})
    with pytest.raises(SpecError, match=r"/etc/lsb-release.*\{series\}"):
        identity_for(distro, "24.04")


@pytest.mark.parametrize("codename,version,expected", [
    ("stonking", "26.10", "26.10"),     # unquoted: YAML reads 26.1; the definition's wins
    ("noble", "'24.04'", "24.04"),
    ("noble", "22.04", None),           # another release under that name: not borrowed
    ("warty", "4.10", None),            # no definition
])
def test_chisel_release_takes_the_ubuntu_definitions_identity(tmp_path, apt_key, codename,
                                                              version, expected):
    archives = textwrap.dedent(f"""\
        archives:
          ubuntu:
            version: {version}
            components: [main]
            suites: [{codename}, {codename}-updates]
            public-keys: [test-key]
        """)
    (tmp_path / "chisel.yaml").write_text(chisel_yaml(apt_key, "v1", archives))
    distro = chisel_distro(tmp_path / "chisel.yaml")
    if expected is None:
        assert "os-release" not in distro.extra
        return
    assert distro.extra["version"] == expected
    from assembler.image.recipe import _definition_files

    # A cached build is keyed by the borrowed definition too.
    assert [str(REPOS_DIR / "ubuntu" / f"{codename}.yaml")] in \
        [[f] for f, _ in _definition_files(distro)]
    identity = identity_for(distro, expected)
    assert identity is not None
    assert f'VERSION_ID="{expected}"' in identity.os_release.decode()
    assert dict(identity.files)["etc/lsb-release"].startswith(b"DISTRIB_ID=Ubuntu\n")

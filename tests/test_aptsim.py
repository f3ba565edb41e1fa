"""Self-test of tests/aptsim.py against the real archive (host mirror)."""

from __future__ import annotations

import pytest
from aptsim import apt_simulate, host_mirrors, parse_inst


def test_parse_inst() -> None:
    out = (
        "Inst gcc-12-base (12.2.0-14+deb12u1 Debian:12.11/stable [amd64])\n"
        "Inst libgcc-s1 (12.2.0-14+deb12u1 Debian:12.11/stable [amd64]) []\n"
        "Inst libc6 [2.36-9] (2.36-9+deb12u10 Debian-Security:12/stable-security [amd64])\n"
        "Inst tzdata (2025b-0+deb12u1 Debian:12.11/stable [all])\n"
        "Conf libc6 (2.36-9+deb12u10 Debian:12.11/stable [amd64])\n"
    )
    assert parse_inst(out) == {
        "gcc-12-base": "12.2.0-14+deb12u1",
        "libgcc-s1": "12.2.0-14+deb12u1",
        "libc6": "2.36-9+deb12u10",
        "tzdata": "2025b-0+deb12u1",
    }


@pytest.mark.network
def test_apt_simulate_libc6() -> None:
    mirrors = host_mirrors()
    assert {"debian", "debian-security"} <= set(mirrors)
    got = apt_simulate(["libc6"])
    assert "libc6" in got and "libgcc-s1" in got
    assert got["libc6"].startswith("2.36-")


@pytest.mark.network
def test_apt_does_not_add_essential_packages_on_empty_status() -> None:
    # With an empty dpkg status apt installs only the dependency closure: the
    # Essential set (base-files, bash, coreutils, dpkg, ...) is not implied.
    got = apt_simulate(["libc6"])
    assert set(got) == {"libc6", "libgcc-s1", "gcc-12-base"}
    assert not {"base-files", "bash", "coreutils", "dpkg"} & set(got)

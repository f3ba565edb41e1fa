"""Mirror configuration: CLI > spec > environment > host apt sources > clear error."""

from __future__ import annotations

import pytest

from assembler.distro.definition import load_distro
from assembler.distro.mirror import host_sources, resolve_mirrors
from assembler.errors import SpecError

DEB822 = """\
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

# disabled entry must be ignored
Types: deb
URIs: http://wrong.example/debian
Suites: bookworm
Enabled: no

Types: deb-src
URIs: http://src.example/debian-security
Suites: bookworm-security
"""
ONE_LINE = """\
# comment
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://sec.example/debian-security bookworm-security main
deb http://other.example/debian trixie main contrib
"""  # noqa: E501


@pytest.fixture
def etc(tmp_path, monkeypatch):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    (tmp_path / "sources.list").write_text(ONE_LINE)
    monkeypatch.setenv("ASSEMBLER_APT_ETC", str(tmp_path))
    for var in ("ASSEMBLER_MIRROR_DEBIAN", "ASSEMBLER_MIRROR_DEBIAN_SECURITY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_host_sources_both_formats(etc):
    srcs = host_sources()
    assert [(s.uri, s.suites, s.components) for s in srcs] == [
        ("http://sec.example/debian-security", ["bookworm-security"], ["main"]),
        ("http://other.example/debian", ["trixie"], ["main", "contrib"]),
        ("http://mirror.example/debian", ["bookworm", "bookworm-updates"], ["main"]),
    ]


def test_from_host_exact_suite(etc):
    m = resolve_mirrors(load_distro("debian/bookworm").archives, {}, {})
    assert m == {"debian": "http://mirror.example/debian",
                 "debian-security": "http://sec.example/debian-security"}


def test_from_host_other_release_uses_same_archive(etc):
    (etc / "sources.list").write_text(ONE_LINE.splitlines()[1] + "\n")
    m = resolve_mirrors(load_distro("debian/trixie").archives, {}, {})
    assert m == {"debian": "http://mirror.example/debian",
                 "debian-security": "http://sec.example/debian-security"}


def test_precedence(etc, monkeypatch):
    archives = load_distro("debian/bookworm").archives
    monkeypatch.setenv("ASSEMBLER_MIRROR_DEBIAN", "http://env.example/debian/")
    assert resolve_mirrors(archives, {}, {})["debian"] == "http://env.example/debian"
    assert resolve_mirrors(archives, {}, {"debian": "http://spec.example/d"})["debian"] == \
        "http://spec.example/d"
    assert resolve_mirrors(archives, {"debian": "http://cli.example/d"},
                           {"debian": "http://spec.example/d"})["debian"] == "http://cli.example/d"


def test_no_mirror_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSEMBLER_APT_ETC", str(tmp_path))
    monkeypatch.delenv("ASSEMBLER_MIRROR_DEBIAN", raising=False)
    with pytest.raises(SpecError) as e:
        resolve_mirrors(load_distro("debian/bookworm").archives, {}, {})
    msg = str(e.value)
    assert "--mirror debian=URL" in msg and "ASSEMBLER_MIRROR_DEBIAN" in msg


def test_unknown_archive_name(etc):
    with pytest.raises(SpecError, match="does not have"):
        resolve_mirrors(load_distro("debian/bookworm").archives, {"debain": "http://x"}, {})

"""Slice definitions: glob semantics, the static checks chisel makes, and cutting packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from assembler.errors import SpecError
from assembler.slices.catalog import Catalog, matches, overlap


def _write(d: Path, package: str, body: str) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{package}.yaml").write_text(f"package: {package}\n" + body)


@pytest.mark.parametrize("pattern, path, expected", [
    ("/usr/lib/*-linux-*/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", True),
    ("/usr/lib/*/libc.so.6", "/usr/lib/a/b/libc.so.6", False),
    ("/usr/lib/**/libc.so.6", "/usr/lib/a/b/libc.so.6", True),
    ("/usr/share/zoneinfo/**", "/usr/share/zoneinfo/Europe/Paris", True),
    ("/etc/?ame", "/etc/name", True),
    ("/etc/?ame", "/etc//ame", False),
    ("/usr/bin/python3", "/usr/bin/python3.11", False),
])
def test_glob_semantics(pattern: str, path: str, expected: bool) -> None:
    assert matches(pattern, path) is expected


@pytest.mark.parametrize("a, b, expected", [
    ("/usr/lib/*-linux-*/libc.so.6", "/usr/lib/*-linux-*/libssl.so.3", False),
    ("/usr/share/**", "/usr/share/zoneinfo/*", True),
    ("/usr/lib/*/x", "/usr/lib/a/b/x", False),
    ("/usr/lib/**/x", "/usr/lib/a/*/x", True),
    ("/a/*.so", "/a/lib?.so", True),
    ("/a/*.so", "/a/*.py", False),
    ("/a/b*", "/a/c*", False),
])
def test_glob_overlap(a: str, b: str, expected: bool) -> None:
    assert overlap(a, b) is expected and overlap(b, a) is expected


def test_two_packages_claiming_one_path_name_both(tmp_path: Path) -> None:
    _write(tmp_path, "one", "slices:\n  bins:\n    contents:\n      /usr/bin/tool:\n")
    _write(tmp_path, "two", "slices:\n  bins:\n    contents:\n      /usr/bin/tool:\n")
    with pytest.raises(SpecError) as e:
        Catalog.load(tmp_path)
    msg = e.value.message
    assert "one_bins" in msg and "two_bins" in msg and "/usr/bin/tool" in msg
    assert "one.yaml:5" in msg and "two.yaml:5" in msg


def test_prefer_settles_a_shared_path(tmp_path: Path) -> None:
    _write(tmp_path, "one", "slices:\n  bins:\n    contents:\n      /usr/bin/tool: {prefer: two}\n")
    _write(tmp_path, "two", "slices:\n  bins:\n    contents:\n      /usr/bin/tool:\n")
    assert set(Catalog.load(tmp_path).slices) == {"one_bins", "two_bins"}


def test_prefer_must_name_a_claimant(tmp_path: Path) -> None:
    _write(tmp_path, "one", "slices:\n  bins:\n    contents:\n      /usr/bin/tool: {prefer: x}\n")
    _write(tmp_path, "two", "slices:\n  bins:\n    contents:\n      /usr/bin/tool:\n")
    with pytest.raises(SpecError, match="'prefer' refers to undefined package 'x'"):
        Catalog.load(tmp_path)


def test_overlapping_globs_of_two_packages_name_both(tmp_path: Path) -> None:
    _write(tmp_path, "one", "slices:\n  data:\n    contents:\n      /usr/share/**:\n")
    _write(tmp_path, "two", "slices:\n  zones:\n    contents:\n"
                            "      /usr/share/zoneinfo/*:\n")
    with pytest.raises(SpecError) as e:
        Catalog.load(tmp_path)
    msg = e.value.message
    assert "one_data" in msg and "two_zones" in msg and "globs" in msg
    assert "/usr/share/**" in msg and "/usr/share/zoneinfo/*" in msg


def test_glob_against_a_plain_path_of_another_package(tmp_path: Path) -> None:
    _write(tmp_path, "one", "slices:\n  libs:\n    contents:\n      /usr/lib/*/libx.so.*:\n")
    _write(tmp_path, "two", "slices:\n  libs:\n    contents:\n"
                            "      /usr/lib/x86_64-linux-gnu/libx.so.1:\n")
    with pytest.raises(SpecError, match="one_libs.*two_libs|two_libs.*one_libs"):
        Catalog.load(tmp_path)


def test_same_package_may_overlap_and_made_directories_are_shared(tmp_path: Path) -> None:
    _write(tmp_path, "one", "slices:\n  aaa:\n    contents:\n      /usr/share/**:\n"
                            "  bbb:\n    contents:\n      /usr/share/x/*:\n"
                            "      /etc/: {make: true}\n")
    _write(tmp_path, "two", "slices:\n  ccc:\n    contents:\n      /etc/: {make: true}\n")
    assert len(Catalog.load(tmp_path).slices) == 3


def test_a_directory_taken_from_two_packages_conflicts_like_chisel(tmp_path: Path) -> None:
    _write(tmp_path, "one", "slices:\n  aaa:\n    contents:\n      /etc/:\n")
    _write(tmp_path, "two", "slices:\n  ccc:\n    contents:\n      /etc/:\n")
    with pytest.raises(SpecError, match="slices one_aaa and two_ccc conflict on /etc/"):
        Catalog.load(tmp_path)


def test_essential_cycle_names_both_sides(tmp_path: Path) -> None:
    _write(tmp_path, "one", "slices:\n  aaa:\n    essential: [two_bbb]\n    contents: {}\n")
    _write(tmp_path, "two", "slices:\n  bbb:\n    essential: [one_aaa]\n    contents: {}\n")
    with pytest.raises(SpecError) as e:
        Catalog.load(tmp_path)
    msg = e.value.message
    assert "essential loop detected: one_aaa, two_bbb" in msg and ".yaml:" in msg


def test_unknown_essential_is_named_with_a_suggestion(tmp_path: Path) -> None:
    _write(tmp_path, "one", "slices:\n  aaa:\n    essential: [two_bins]\n    contents: {}\n")
    _write(tmp_path, "two", "slices:\n  bin:\n    contents: {}\n")
    with pytest.raises(SpecError, match="requires two_bins.*Did you mean 'two_bin'"):
        Catalog.load(tmp_path)


@pytest.mark.parametrize("body, words", [
    ("slices:\n  aaa:\n    contents:\n      usr/bin/x:\n", "invalid content path"),
    ("slices:\n  aaa:\n    contents:\n      /x: {make: true}\n", "must end in / for 'make'"),
    ("slices:\n  aaa:\n    contents:\n      /x: {until: later}\n", "invalid 'until'"),
    ("slices:\n  A:\n    contents: {}\n", "invalid slice name 'A'"),
])
def test_bad_definitions_point_at_the_line(tmp_path: Path, body: str, words: str) -> None:
    _write(tmp_path, "one", body)
    with pytest.raises(SpecError) as e:
        Catalog.load(tmp_path)
    assert words in e.value.message and "one.yaml:" in e.value.message


def test_unknown_keys_are_ignored_with_a_warning(tmp_path: Path, capsys) -> None:
    _write(tmp_path, "one", "colour: red\nslices:\n  aaa:\n    contents:\n"
                            "      /x: {colour: red}\n")
    assert "one_aaa" in Catalog.load(tmp_path).slices
    err = capsys.readouterr().err
    assert "one.yaml:2: unknown key 'colour'" in err and "one.yaml:6: unknown key 'colour'" in err


def test_unknown_generator_loads_but_selecting_it_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "one", "slices:\n  aaa:\n    contents:\n      /x/**: {generate: bundle}\n")
    cat = Catalog.load(tmp_path)
    with pytest.raises(SpecError, match="one_aaa has invalid 'generate' for path /x/\\*\\*"):
        cat.closure(["one_aaa"], "amd64")


def test_closure_follows_package_and_slice_essentials_per_arch(tmp_path: Path) -> None:
    _write(tmp_path, "libc6", "essential: [libc6_copyright]\nslices:\n"
                              "  libs:\n    contents: {}\n  copyright:\n    contents: {}\n")
    _write(tmp_path, "app", "slices:\n  bins:\n    essential:\n"
                            "      libc6_libs:\n      extra_xtra: {arch: arm64}\n"
                            "    contents: {}\n")
    _write(tmp_path, "extra", "slices:\n  xtra:\n    contents: {}\n")
    c = Catalog.load(tmp_path)
    assert [s.full for s in c.closure(["app_bins"], "amd64")] == \
        ["app_bins", "libc6_copyright", "libc6_libs"]
    assert "extra_xtra" in [s.full for s in c.closure(["app_bins"], "arm64")]


def _catalog_distro(tmp_path: Path) -> Path:
    d = tmp_path / "slices"
    _write(d, "libc6", "essential: [libc6_copyright]\nslices:\n"
                       "  libs:\n    contents:\n      /usr/lib/*-linux-*/libc.so.6:\n"
                       "      /lib64/ld-linux-x86-64.so.2: {arch: amd64}\n"
                       "  copyright:\n    contents:\n      /usr/share/doc/libc6/copyright:\n")
    _write(d, "openssl", "slices:\n  config:\n    essential: [libc6_libs]\n    contents:\n"
                         "      /etc/ssl/openssl.cnf: {text: \"x=1\\n\", mode: 0640}\n"
                         "      /run/ssl/: {make: true}\n")
    distro = tmp_path / "d.yaml"
    distro.write_text(f"family: debian\nrelease: t\nslices: {d}\narchives: []\n")
    return distro


def test_info_prints_definitions_that_load_back(tmp_path: Path, capsys) -> None:
    from dataclasses import replace

    from hermetic import run

    distro = _catalog_distro(tmp_path)
    code, out, err = run(["info", "--distro", str(distro), "openssl", "libc6"], capsys)
    assert code == 0, err
    again = tmp_path / "again"
    again.mkdir()
    for doc, name in zip(out.split("---\n"), ("openssl", "libc6"), strict=True):
        (again / f"{name}.yaml").write_text(doc)
    original, reloaded = Catalog.load(tmp_path / "slices"), Catalog.load(again)
    assert set(original.slices) == set(reloaded.slices)

    def same(c: Catalog) -> dict:
        return {n: ([e for e, _ in s.essential],
                    {k: replace(v, line=0) for k, v in s.contents.items()})
                for n, s in c.slices.items()}
    assert same(original) == same(reloaded)
    code, out, _ = run(["info", "--distro", str(distro), "libc6_libs"], capsys)
    assert "libs:" in out and "arch: amd64" in out and "copyright:\n" not in out


def test_find_and_unknown_names(tmp_path: Path, capsys) -> None:
    from hermetic import run

    distro = _catalog_distro(tmp_path)
    code, out, _ = run(["find", "--distro", str(distro), "libc"], capsys)
    assert code == 0 and out.split() == ["libc6_copyright", "libc6.yaml", "libc6_libs",
                                         "libc6.yaml"]
    code, out, _ = run(["find", "--distro", str(distro), "ssl", "conf"], capsys)
    assert code == 0 and out.split()[0] == "openssl_config"
    code, _, err = run(["find", "--distro", str(distro), "nothing-like-it"], capsys)
    assert code == 1
    code, _, err = run(["info", "--distro", str(distro), "openssl_conf"], capsys)
    assert code == 2 and "openssl_config" in err and "Traceback" not in err


def test_providers_of_ignores_globs_that_name_no_file(tmp_path: Path) -> None:
    """A link-check hint names slices that take the file by name, not every `dir/**`."""
    _write(tmp_path, "libssl3", "slices:\n  libs:\n    contents:\n"
           "      /usr/lib/*-linux-*/libcrypto.so.3:\n")
    _write(tmp_path, "tzdata", "slices:\n  zoneinfo:\n    contents:\n"
           "      /usr/share/zoneinfo/*:\n      /usr/share/zoneinfo/Europe/**:\n")
    cat = Catalog.load(tmp_path)
    assert [s.full for s in cat.providers_of("libcrypto.so.3", "amd64")] == ["libssl3_libs"]

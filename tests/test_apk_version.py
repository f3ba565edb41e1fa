"""Alpine version comparison against apk-tools' own test corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from assembler.alpine.version import (
    ANY,
    CHECKSUM,
    CONFLICT,
    EQUAL,
    FUZZY,
    GREATER,
    LESS,
    compare,
    is_valid,
    op_string,
    parse_op,
    satisfies,
    version_key,
)

DATA = Path(__file__).parent / "data" / "apk" / "version.data"
_EXPECT = {"<": -1, "=": 0, ">": 1}


def _corpus() -> list[tuple[int, list[str]]]:
    rows = []
    for lineno, raw in enumerate(DATA.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if line:
            rows.append((lineno, line.split()))
    return rows


CORPUS = _corpus()


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 700


def test_whole_corpus() -> None:
    """Every row of apk's version.data, reported all at once so one bug shows its reach."""
    failures = []
    for lineno, fields in CORPUS:
        if len(fields) == 1:
            (word,) = fields
            want_valid = not word.startswith("!")
            version = word if want_valid else word[1:]
            if is_valid(version) != want_valid:
                failures.append(f"line {lineno}: is_valid({version!r}) != {want_valid}")
            continue
        a, op, b = fields
        if op in _EXPECT:
            got = compare(a, b)
            if got != _EXPECT[op]:
                failures.append(f"line {lineno}: compare({a}, {b}) = {got}, want {op}")
            if compare(b, a) != -_EXPECT[op]:
                failures.append(f"line {lineno}: reverse compare({b}, {a}) not antisymmetric")
            if not satisfies(a, op, b):
                failures.append(f"line {lineno}: not satisfies({a} {op} {b})")
        elif not satisfies(a, op, b):
            failures.append(f"line {lineno}: not satisfies({a} {op} {b})")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        ("1.0", "1.0", 0),
        ("1.0-r0", "1.0", 1),  # an explicit -r0 is still "more" than nothing
        ("1.0_rc1", "1.0", -1),
        ("1.0_p1", "1.0", 1),
        ("1.0_alpha", "1.0_beta", -1),
        ("1.0_beta", "1.0_pre", -1),
        ("1.0_pre", "1.0_rc", -1),
        ("1.0_cvs", "1.0_svn", -1),
        ("1.0_svn", "1.0_git", -1),
        ("1.0_git", "1.0_hg", -1),
        ("1.0_hg", "1.0_p", -1),
        ("1.0a", "1.0", 1),
        ("1.0a", "1.0b", -1),
        ("1.0~abc", "1.0", 1),
        ("1.0~abc", "1.0-r1", 1),  # apk: an earlier-in-grammar token beats a later one
        ("1.10", "1.9", 1),
        ("1.01", "1.1", -1),  # leading zero: compared as strings
        ("1.0", "1.00", -1),
        ("2.34", "2.34.0", -1),
    ],
)
def test_handpicked(a: str, b: str, want: int) -> None:
    assert compare(a, b) == want
    assert compare(b, a) == -want


def test_sorting_key() -> None:
    versions = ["1.0-r1", "1.0_rc1", "1.0", "0.9", "1.0_p1", "1.0-r0"]
    assert sorted(versions, key=version_key) == [
        "0.9",
        "1.0_rc1",
        "1.0",
        "1.0-r0",
        "1.0-r1",
        "1.0_p1",
    ]


@pytest.mark.parametrize(
    ("version", "op", "wanted", "want"),
    [
        ("1.2.3-r0", ">=", "1.2", True),
        ("1.2.3-r0", "<", "1.2", False),
        ("1.2.3-r0", "<=", "1.2.3-r0", True),
        ("1.2.3-r0", "=", "1.2.3-r0", True),
        ("1.2.3-r0", "=", "1.2.3", False),
        ("1.2.3-r0", "~", "1.2", True),
        ("1.2.3-r0", "~", "1.2.3", True),
        ("1.3.0", "~", "1.2", False),
        ("1.2.3-r0", "!=", "1.2.3-r0", False),
        ("1.2.3-r0", "!<", "1.0", True),
        ("1.2.3-r0", "", "anything", True),
        ("1.2.3-r0", "!", "anything", False),
    ],
)
def test_satisfies(version: str, op: str, wanted: str, want: bool) -> None:
    assert satisfies(version, op, wanted) is want


def test_checksum_operator_compares_identities_not_versions() -> None:
    assert satisfies("1.0-r0", "><", "Q1abc=", checksum="Q1abc=")
    assert not satisfies("1.0-r0", "><", "Q1abc=", checksum="Q1xyz=")
    assert not satisfies("1.0-r0", "><", "Q1abc=")
    assert satisfies("1.0-r0", "!><", "Q1abc=", checksum="Q1xyz=")


def test_op_masks_round_trip() -> None:
    assert parse_op("<=") == LESS | EQUAL
    assert parse_op("~") == FUZZY | EQUAL
    assert parse_op("><") == CHECKSUM
    assert parse_op("") == ANY
    assert parse_op("!=") == CONFLICT | EQUAL
    assert parse_op(">") == GREATER
    for op in ["<", "<=", "=", ">=", ">", "~", "<~", ">~", "><", "!=", "!~"]:
        assert op_string(parse_op(op)) == op
    with pytest.raises(ValueError):
        parse_op("=>x")


def test_invalid_versions_still_order_like_apk() -> None:
    assert not is_valid("1.0bc")
    assert compare("1.0", "1.0bc") == -1
    assert not is_valid("")
    assert not is_valid("1.0-r")
    assert not is_valid("1.0~ABC")  # apk's hex class is lowercase
    assert is_valid("1.0~abc123-r4")

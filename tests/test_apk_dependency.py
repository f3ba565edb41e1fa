"""apk dependency atoms."""

from __future__ import annotations

import pytest

from assembler.alpine.dependency import Dependency, parse_atoms


@pytest.mark.parametrize(
    ("text", "name", "op", "version", "conflict", "tag"),
    [
        ("musl", "musl", "", "", False, ""),
        ("so:libc.musl-x86_64.so.1", "so:libc.musl-x86_64.so.1", "", "", False, ""),
        ("/bin/sh", "/bin/sh", "", "", False, ""),
        ("!busybox-suid", "busybox-suid", "", "", True, ""),
        ("zlib>=1.2.12", "zlib", ">=", "1.2.12", False, ""),
        ("cmd:hello=2.12-r0", "cmd:hello", "=", "2.12-r0", False, ""),
        ("python3~3.10", "python3", "~", "3.10", False, ""),
        ("foo@edge<2", "foo", "<", "2", False, "edge"),
        ("foo><Q1abc=", "foo", "><", "Q1abc=", False, ""),
        ("pc:librtmp=v2.4", "pc:librtmp", "=", "v2.4", False, ""),  # real, apk-invalid
    ],
)
def test_parse_and_print(
    text: str, name: str, op: str, version: str, conflict: bool, tag: str
) -> None:
    dep = Dependency.parse(text)
    assert (dep.name, dep.op, dep.version, dep.conflict, dep.tag) == (
        name, op, version, conflict, tag,
    )  # fmt: skip
    assert str(dep) == text


def test_old_fuzzy_spelling_is_normalized() -> None:
    assert str(Dependency.parse("foo~=1.2")) == "foo~1.2"


@pytest.mark.parametrize("bad", ["", ">=1", "foo>=", "foo=>x<"])
def test_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        Dependency.parse(bad)


def test_strict_rejects_invalid_versions() -> None:
    with pytest.raises(ValueError, match="invalid version"):
        Dependency.parse("pc:librtmp=v2.4", strict=True)


def test_matches() -> None:
    dep = Dependency.parse("zlib>=1.2.12")
    assert dep.matches("1.2.13-r0") and not dep.matches("1.2.11-r3")
    assert Dependency.parse("zlib").matches("0.1")
    assert Dependency.parse("foo><Q1abc=").matches("1.0", checksum="Q1abc=")


def test_parse_atoms() -> None:
    assert [d.name for d in parse_atoms("a b>1 !c")] == ["a", "b", "c"]

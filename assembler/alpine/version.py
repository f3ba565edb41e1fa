"""Alpine package versions, compared exactly as apk-tools compares them.

Grammar (apk-tools 3 / 2.14): ``digit{.digit}...{letter}{_suffix{number}}...{~hash}{-rN}``.

apk does not reject an invalid version before comparing it: it tokenizes both
strings side by side and stops at the first token that differs, so that
``1.0 < 1.0bc`` still has an answer. We reproduce that behaviour (tokens up to
the first invalid one count) rather than raising, because index data from the
wild does contain such versions and apk still orders them.

Verified against apk-tools' own test/unit/version.data (tests/data/apk/).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from enum import IntEnum
from typing import NamedTuple

# Result bits, numerically identical to apk's APK_VERSION_* so that masks read
# the same as in apk's sources and error messages.
EQUAL = 1
LESS = 2
GREATER = 4
FUZZY = 8
CONFLICT = 16
ANY = EQUAL | LESS | GREATER | FUZZY
CHECKSUM = LESS | GREATER  # the "><" operator: pinned to a package identity


class _Kind(IntEnum):
    # Order matters: it both bounds which token may follow which, and decides
    # which of two different token kinds sorts lower once the prefixes are equal.
    INITIAL_DIGIT = 0
    DIGIT = 1
    LETTER = 2
    SUFFIX = 3
    SUFFIX_NO = 4
    COMMIT_HASH = 5
    REVISION_NO = 6
    END = 7
    INVALID = 8


_SUFFIX_NONE = 5
_SUFFIX_RANK = {
    "alpha": 1,
    "beta": 2,
    "pre": 3,
    "rc": 4,  # pre-releases sort before "no suffix"
    "cvs": 6,
    "svn": 7,
    "git": 8,
    "hg": 9,
    "p": 10,
}

_DIGITS = re.compile(r"[0-9]*")
_LOWER = re.compile(r"[a-z]*")
_HEX = re.compile(r"[0-9a-f]*")  # apk's hex class is lowercase only


class _Token(NamedTuple):
    kind: _Kind
    text: str
    rank: int = 0  # numeric value (digits) or suffix rank


_END = _Token(_Kind.END, "")
_INVALID = _Token(_Kind.INVALID, "")


def _tokens(v: str) -> Iterator[_Token]:
    """Yield tokens; the last one is always END or INVALID."""
    m = _DIGITS.match(v)
    assert m is not None
    if not m.group():
        yield _INVALID
        return
    prev = _Kind.INITIAL_DIGIT
    yield _Token(prev, m.group(), int(m.group()))
    pos = m.end()
    while True:
        if pos >= len(v):
            yield _END
            return
        c = v[pos]
        kind: _Kind
        if "a" <= c <= "z":
            if prev > _Kind.DIGIT:
                break
            tok = _Token(_Kind.LETTER, c, ord(c))
            pos += 1
        elif c == "." or "0" <= c <= "9":
            if c == ".":
                if prev > _Kind.DIGIT:
                    break
                pos += 1
            if prev in (_Kind.INITIAL_DIGIT, _Kind.DIGIT):
                kind = _Kind.DIGIT
            elif prev == _Kind.SUFFIX:
                kind = _Kind.SUFFIX_NO
            else:
                break
            m = _DIGITS.match(v, pos)
            assert m is not None
            if not m.group():
                break
            tok = _Token(kind, m.group(), int(m.group()))
            pos = m.end()
        elif c == "_":
            if prev > _Kind.SUFFIX_NO:
                break
            m = _LOWER.match(v, pos + 1)
            assert m is not None
            rank = _SUFFIX_RANK.get(m.group())
            if rank is None:
                break
            tok = _Token(_Kind.SUFFIX, m.group(), rank)
            pos = m.end()
        elif c == "~":
            if prev >= _Kind.COMMIT_HASH:
                break
            m = _HEX.match(v, pos + 1)
            assert m is not None
            if not m.group():
                break
            tok = _Token(_Kind.COMMIT_HASH, m.group())
            pos = m.end()
        elif c == "-":
            if prev >= _Kind.REVISION_NO or not v.startswith("-r", pos):
                break
            m = _DIGITS.match(v, pos + 2)
            assert m is not None
            if not m.group():
                break
            tok = _Token(_Kind.REVISION_NO, m.group(), int(m.group()))
            pos = m.end()
        else:
            break
        prev = tok.kind
        yield tok
    yield _INVALID


def _cmp_values(a: object, b: object) -> int:
    return (a > b) - (a < b)  # type: ignore[operator]


def _token_cmp(a: _Token, b: _Token) -> int:
    if a.kind == _Kind.DIGIT and (a.text[0] == "0" or b.text[0] == "0"):
        # A leading zero makes the component a decimal fraction-like string
        # (Gentoo rule): "8.2.0015" < "8.2.002".
        return _cmp_values(a.text, b.text)
    if a.kind in (
        _Kind.INITIAL_DIGIT,
        _Kind.DIGIT,
        _Kind.SUFFIX_NO,
        _Kind.REVISION_NO,
        _Kind.LETTER,
        _Kind.SUFFIX,
    ):
        return _cmp_values(a.rank, b.rank)
    return _cmp_values(a.text, b.text)  # commit hashes: plain byte order


def _compare(a: str | None, b: str | None, fuzzy: bool) -> int:
    """Return one of LESS/EQUAL/GREATER (apk bits), or all three for a null side."""
    if a is None or b is None:
        return EQUAL if a is None and b is None else EQUAL | LESS | GREATER
    ita, itb = _tokens(a), _tokens(b)
    ta, tb = next(ita), next(itb)
    while ta.kind == tb.kind and ta.kind < _Kind.END:
        r = _token_cmp(ta, tb)
        if r:
            return LESS if r < 0 else GREATER
        ta, tb = next(ita), next(itb)
    if ta.kind == tb.kind:
        return EQUAL
    if fuzzy and tb.kind == _Kind.END:
        return EQUAL  # "~3.6" matches anything that starts with 3.6
    # Equal prefixes: the longer version wins, unless what follows is a pre-release suffix.
    if ta.kind == _Kind.SUFFIX and ta.rank < _SUFFIX_NONE:
        return LESS
    if tb.kind == _Kind.SUFFIX and tb.rank < _SUFFIX_NONE:
        return GREATER
    if ta.kind > tb.kind:
        return LESS
    if tb.kind > ta.kind:
        return GREATER
    return EQUAL


def compare(a: str, b: str) -> int:
    """-1, 0 or 1, like apk's ``apk version -t a b`` printing <, = or >."""
    r = _compare(a, b, fuzzy=False)
    return -1 if r == LESS else 1 if r == GREATER else 0


#: ``sorted(versions, key=version_key)`` orders like apk.
version_key = functools.cmp_to_key(compare)


def is_valid(version: str) -> bool:
    """True when apk would accept `version` in a package (``apk version -c``)."""
    *_, last = _tokens(version)
    return last.kind == _Kind.END


def parse_op(op: str) -> int:
    """Turn an operator (``<``, ``<=``, ``=``, ``>=``, ``>``, ``~``, ``<~``, ``>~``,
    ``><``, each optionally prefixed by ``!``, or ``""`` for any) into apk's mask."""
    mask = 0
    body = op
    if body.startswith("!"):
        mask |= CONFLICT
        body = body[1:]
    if not body:
        return mask | ANY
    for ch in body:
        if ch == "<":
            mask |= LESS
        elif ch == ">":
            mask |= GREATER
        elif ch == "=":
            mask |= EQUAL
        elif ch == "~":
            mask |= FUZZY | EQUAL
        else:
            raise ValueError(f"unknown apk version operator {op!r}")
    return mask


def op_string(mask: int) -> str:
    """The canonical spelling of a mask, as apk prints it."""
    prefix = "!" if mask & CONFLICT else ""
    body = {
        LESS: "<",
        LESS | EQUAL: "<=",
        LESS | EQUAL | FUZZY: "<~",
        EQUAL | FUZZY: "~",
        FUZZY: "~",
        EQUAL: "=",
        GREATER | EQUAL: ">=",
        GREATER | EQUAL | FUZZY: ">~",
        GREATER: ">",
        CHECKSUM: "><",
        ANY: "",
    }.get(mask & ~CONFLICT, "?")
    return prefix + body


def satisfies(version: str, op: str | int, wanted: str, *, checksum: str | None = None) -> bool:
    """Does a package at `version` satisfy ``op wanted``?

    ``~`` is apk's fuzzy match: ``3.6.9 ~ 3.6`` holds, ``3.8 ~ 3.8.1`` does not.
    ``><`` pins a package identity: `wanted` is a ``Q1...`` checksum compared
    with `checksum` (the candidate's), not a version. A ``!`` prefix negates.
    """
    mask = parse_op(op) if isinstance(op, str) else op
    base = mask & ~CONFLICT
    if base == CHECKSUM:
        ok = checksum is not None and checksum == wanted
    elif base & ANY == ANY:
        ok = True
    else:
        ok = bool(_compare(version, wanted, fuzzy=bool(base & FUZZY)) & base)
    return not ok if mask & CONFLICT else ok

"""Debian version ordering, exactly as dpkg's verrevcmp.

Versions are compared through a sort key (a nested tuple) so that sorting and
max() stay in C and each version string is analysed once (cached).
"""

from __future__ import annotations

import re
from functools import cache

from assembler.packages.universe import relation_holds

_PART = re.compile(r"(\D*)(\d*)")
# Key of the empty non-digit string: it is what a shorter version "has" where the
# longer one goes on, so it must sort above "~..." and below everything else.
_END = (0,)


def _char_order(c: str) -> int:
    if c == "~":
        return -1
    if c.isalpha() and c.isascii():
        return ord(c)
    return ord(c) + 256


def _part_key(s: str) -> tuple:
    # Alternating (non-digit key, number) pairs, closed by _END so that a
    # version that runs out compares like dpkg's implicit empty string.
    out: list = []
    for nondigit, digits in _PART.findall(s):
        if nondigit or digits:
            out.append(tuple(_char_order(c) for c in nondigit) + (0,))
            out.append(int(digits) if digits else 0)
    if not out:  # dpkg treats "" like "0" (an absent revision equals "-0")
        out = [_END, 0]
    out.append(_END)
    return tuple(out)


@cache
def version_key(version: str) -> tuple:
    """A key whose tuple order is dpkg's order for `version`."""
    epoch = 0
    rest = version
    colon = version.find(":")
    if colon != -1:
        epoch = int(version[:colon] or 0)
        rest = version[colon + 1 :]
    dash = rest.rfind("-")
    if dash != -1:
        upstream, revision = rest[:dash], rest[dash + 1 :]
    else:
        upstream, revision = rest, ""
    return (epoch, _part_key(upstream), _part_key(revision))


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as `a` is lower than, equal to or higher than `b`."""
    ka, kb = version_key(a), version_key(b)
    return (ka > kb) - (ka < kb)


def satisfies(version: str, op: str, wanted: str) -> bool:
    """Does `version` satisfy the relation `op wanted` (op in <<, <=, =, >=, >>)."""
    return relation_holds(compare(version, wanted), op)

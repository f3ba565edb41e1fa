"""File modes as written in YAML: one parser for the spec and for slice definitions.

The two formats document different meanings for bare digits, and each keeps
its own: the spec says `mode: "0755"` and reads every mode as octal (`755`
too), as apko and chmod do; slice definitions follow chisel, whose `mode` is a
YAML integer, so `0644` and `0o644` are octal, `0x1a4` hexadecimal and `420`
decimal. Both read a leading `0` or `0o` as octal.
"""

from __future__ import annotations

from typing import Literal

MAX_MODE = 0o7777
BareDigits = Literal["octal", "decimal"]


def parse_mode(text: str, bare: BareDigits) -> int | None:
    """The mode `text` means, or None when it is not a mode (not a number, above 07777)."""
    t = text.strip()
    if bare == "decimal" and t[:2] in ("0x", "0X"):   # a YAML integer may be hexadecimal
        digits, base = t[2:], 16
    else:
        digits = t[2:] if t[:2] in ("0o", "0O") else t
        base = 8 if t != digits or t.startswith("0") or bare == "octal" else 10
    if not digits.isascii() or not digits.isalnum():
        return None
    try:
        value = int(digits, base)
    except ValueError:  # an 8 or 9 in an octal mode, a letter in a decimal one
        return None
    return value if value <= MAX_MODE else None

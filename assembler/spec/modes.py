"""File modes as written in YAML: one parser for the spec and for slice definitions.

The two formats document different meanings for bare digits, and each keeps
its own: the spec says `mode: "0755"` and reads every mode as octal (`755`
too), as apko and chmod do; slice definitions follow chisel, whose `mode` is a
YAML integer, so `0644` and `0o644` are octal but `420` is decimal. Both
accept a leading `0` or `0o` as octal.
"""

from __future__ import annotations

from typing import Literal

MAX_MODE = 0o7777
BareDigits = Literal["octal", "decimal"]


def parse_mode(text: str, bare: BareDigits) -> int | None:
    """The mode `text` means, or None when it is not a mode (not digits, above 07777)."""
    t = text.strip()
    digits = t[2:] if t[:2] in ("0o", "0O") else t
    if not digits.isdigit() or not digits.isascii():
        return None
    octal = t != digits or t.startswith("0") or bare == "octal"
    try:
        value = int(digits, 8) if octal else int(digits)
    except ValueError:  # an 8 or 9 in an octal mode
        return None
    return value if value <= MAX_MODE else None

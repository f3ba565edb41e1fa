"""A package's licence as an SPDX expression, from a machine-readable (DEP-5)
/usr/share/doc/<pkg>/copyright file.

Conservative by design: only a file that declares the DEP-5 Format, and whose every
Files paragraph names its licence, gives an answer; anything else is None (the SBOM
says NOASSERTION). Debian's short names are mapped to SPDX identifiers where the
meaning is exact (GPL-2+ is GPL-2.0-or-later); a name with no exact SPDX match is
kept as a LicenseRef, never replaced by a near one.
"""

from __future__ import annotations

import re

from assembler.sbom.licenses import SPDX_CHARS, spdx_id

FORMAT_PREFIX = "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0"
MAX_COPYRIGHT = 4 << 20          # bigger than any real copyright file; read no further


def _term(text: str) -> str:
    """`GPL-2+ with OpenSSL exception` and the like stay one LicenseRef: the exception
    names of DEP-5 are free text, not SPDX's list."""
    if " with " in text.lower():
        return "LicenseRef-" + (SPDX_CHARS.sub("-", text).strip("-"))
    return spdx_id(text)


def _expression(field: str) -> str | None:
    """A DEP-5 License first line ("GPL-2+ or Artistic-1.0") as an SPDX expression."""
    text = " ".join(field.split())
    if not text or "(" in text or ")" in text:
        return None
    alternatives = re.split(r"\s+or\s+", text, flags=re.IGNORECASE)
    out = []
    for alt in alternatives:
        parts = re.split(r"\s+and\s+|\s*,\s*", alt, flags=re.IGNORECASE)
        terms = [_term(p) for p in parts if p]
        if not terms:
            return None
        out.append(" AND ".join(terms) if len(terms) == 1 or len(alternatives) == 1
                   else "(" + " AND ".join(terms) + ")")
    return " OR ".join(out)


def _paragraphs(text: str) -> list[dict[str, str]]:
    paras: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                paras.append(current)
            current, key = {}, ""
        elif line[0] in " \t":
            continue                      # continuation lines: licence text, not names
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            current[key] = value.strip()
    if current:
        paras.append(current)
    return paras


def license_expression(data: bytes) -> str | None:
    """The AND of every Files paragraph's licence, or None unless the file is DEP-5."""
    try:
        text = data[:MAX_COPYRIGHT].decode("utf-8")
    except UnicodeDecodeError:
        return None
    paras = _paragraphs(text)
    if not paras or not _is_dep5(paras[0].get("format", "")):
        return None
    found: list[str] = []
    for p in paras[1:]:
        if "files" not in p:
            continue
        if not p.get("license"):
            return None
        expr = _expression(p["license"])
        if expr is None:
            return None
        for term in ([f"({expr})"] if " OR " in expr else expr.split(" AND ")):
            if term not in found:
                found.append(term)
    if not found:
        return None
    if len(found) == 1:
        return found[0].removeprefix("(").removesuffix(")")
    return " AND ".join(found)


def _is_dep5(value: str) -> bool:
    v = value.strip().rstrip("/")
    return v.removeprefix("https://").removeprefix("http://") == \
        FORMAT_PREFIX.removeprefix("https://")


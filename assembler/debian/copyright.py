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

FORMAT_PREFIX = "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0"
MAX_COPYRIGHT = 4 << 20          # bigger than any real copyright file; read no further

# Debian short names (DEP-5 section "License short name") -> SPDX identifiers.
_VERSIONED = {"GPL", "LGPL", "AGPL", "GFDL"}
_EXACT = {
    "apache-2.0": "Apache-2.0", "apache-1.1": "Apache-1.1", "apache-1.0": "Apache-1.0",
    "artistic-1.0": "Artistic-1.0", "artistic-2.0": "Artistic-2.0",
    "artistic-1.0-perl": "Artistic-1.0-Perl", "artistic-1.0-cl8": "Artistic-1.0-cl8",
    "bsd-2-clause": "BSD-2-Clause", "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause", "isc": "ISC", "expat": "MIT", "mit": "MIT",
    "zlib": "Zlib", "cc0-1.0": "CC0-1.0", "mpl-1.1": "MPL-1.1", "mpl-2.0": "MPL-2.0",
    "epl-1.0": "EPL-1.0", "epl-2.0": "EPL-2.0", "python-2.0": "Python-2.0",
    "psf-2.0": "PSF-2.0", "openssl": "OpenSSL", "ssleay": "SSLeay", "x11": "X11",
    "curl": "curl", "ftl": "FTL", "unicode-dfs-2016": "Unicode-DFS-2016",
    "zpl-2.1": "ZPL-2.1", "bsl-1.0": "BSL-1.0", "wtfpl": "WTFPL", "0bsd": "0BSD",
    "ofl-1.1": "OFL-1.1", "cc-by-4.0": "CC-BY-4.0", "cc-by-sa-4.0": "CC-BY-SA-4.0",
    "cc-by-3.0": "CC-BY-3.0", "cc-by-sa-3.0": "CC-BY-SA-3.0", "unlicense": "Unlicense",
}
_GNU = re.compile(r"(A?GPL|LGPL|GFDL)-(\d(?:\.\d)?)(\+)?", re.IGNORECASE)
_SPDX_CHARS = re.compile(r"[^A-Za-z0-9.-]+")


def spdx_id(name: str) -> str:
    """One Debian short name as an SPDX identifier (or a LicenseRef for the name)."""
    n = name.strip()
    m = _GNU.fullmatch(n)
    if m:
        version = m.group(2) if "." in m.group(2) else m.group(2) + ".0"
        if m.group(1).upper() == "LGPL" and m.group(2) == "2":
            version = "2.0"
        return f"{m.group(1).upper()}-{version}-{'or-later' if m.group(3) else 'only'}"
    exact = _EXACT.get(n.lower())
    if exact:
        return exact
    return "LicenseRef-" + (_SPDX_CHARS.sub("-", n).strip("-") or "unnamed")


def _term(text: str) -> str:
    """`GPL-2+ with OpenSSL exception` and the like stay one LicenseRef: the exception
    names of DEP-5 are free text, not SPDX's list."""
    if " with " in text.lower():
        return "LicenseRef-" + (_SPDX_CHARS.sub("-", text).strip("-"))
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


_SPDX_IDS = set(_EXACT.values())
_SPDX_GNU = re.compile(r"(A?GPL|LGPL|GFDL)-\d\.\d-(only|or-later)")


def spdx_expression(text: str) -> str | None:
    """An expression already meant as SPDX (apk's license field), with every identifier
    that is not one we know kept as a LicenseRef of its name; None if it is no
    expression at all."""
    tokens = text.replace("(", " ( ").replace(")", " ) ").split()
    if not tokens:
        return None
    out = []
    for t in tokens:
        if t in ("(", ")") or t.upper() in ("AND", "OR", "WITH"):
            out.append(t if t in "()" else t.upper())
        elif t in _SPDX_IDS or _SPDX_GNU.fullmatch(t) or t.startswith("LicenseRef-"):
            out.append(t)
        else:
            out.append("LicenseRef-" + (_SPDX_CHARS.sub("-", t).strip("-") or "unnamed"))
    if "WITH" in out:
        return None        # exceptions are a list of their own; do not half-translate one
    return " ".join(out).replace("( ", "(").replace(" )", ")")

"""SPDX licence identifiers and expressions: the one vocabulary SBOM licences use.

Debian's copyright short names and apk's license fields both end here. A name with no
exact SPDX identifier becomes a LicenseRef of that name, never a near match.
"""

from __future__ import annotations

import re

NOASSERTION = "NOASSERTION"

# Debian short names (DEP-5 section "License short name") -> SPDX identifiers.
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
SPDX_CHARS = re.compile(r"[^A-Za-z0-9.-]+")


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
    return "LicenseRef-" + (SPDX_CHARS.sub("-", n).strip("-") or "unnamed")


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
            out.append("LicenseRef-" + (SPDX_CHARS.sub("-", t).strip("-") or "unnamed"))
    if "WITH" in out:
        return None        # exceptions are a list of their own; do not half-translate one
    return " ".join(out).replace("( ", "(").replace(" )", ")")

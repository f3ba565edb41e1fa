"""Doc stripping: what a container never reads, and what stays (licences)."""

from __future__ import annotations

import fnmatch

# What a container never reads; copyright files stay (licences travel with binaries).
STRIP = {
    "docs": ["usr/share/doc/*"],
    "man": ["usr/share/man", "usr/share/man/*"],
    "info": ["usr/share/info", "usr/share/info/*"],
    "locales": ["usr/share/locale", "usr/share/locale/*"],
    "lintian": ["usr/share/lintian", "usr/share/lintian/*"],
}
KEEP = ["usr/share/doc/*/copyright"]

def stripped(path: str, patterns: list[str], symlink: bool = False) -> bool:
    # /usr/share/doc/<pkg> as a symlink (libgcc-s1 -> gcc-12-base) is how a package
    # points at its copyright file: it stays, or the licence is lost with it.
    if symlink and path.startswith("usr/share/doc/") and path.count("/") == 3:
        return False
    return any(fnmatch.fnmatchcase(path, p) for p in patterns) and \
        not any(fnmatch.fnmatchcase(path, k) for k in KEEP)


def strip_patterns(keys: list[str]) -> list[str]:
    return [p for key in keys for p in STRIP[key]]

"""The package stanza shared by APKINDEX and /lib/apk/db/installed.

Both files use apk's one-letter ``X:value`` lines. Values are kept as the exact
strings apk wrote (depends stay space-separated atoms, not re-spelled) so that a
record read from an index can be written into an installed database byte for
byte; parsed views are provided as properties.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from assembler.alpine.dependency import Dependency, parse_atoms

# apk's own write order for a package header (apk_pkg_write_index_header +
# the installed-db extras r/q/s/f). Anything else is kept in `extra`.
_INT_FIELDS = {
    "S": "size",
    "I": "installed_size",
    "t": "build_time",
    "k": "provider_priority",
    "q": "replaces_priority",
}
_STR_FIELDS = {
    "C": "checksum",
    "P": "name",
    "V": "version",
    "A": "arch",
    "T": "description",
    "U": "url",
    "L": "license",
    "o": "origin",
    "m": "maintainer",
    "c": "commit",
    "s": "repository_tag",
    "f": "broken",
}
_LIST_FIELDS = {"D": "depends", "p": "provides", "i": "install_if", "r": "replaces"}
HEADER_ORDER = "CPVASITULomtckDpirqsf"
KNOWN_FIELDS = frozenset(HEADER_ORDER)


@dataclass
class PackageRecord:
    name: str = ""
    version: str = ""
    arch: str = ""
    size: int | None = None  # S: the .apk file size (index); as installed from (db)
    installed_size: int | None = None  # I:
    checksum: str = ""  # C: "Q1" + base64(sha1(control member)), the package identity
    description: str = ""
    url: str = ""
    license: str = ""
    origin: str = ""
    maintainer: str = ""
    build_time: int | None = None
    commit: str = ""
    provider_priority: int | None = None
    depends: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    install_if: list[str] = field(default_factory=list)
    replaces: list[str] = field(default_factory=list)
    replaces_priority: int | None = None
    repository_tag: str = ""
    broken: str = ""
    # Unknown one-letter fields in their original order, never dropped: newer apk
    # versions add fields and we must neither choke on nor lose them.
    extra: list[tuple[str, str]] = field(default_factory=list)

    @property
    def dependencies(self) -> list[Dependency]:
        return [Dependency.parse(d) for d in self.depends]

    @property
    def provided(self) -> list[Dependency]:
        return [Dependency.parse(p) for p in self.provides]

    @property
    def install_if_atoms(self) -> list[Dependency]:
        return [Dependency.parse(i) for i in self.install_if]

    @property
    def replaced(self) -> list[Dependency]:
        return [Dependency.parse(r) for r in self.replaces]

    @property
    def filename(self) -> str:
        """The file name under which a repository serves this package."""
        return f"{self.name}-{self.version}.apk"

    def set_field(self, key: str, value: str) -> None:
        """Apply one ``key:value`` line (the key is one letter)."""
        if key in _INT_FIELDS:
            # digits only: int() would also take " 1", "1_0" and "-1"
            if not (value.isascii() and value.isdigit() and len(value) <= 18):
                raise ValueError(f"{key}:{value[:40]!r} is not a number")
            setattr(self, _INT_FIELDS[key], int(value))
        elif key in _STR_FIELDS:
            setattr(self, _STR_FIELDS[key], value)
        elif key in _LIST_FIELDS:
            getattr(self, _LIST_FIELDS[key]).extend(value.split())
        else:
            self.extra.append((key, value))

    def header_lines(self) -> Iterator[str]:
        """The stanza's package lines in apk's order, without trailing newlines."""
        for key in HEADER_ORDER:
            if key in _STR_FIELDS:
                value = getattr(self, _STR_FIELDS[key])
                # apk always writes the core fields, even when empty (e.g. "U:")
                if value or key in "CPVATUL":
                    yield f"{key}:{value}"
            elif key in _INT_FIELDS:
                value = getattr(self, _INT_FIELDS[key])
                if value is not None:
                    yield f"{key}:{value}"
            else:
                values = getattr(self, _LIST_FIELDS[key])
                if values:
                    yield f"{key}:{' '.join(values)}"
        for key, value in self.extra:
            yield f"{key}:{value}"


def iter_stanzas(text: str) -> Iterator[list[tuple[str, str]]]:
    """Split apk's ``X:value`` text into stanzas separated by blank lines."""
    stanza: list[tuple[str, str]] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line:
            if stanza:
                yield stanza
                stanza = []
            continue
        if len(line) < 2 or line[1] != ":":
            raise ValueError(f"line {lineno}: expected 'X:value', got {line[:60]!r}")
        stanza.append((line[0], line[2:]))
    if stanza:
        yield stanza


def record_from_fields(fields: Iterable[tuple[str, str]]) -> PackageRecord:
    rec = PackageRecord()
    for key, value in fields:
        rec.set_field(key, value)
    return rec


__all__ = ["PackageRecord", "iter_stanzas", "record_from_fields", "parse_atoms", "KNOWN_FIELDS"]

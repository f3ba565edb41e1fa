"""What a resolver is asked and what it answers, whatever the package format.

A format's resolver (debian/resolver.py: apt's rules; alpine/solver.py: apk's)
takes Wants over a Universe and returns a Resolution; the lock records it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from assembler.packages.universe import Package


@dataclass
class Want:
    """A top-level request: a package name, maybe a version relation, and where it came from."""

    name: str
    op: str | None = None
    version: str | None = None
    where: str = ""
    arch: str | None = None

    def __str__(self) -> str:
        return self.name + (f" ({self.op} {self.version})" if self.op else "")


@dataclass
class Resolution:
    arch: str
    packages: dict[str, Package]
    reasons: dict[str, list[str]]        # name -> ["requested"] or names of dependents
    excluded: dict[str, list[str]] = field(default_factory=dict)
    # Packages taken only as slices: name -> slice names (the rest are whole).
    slices: dict[str, list[str]] = field(default_factory=dict)

    def ordered(self) -> list[Package]:
        return [self.packages[n] for n in sorted(self.packages)]


class Resolver(Protocol):
    """A format's resolver: made with the wants, it resolves once."""

    def resolve(self) -> Resolution: ...

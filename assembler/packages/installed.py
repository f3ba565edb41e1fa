"""What an image's package database says is installed: the format-neutral record.

Each package format reads its own database (PackageFormat.read_installed);
image/pkgdb.py puts them together for `assemble inspect` and `assemble diff`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Installed:
    name: str
    version: str
    arch: str
    installed_size: int | None = None   # bytes, as the database states it
    slices: list[str] | None = None     # chisel slices, None for a whole package
    files: list[str] = field(default_factory=list)   # image paths, no leading slash


def text(data: bytes) -> str:
    """A database file's text; bytes that are not UTF-8 kept (paths are bytes)."""
    return data.decode("utf-8", "surrogateescape")

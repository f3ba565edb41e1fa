"""What a command was told about its environment: the cache, mirrors, network, output."""

from __future__ import annotations

from dataclasses import dataclass, field

from assembler.cache import Cache


@dataclass
class Options:
    cache: Cache
    mirrors: dict[str, str] = field(default_factory=dict)   # from --mirror
    offline: bool = False
    quiet: bool = False
    snapshot_mirror: str | None = None                      # from --snapshot-mirror
    snapshot: str | None = None                             # lock --snapshot TIMESTAMP

"""InRelease: the signed table of contents of one suite of a Debian archive."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from assembler.errors import IntegrityError, MalformedError
from assembler.untrusted import byte_count, sha256_hex


@dataclass
class Release:
    suite: str
    codename: str
    date: datetime
    valid_until: datetime | None
    acquire_by_hash: bool
    architectures: list[str]
    components: list[str]
    all_in_arch: bool                      # binary-all folded into binary-<arch>
    sha256: dict[str, tuple[str, int]] = field(default_factory=dict)
    version: str = ""                      # the point release, e.g. "12.15" (os-release)


def _date(value: str, what: str) -> datetime:
    try:
        d = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise IntegrityError(f"{what}: unreadable date {value!r}.") from None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def parse_release(text: str, what: str) -> Release:
    fields: dict[str, str] = {}
    sha256: dict[str, tuple[str, int]] = {}
    key = ""
    for line in text.splitlines():
        if not line:
            continue
        if line[0] in " \t":
            if key == "sha256":
                parts = line.split()
                if len(parts) != 3:
                    raise MalformedError(f"{what}: SHA256 line {line.strip()[:80]!r} is not "
                                         "'<sha256> <size> <path>'; refusing the index.")
                sha256[parts[2]] = (sha256_hex(parts[0], f"{what}: {parts[2][:80]}"),
                                    byte_count(parts[1], f"{what}: {parts[2][:80]}"))
            continue
        k, _, v = line.partition(":")
        key = k.strip().lower()
        fields[key] = v.strip()
    if "date" not in fields or not sha256:
        raise IntegrityError(f"{what}: not a Release file (no Date or SHA256 list).")
    no_all = fields.get("no-support-for-architecture-all", "")
    return Release(
        suite=fields.get("suite", ""),
        codename=fields.get("codename", ""),
        date=_date(fields["date"], what),
        valid_until=_date(fields["valid-until"], what) if "valid-until" in fields else None,
        acquire_by_hash=fields.get("acquire-by-hash", "no").lower() == "yes",
        architectures=fields.get("architectures", "").split(),
        components=fields.get("components", "").split(),
        all_in_arch=no_all == "Packages",
        sha256=sha256,
        version=fields.get("version", ""),
    )


def check_release(rel: Release, suite: str, what: str, now: datetime | None = None,
                  snapshot: bool = False) -> bool:
    """Refuse an expired index, or one that answers for a different suite (a replay).

    A snapshot is an old index by definition: its Valid-Until has passed, which is
    accepted (and returned as True, for the lock to say so), never for a mirror.
    """
    now = now or datetime.now(UTC)
    expired = rel.valid_until is not None and now > rel.valid_until
    if expired and not snapshot:
        raise IntegrityError(
            f"{what} expired on {rel.valid_until:%Y-%m-%d %H:%M} UTC (Valid-Until); the mirror "
            "is stale or an old index is being replayed. Use an up-to-date mirror.")
    if suite not in (rel.suite, rel.codename):
        raise IntegrityError(f"{what} is for suite {rel.codename or rel.suite!r}, not {suite!r}; "
                             "refusing it.")
    return expired

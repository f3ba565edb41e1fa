"""Snapshot archives: where a locked package file is found after the mirror dropped it.

Debian's pool keeps only current versions, so a lock stops building within
weeks. A snapshot archive keeps every state of an archive under
`<base>/archive/<archive>/<YYYYmmddTHHMMSSZ>/`, and a timestamp that is not
itself a snapshot means the newest snapshot at or before it. The base URL is
configuration like any mirror (--snapshot-mirror, the spec's
`snapshot-mirror:`, ASSEMBLER_SNAPSHOT_MIRROR), never code.

The lock records one timestamp per index: the one it was resolved against
(`assemble lock --snapshot`), else a day after the index's signed Date. A
day is late enough for the snapshot archive to have imported that index and
earlier than Debian removes files it no longer lists (36 hours), so the
snapshot still holds every file the index named.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from assembler.distro.mirror import check_url
from assembler.errors import SpecError

ENV = "ASSEMBLER_SNAPSHOT_MIRROR"
FORMAT = "%Y%m%dT%H%M%SZ"
AFTER_RELEASE = timedelta(days=1)
HOW = (f"pass --snapshot-mirror URL, set {ENV}=URL or add 'snapshot-mirror: URL' to the spec, "
       "where URL is the base of a snapshot archive (files are then fetched from "
       "URL/archive/ARCHIVE/TIMESTAMP/pool/...)")


def parse_timestamp(text: str, what: str = "--snapshot") -> str:
    """A snapshot timestamp in the archive's spelling (20240101T000000Z), checked."""
    try:
        when = datetime.strptime(text, FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise SpecError(f"{what} {text!r} is not a snapshot timestamp; write it as "
                        "YYYYmmddTHHMMSSZ in UTC, for example 20240601T000000Z.") from None
    return when.strftime(FORMAT)


def for_index(date: datetime) -> str:
    """The snapshot to look in for files of an index signed at `date` (see the docstring)."""
    return (date.astimezone(UTC) + AFTER_RELEASE).strftime(FORMAT)


def snapshot_base(cli: str | None, spec: str | None, spec_where: str = "the spec") -> str | None:
    """The configured snapshot archive's base URL, first of CLI, spec, environment; or None."""
    for origin, url in (("--snapshot-mirror", cli), (f"{spec_where} snapshot-mirror", spec),
                        (ENV, os.environ.get(ENV))):
        if url:
            check_url(url, origin)
            return url.rstrip("/")
    return None


def archive_url(base: str, archive: str, timestamp: str) -> str:
    """The archive root of one snapshot: what a mirror URL is for a live archive."""
    return f"{base}/archive/{archive}/{timestamp}"


def require_base(base: str | None) -> str:
    if base is None:
        raise SpecError(f"--snapshot needs a snapshot archive to resolve against: {HOW}.")
    return base


def fallbacks(indexes: list[dict], base: str | None, archives: set[str]
              ) -> dict[tuple[str, str], str | None]:
    """(archive, suite) -> the snapshot archive root holding that index's files, or None
    when no snapshot archive is configured. Only the distro's own archives have
    snapshots (`archives` names them); other indexes are absent."""
    return {(i["archive"], i["suite"]): archive_url(base, i["archive"], i["snapshot"])
            if base else None
            for i in indexes if i.get("snapshot") and i["archive"] in archives}


def missing_message(name: str, url: str, fallback: str | None, snapshots: bool) -> str:
    """One paragraph for a locked file the mirror no longer has."""
    update = "run 'assemble lock --update' to move to versions the mirror has."
    if fallback:
        return (f"package {name}: {url} is gone from the mirror and the snapshot archive "
                f"has no {fallback} either; check the snapshot archive URL, or {update}")
    if not snapshots:
        return f"package {name}: {url} is gone from the mirror; {update}"
    return (f"package {name}: {url} is gone from the mirror (Debian drops superseded "
            "versions from its pool). To keep building this lock, configure a snapshot "
            f"archive: {HOW}. Or {update}")

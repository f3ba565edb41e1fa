"""The lockfile's typed model: read and validated once, written byte-stably.

Every field a command reads is checked here when the file is read, so a
hand-edited or damaged lock fails with one paragraph and never later in a
traceback. JSON keys keep the order they have always had, so `lock --update`
against an unchanged archive leaves the file untouched.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from assembler.untrusted import archive_path_problem, is_sha256

LOCK_VERSION = 1
_TIMESTAMP = re.compile(r"[0-9]{8}T[0-9]{6}Z")   # a snapshot archive's YYYYmmddTHHMMSSZ
# The keys every package entry has; what else it has belongs to the package format
# (apk: repository, checksum, datahash) and is kept in `extra`, in order.
_PACKAGE_KEYS = ("name", "version", "arch", "archive", "suite", "filename", "size", "sha256",
                 "source", "reason")
_REQUIRED = ("name", "version", "arch", "archive", "suite", "filename", "size", "sha256",
             "reason")


class LockProblem(ValueError):
    """What is wrong with a lock's shape (the reader adds the file and the remedy)."""


@dataclass
class LockedIndex:
    """One signed index the lock was resolved against.

    `fields` is the entry as written: archive, suite, date and the format's own
    (Debian: inrelease-sha256; apk: repository, description, apkindex-sha256, signed-by).
    """

    fields: dict[str, Any]

    @property
    def archive(self) -> str:
        return str(self.fields.get("archive", ""))

    @property
    def suite(self) -> str:
        return str(self.fields.get("suite", ""))

    @property
    def date(self) -> str:
        return str(self.fields["date"])

    @property
    def snapshot(self) -> str | None:
        """The snapshot archive timestamp that keeps this index's files (distro/snapshot.py)."""
        value = self.fields.get("snapshot")
        return str(value) if value is not None else None

    def timestamp(self) -> datetime:
        return datetime.strptime(self.date.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z")

    @classmethod
    def from_json(cls, data: object, arch: str) -> LockedIndex:
        if not isinstance(data, dict):
            raise LockProblem(f"'indexes' of {arch} is not a list of objects")
        index = cls(dict(data))
        try:
            index.timestamp()
        except (KeyError, ValueError):
            raise LockProblem(f"an index of {arch} has no valid 'date' "
                              f"({data.get('date')!r})") from None
        if "snapshot" in data and not _TIMESTAMP.fullmatch(str(data["snapshot"])):
            raise LockProblem(f"an index of {arch} has no valid 'snapshot' "
                              f"({data['snapshot']!r})")
        return index


@dataclass
class LockedPackage:
    name: str
    version: str
    arch: str
    archive: str
    filename: str              # archive-relative, e.g. pool/main/p/python3.11/...
    size: int
    sha256: str
    reason: list[str]          # "requested", "essential", or the dependents' names
    suite: str = ""
    source: str = ""
    slices: list[str] | None = None   # taken only as these slices; None: whole
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "version": self.version, "arch": self.arch,
            "archive": self.archive, "suite": self.suite, "filename": self.filename,
            "size": self.size, "sha256": self.sha256, "source": self.source,
            "reason": list(self.reason), **self.extra,
        }
        if self.slices is not None:
            out["slices"] = list(self.slices)
        return out

    @classmethod
    def from_json(cls, data: object, arch: str) -> LockedPackage:
        if not isinstance(data, dict):
            raise LockProblem(f"a package entry of {arch} is not an object")
        name = data.get("name", "?")
        for k in _REQUIRED:
            if k not in data:
                raise LockProblem(f"package entry {name} for {arch} lacks {k!r}")
        for k in ("name", "version", "arch", "archive", "suite", "filename", "source"):
            if k in data and not isinstance(data[k], str):
                raise LockProblem(f"{k!r} of package entry {name} for {arch} is not a string")
        size = data["size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise LockProblem(f"'size' of {name} for {arch} is not a byte count")
        if not is_sha256(data["sha256"]):
            raise LockProblem(f"'sha256' of {name} for {arch} is not 64 hex digits")
        path_problem = archive_path_problem(data["filename"])
        if path_problem:
            raise LockProblem(f"'filename' of {name} for {arch} is not a relative archive "
                              f"path ({path_problem})")
        for k in ("reason", "slices"):
            if k in data and not (isinstance(data[k], list)
                                  and all(isinstance(x, str) for x in data[k])):
                raise LockProblem(f"{k!r} of {name} for {arch} is not a list of names")
        return cls(name=data["name"], version=data["version"], arch=data["arch"],
                   archive=data["archive"], filename=data["filename"], size=size,
                   sha256=data["sha256"], reason=list(data["reason"]),
                   suite=data.get("suite", ""), source=data.get("source", ""),
                   slices=list(data["slices"]) if "slices" in data else None,
                   extra={k: v for k, v in data.items()
                          if k not in _PACKAGE_KEYS and k != "slices"})


@dataclass
class ArchLock:
    indexes: list[LockedIndex]
    packages: list[LockedPackage]
    excluded: dict[str, list[str]] = field(default_factory=dict)

    def package(self, name: str) -> LockedPackage | None:
        return next((p for p in self.packages if p.name == name), None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"indexes": [dict(i.fields) for i in self.indexes],
                               "packages": [p.to_json() for p in self.packages]}
        if self.excluded:
            out["excluded"] = {k: list(v) for k, v in self.excluded.items()}
        return out

    @classmethod
    def from_json(cls, data: object, arch: str) -> ArchLock:
        if not isinstance(data, dict) or not isinstance(data.get("packages"), list):
            raise LockProblem(f"{arch} has no list of 'packages'")
        indexes = data.get("indexes", [])
        if not isinstance(indexes, list):
            raise LockProblem(f"'indexes' of {arch} is not a list of objects")
        excluded = data.get("excluded", {})
        if not isinstance(excluded, dict) or not all(
                isinstance(v, list) and all(isinstance(x, str) for x in v)
                for v in excluded.values()):
            raise LockProblem(f"'excluded' of {arch} is not an object of package lists")
        return cls(indexes=[LockedIndex.from_json(i, arch) for i in indexes],
                   packages=[LockedPackage.from_json(p, arch) for p in data["packages"]],
                   excluded={str(k): list(v) for k, v in excluded.items()})


@dataclass
class Lock:
    spec_file: str
    inputs_digest: str
    distro: str
    archs: dict[str, ArchLock]
    spec_extra: dict[str, Any] = field(default_factory=dict)   # later keys of "spec"

    def dates(self) -> list[datetime]:
        return [i.timestamp() for a in self.archs.values() for i in a.indexes]

    def to_json(self) -> dict[str, Any]:
        return {
            "lockfile-version": LOCK_VERSION,
            "spec": {"file": self.spec_file, "inputs-digest": self.inputs_digest,
                     **self.spec_extra},
            "distro": self.distro,
            "archs": {a: self.archs[a].to_json() for a in self.archs},
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, data: object) -> Lock:
        """A parsed lock document -> Lock; LockProblem says what is wrong with it."""
        if not isinstance(data, dict):
            raise LockProblem("it is not a JSON object")
        spec = data.get("spec")
        if not isinstance(spec, dict):
            raise LockProblem("'spec' is not an object")
        archs = data.get("archs")
        if not isinstance(archs, dict) or not archs:
            raise LockProblem("'archs' is missing or not an object of architectures")
        return cls(spec_file=str(spec.get("file", "")),
                   inputs_digest=str(spec.get("inputs-digest", "")),
                   distro=str(data.get("distro", "")),
                   archs={str(a): ArchLock.from_json(e, str(a)) for a, e in archs.items()},
                   spec_extra={k: v for k, v in spec.items()
                               if k not in ("file", "inputs-digest")})

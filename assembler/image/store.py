"""The files of an image on disk: a tar archive (ours, `docker save`, an OCI archive)
or a directory (an OCI layout), read the same way by whoever needs them."""

from __future__ import annotations

import dataclasses
import os
import tarfile
from pathlib import Path
from typing import IO

from assembler.errors import AssemblerError
from assembler.fetch.boundedtar import Budget, Limits, tarinfo_class

MAX_DOCUMENT = 4 << 20   # JSON documents (index, manifest, config) are small; refuse more


class TarOrDir:
    """Named files inside `path`; subclasses say what a missing or broken one means."""

    error: type[AssemblerError] = AssemblerError

    def __init__(self, path: Path, limits: Limits | None = None) -> None:
        self.path = path
        self.limits = limits or Limits.from_env()
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        if path.is_dir():
            return
        what = f"{path} (image archive)"
        # Headers, names and the member count are bounded as in a package's tar; a blob's
        # declared size costs nothing until it is read (and layers are bounded then), so
        # one blob may be as large as a whole image.
        budget = Budget(what, dataclasses.replace(self.limits, member=self.limits.image),
                        ceiling="image", subject="image")
        try:
            self._tar = tarfile.open(  # noqa: SIM115 - closed in close()
                path, "r:*", tarinfo=tarinfo_class(what, self.limits, "image"))
            for m in self._tar:
                budget.admit(m)
                if m.isfile() or m.issym() or m.islnk():
                    self._members[os.path.normpath(m.name.lstrip("/"))] = m
        except AssemblerError:
            self.close()
            raise
        except OSError as e:
            self.close()
            raise self.error(f"{path} is unreadable ({e.strerror or e}).") from None
        except (tarfile.TarError, EOFError) as e:
            self.close()
            raise self.error(self.not_a_tar(e)) from None

    def not_a_tar(self, e: Exception) -> str:
        return f"{self.path} is not a readable tar archive nor a directory ({e})."

    def missing(self, name: str) -> str:
        return f"{self.path}: {name} is missing."

    def __enter__(self) -> TarOrDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None

    def _in_dir(self, name: str) -> Path:
        """`name` inside the directory; a name from a document (docker save's manifest.json
        lists its layers) must not reach a host file through '..', '/' or a symlink."""
        p = self.path / name
        if os.path.isabs(name) or ".." in Path(name).parts or \
                not p.resolve().is_relative_to(self.path.resolve()):
            raise self.error(f"{self.path}: {name!r} names a file outside the image "
                             "directory; refusing to read it.")
        return p

    def has(self, name: str) -> bool:
        if self._tar is None:
            return (self.path / name).is_file()
        return os.path.normpath(name) in self._members

    def open(self, name: str) -> IO[bytes]:
        if self._tar is None:
            path = self._in_dir(name)
        try:
            if self._tar is None:
                return open(path, "rb")
            member = self._members.get(os.path.normpath(name))
            f = self._tar.extractfile(member) if member is not None else None
        except (OSError, tarfile.TarError, KeyError):
            f = None
        if f is None:
            raise self.error(self.missing(name))
        return f

    def read_small(self, name: str) -> bytes:
        """A JSON document's bytes, refusing implausibly large ones."""
        with self.open(name) as f:
            data = f.read(MAX_DOCUMENT + 1)
        if len(data) > MAX_DOCUMENT:
            raise self.error(f"{self.path}: {name} is over {MAX_DOCUMENT:,} bytes, implausibly "
                             "large for a JSON document; refusing the image.")
        return data

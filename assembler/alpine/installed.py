"""/lib/apk/db/installed: apk's database of installed packages, read and written.

Each package is its index stanza (C P V A S I T U L o m t c k D p i, then
r q s f) followed by the files it owns::

    F:etc/crontabs        a directory the package owns
    M:0:0:700             its uid:gid:mode, only when not root:root 0755
    R:root                a file (or symlink) in that directory
    a:0:0:600             its uid:gid:mode, only when not root:root 0644
    Z:Q1...               Q1 + base64(sha1) of the content (of the target for symlinks)

and a blank line ends every package, the last one included. Modes are octal;
an ACL may carry a fourth field, the checksum of the entry's xattrs.

Scanners (Trivy, Syft, Grype) read this file to list what an image contains,
so we write it exactly as apk would.
"""

from __future__ import annotations

import posixpath
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field

from assembler.alpine.record import PackageRecord, iter_stanzas
from assembler.packages.installed import Installed, text

_FILE_KEYS = frozenset("FMRaZ")


@dataclass(frozen=True)
class Acl:
    uid: int
    gid: int
    mode: int  # permission bits incl. setuid/setgid/sticky, no file type
    xattr_checksum: str = ""

    @classmethod
    def parse(cls, value: str) -> Acl:
        parts = value.split(":", 3)
        if len(parts) < 3:
            raise ValueError(f"bad ACL {value!r}, expected uid:gid:mode")
        return cls(
            int(parts[0]), int(parts[1]), int(parts[2], 8), parts[3] if len(parts) > 3 else ""
        )

    def __str__(self) -> str:
        tail = f":{self.xattr_checksum}" if self.xattr_checksum else ""
        return f"{self.uid}:{self.gid}:{self.mode:o}{tail}"


DEFAULT_DIR_ACL = Acl(0, 0, 0o755)
DEFAULT_FILE_ACL = Acl(0, 0, 0o644)


@dataclass
class InstalledFile:
    name: str  # base name within its directory
    acl: Acl = DEFAULT_FILE_ACL
    checksum: str = ""  # Z:, empty when apk recorded none


@dataclass
class InstalledDir:
    path: str  # relative, no leading or trailing slash
    acl: Acl = DEFAULT_DIR_ACL
    files: list[InstalledFile] = field(default_factory=list)


@dataclass
class InstalledPackage:
    record: PackageRecord
    dirs: list[InstalledDir] = field(default_factory=list)

    def paths(self) -> list[str]:
        """Every file path the package owns, as apk would list it."""
        return [
            posixpath.join(d.path, f.name) if d.path else f.name for d in self.dirs for f in d.files
        ]

    def add_entry(self, path: str, mode: int, uid: int, gid: int, checksum: str | None) -> None:
        """Record one member of the package's data tar, in tar order (like apk).

        `mode` is a full st_mode (type bits decide directory vs file); files
        whose directory has no entry of its own get one, as apk does.
        """
        perms = stat.S_IMODE(mode)
        if stat.S_ISDIR(mode):
            d = self._dir(path)
            d.acl = Acl(uid, gid, perms)
            return
        parent, name = posixpath.split(path)
        self._dir(parent).files.append(
            InstalledFile(name=name, acl=Acl(uid, gid, perms), checksum=checksum or "")
        )

    def _dir(self, path: str) -> InstalledDir:
        # the latest directory is the usual target: tar lists a dir, then its files
        if self.dirs and self.dirs[-1].path == path:
            return self.dirs[-1]
        for d in self.dirs:
            if d.path == path:
                return d
        d = InstalledDir(path=path)
        self.dirs.append(d)
        return d


def parse_installed(text: str) -> list[InstalledPackage]:
    """Parse the text of /lib/apk/db/installed."""
    packages = []
    for stanza in iter_stanzas(text):
        pkg = InstalledPackage(PackageRecord())
        cur_dir: InstalledDir | None = None
        cur_file: InstalledFile | None = None
        for key, value in stanza:
            if key == "F":
                cur_dir, cur_file = InstalledDir(path=value), None
                pkg.dirs.append(cur_dir)
            elif key == "M" and cur_dir is not None:
                cur_dir.acl = Acl.parse(value)
            elif key == "R":
                if cur_dir is None:
                    # apk puts files of the root directory under an "F:" with an
                    # empty path; tolerate a writer that omitted it
                    cur_dir = InstalledDir(path="")
                    pkg.dirs.append(cur_dir)
                cur_file = InstalledFile(name=value)
                cur_dir.files.append(cur_file)
            elif key == "a" and cur_file is not None:
                cur_file.acl = Acl.parse(value)
            elif key == "Z" and cur_file is not None:
                cur_file.checksum = value
            elif key in _FILE_KEYS:
                raise ValueError(f"{key}: line outside of a directory/file in {pkg.record.name}")
            else:
                pkg.record.set_field(key, value)
        packages.append(pkg)
    return packages


def format_installed(packages: Iterable[InstalledPackage]) -> str:
    """Write /lib/apk/db/installed text exactly as apk does."""
    out: list[str] = []
    for pkg in packages:
        out.extend(pkg.record.header_lines())
        for d in pkg.dirs:
            out.append(f"F:{d.path}")
            if d.acl != DEFAULT_DIR_ACL:
                out.append(f"M:{d.acl}")
            for f in d.files:
                out.append(f"R:{f.name}")
                if f.acl != DEFAULT_FILE_ACL:
                    out.append(f"a:{f.acl}")
                if f.checksum:
                    out.append(f"Z:{f.checksum}")
        out.append("")  # the blank line that ends every package
    return "\n".join(out) + "\n" if out else ""


DATABASE = "lib/apk/db/installed"


def read_database(files: dict[str, bytes]) -> tuple[list[Installed], list[str]]:
    """The packages of an image's apk database (for inspect), and the database read."""
    data = files.get(DATABASE)
    if data is None:
        return [], []
    try:
        installed = parse_installed(text(data))
    except ValueError:
        return [], []   # not a database apk could read either: no packages to report
    return [Installed(p.record.name, p.record.version, p.record.arch, p.record.installed_size,
                      files=p.paths()) for p in installed], [DATABASE]

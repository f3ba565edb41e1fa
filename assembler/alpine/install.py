"""Installing .apk packages into the image tree, and the state apk would leave behind.

Each package is verified again from the cache against its lock entry (control
checksum, datahash, signature per the distro's policy), then its data tar is
streamed into the rootfs Tree, which normalizes paths and refuses hostile
entries exactly as for Debian. What apk's database and scripts would have
done is written declaratively:

* /lib/apk/db/installed: every package's index fields and the files this
  image really holds of it (after doc stripping), with modes and Q1 SHA1
  checksums, in apk's own format (scanners read it);
* /lib/apk/db/scripts.tar and /lib/apk/db/triggers, as apk keeps them
  (the scripts are never run);
* /etc/apk/world, /etc/apk/repositories, /etc/apk/keys/*, /etc/apk/arch;
* busybox applet links, from the list the busybox package ships in
  /etc/busybox-paths.d/ (busybox itself is never run; see docs/alpine.md).

File ownership follows apk: a path shipped by two packages is an error
unless one ``replaces`` the other or both come from the same origin, and
the replaced package no longer lists the file.
"""

from __future__ import annotations

import hashlib
import io
import stat
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from assembler.alpine.dependency import Dependency
from assembler.alpine.installed import InstalledPackage, format_installed
from assembler.alpine.package import ApkPackage, DataEntry, q1
from assembler.alpine.repository import Trust, verify_fetched
from assembler.alpine.signing import Buffer
from assembler.lock.model import LockedPackage
from assembler.progress import Progress
from assembler.rootfs.tree import Tree, owner_of

DB_DIR = "lib/apk/db"
BUSYBOX = "bin/busybox"
BUSYBOX_PATHS = "etc/busybox-paths.d/"
_SCRIPTS = (".pre-install", ".post-install", ".pre-upgrade", ".post-upgrade",
            ".pre-deinstall", ".post-deinstall", ".trigger")


@dataclass
class ApkSetup:
    """What the image's /etc/apk says: where packages come from and who signs them."""

    arch: str  # Alpine's name (x86_64)
    trusts: dict[str, Trust]  # archive name -> keys and policy
    world: list[str]  # the spec's requests, as apk atoms
    repositories: list[str]  # URLs for /etc/apk/repositories
    warnings: list[str] = field(default_factory=list)


class _Sha1Reader(io.RawIOBase):
    """Passes a member's bytes through, hashing them; at the end, checks the
    SHA1 the package's tar header declares (when it declares one)."""

    def __init__(self, raw: IO[bytes], expected: str | None, what: str) -> None:
        self._raw = raw
        self._h = hashlib.sha1()
        self._expected = expected
        self._what = what
        self.finished = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Buffer) -> int:  # type: ignore[override]
        data = self._raw.read(len(b))
        if not data:
            self._finish()
            return 0
        self._h.update(data)
        b[: len(data)] = data  # type: ignore[index]
        return len(data)

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if self._expected and self._h.hexdigest() != self._expected.lower():
            from assembler.errors import IntegrityError

            raise IntegrityError(f"{self._what}: content does not match its "
                                 "APK-TOOLS.checksum.SHA1 header; refusing the package.")

    def digest(self) -> bytes:
        while not self.finished:
            if not self.read(1 << 16):
                break
        return self._h.digest()


def _replaces(pkg: ApkPackage, other: InstalledPackage) -> bool:
    for atom in pkg.info.replaced:
        if atom.name == other.record.name and atom.matches(other.record.version):
            return True
    return False


@dataclass
class _Owner:
    db: InstalledPackage
    apk: ApkPackage


def unpack_one(tree: Tree, entry: LockedPackage, path: Path, trust: Trust,
               skip: Callable[[str], bool], owners: dict[str, _Owner]) -> _Owner:
    """Verify one locked .apk and stream its data into `tree`; return its db entry.

    `owners` maps each file path installed so far to its package, for apk's
    replaces rules.
    """
    apk = verify_fetched(path, entry, trust)
    name = apk.info.name
    me = _Owner(InstalledPackage(apk.info), apk)
    for e in apk.iter_data():
        if e.path == "." or skip(e.path):
            continue
        info = e.info
        info.name = e.path
        if info.isdir():
            tree.add_tar_member(info, None, name)
            if (got := tree.get(e.path)) is not None and got.kind == "dir":
                # apk records the package's own idea of the directory
                me.db.add_entry(e.path, stat.S_IFDIR | info.mode, info.uid, info.gid, None)
            continue
        previous = owners.get(e.path)
        replace = False
        if previous is not None and previous.db.record.name != name:
            theirs = previous.db.record
            if _replaces(apk, previous.db) or (theirs.origin and theirs.origin == apk.info.origin):
                replace = True
            elif _replaces(previous.apk, me.db):
                continue  # the package already installed wins, as in apk
        checksum = _add(tree, e, name, replace)
        got = tree.get(e.path)
        if got is None or got.origin != name:
            continue  # dropped (device node) or identical and kept by its first owner
        if replace and previous is not None:
            _disown(previous.db, e.path)
        kind = stat.S_IFLNK if got.kind == "symlink" else stat.S_IFREG
        mode = 0o777 if got.kind == "symlink" else got.mode
        me.db.add_entry(e.path, kind | mode, got.uid, got.gid, checksum)
        owners[e.path] = me
    return me


def _add(tree: Tree, e: DataEntry, origin: str, replace: bool) -> str | None:
    """Add one non-directory member; return its Z: checksum for the database."""
    info = e.info
    mtime = int(info.mtime)
    if info.isreg():
        raw = e.stream()
        reader = _Sha1Reader(raw if raw is not None else io.BytesIO(b""), e.sha1,
                             f"{origin}: {e.path}")
        if replace:
            tree.add_file(e.path, cast(IO[bytes], reader), info.mode & 0o7777,
                          *owner_of(info), origin,
                          mtime, replace=True)
        else:
            tree.add_tar_member(info, reader, origin)  # type: ignore[arg-type]
        return q1(reader.digest())
    if info.issym():
        if replace:
            tree.add_symlink(e.path, info.linkname, *owner_of(info), origin, mtime,
                             replace=True)
        else:
            tree.add_tar_member(info, None, origin)
        return e.checksum or q1(hashlib.sha1(info.linkname.encode()).digest())
    tree.add_tar_member(info, None, origin)  # hardlinks, and devices the tree drops
    if info.islnk():
        target = tree.get(info.linkname)
        return e.checksum or (None if target is None else _checksum_of(tree, target.path))
    return e.checksum


def _checksum_of(tree: Tree, path: str) -> str:
    return q1(hashlib.sha1(tree.read(path)).digest())


def _disown(db: InstalledPackage, path: str) -> None:
    parent, _, base = path.rpartition("/")
    for d in db.dirs:
        if d.path == parent:
            d.files = [f for f in d.files if f.name != base]


def install_packages(tree: Tree, packages: list[LockedPackage], files: Mapping[str, Path],
                     setup: ApkSetup, skip: Callable[[str], bool],
                     progress: Progress | None = None) -> list[str]:
    """Unpack every locked package, then write apk's state. Returns warnings."""
    progress = progress or Progress(quiet=True)
    before = len(tree.warnings)
    owners: dict[str, _Owner] = {}
    installed: list[_Owner] = []
    for i, p in enumerate(packages):
        progress.status(f"unpacking {i + 1}/{len(packages)} {p.name}")
        installed.append(unpack_one(tree, p, files[p.sha256], setup.trusts[p.archive],
                                    skip, owners))
    write_state(tree, installed, setup)
    link_busybox(tree, setup)
    return tree.warnings[before:] + setup.warnings


def write_state(tree: Tree, installed: list[_Owner], setup: ApkSetup) -> None:
    db = format_installed(o.db for o in installed)
    tree.add_file(f"{DB_DIR}/installed", db.encode(), 0o644, replace=True)
    tree.add_file(f"{DB_DIR}/scripts.tar", _scripts_tar(installed), 0o644, replace=True)
    triggers = "".join(f"{o.apk.control_checksum} {' '.join(t.split())}\n"
                       for o in installed for t in o.apk.pkginfo_values("triggers") if t.strip())
    tree.add_file(f"{DB_DIR}/triggers", triggers.encode(), 0o644, replace=True)
    tree.add_file("etc/apk/world", "".join(f"{w}\n" for w in sorted(set(setup.world))).encode(),
                  0o644, replace=True)
    tree.add_file("etc/apk/repositories",
                  "".join(f"{r}\n" for r in setup.repositories).encode(), 0o644, replace=True)
    tree.add_file("etc/apk/arch", f"{setup.arch}\n".encode(), 0o644, replace=True)
    keys: dict[str, bytes] = {}
    for trust in setup.trusts.values():
        keys.update(trust.keys)
    for key_name in sorted(keys):
        tree.add_file(f"etc/apk/keys/{key_name}", keys[key_name], 0o644, replace=True)


def _scripts_tar(installed: list[_Owner]) -> bytes:
    """apk's scripts.tar: `<name>-<version>.<Q1>.<script>` members, fixed metadata."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT,
                      encoding="utf-8") as tar:
        for o in installed:
            rec = o.db.record
            for script in _SCRIPTS:
                content = o.apk.scripts.get(script)
                if content is None:
                    continue
                info = tarfile.TarInfo(f"{rec.name}-{rec.version}.{rec.checksum}{script}")
                info.size, info.mode, info.mtime = len(content), 0o755, 0
                info.uname = info.gname = "root"
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def link_busybox(tree: Tree, setup: ApkSetup) -> int:
    """Create the applet symlinks `busybox --install -s` would, without running it.

    The list comes from /etc/busybox-paths.d/ (one absolute path per line), which
    Alpine's and Wolfi's busybox packages ship for exactly this purpose (apko
    reads it too). A path some package already installed is left alone.
    """
    bb = tree.get(BUSYBOX)
    if bb is None:
        return 0
    lists = [e for e in tree.entries()
             if e.path.startswith(BUSYBOX_PATHS) and e.kind in ("file", "hardlink")]
    if not lists:
        setup.warnings.append(
            f"{bb.origin}: the busybox package ships no {BUSYBOX_PATHS} applet list, so no "
            "applet links were made (only the links the package itself ships, such as "
            "/bin/sh); see docs/alpine.md.")
        return 0
    made = 0
    for entry in lists:
        for line in tree.read(entry.path).decode("utf-8", "replace").splitlines():
            path = line.strip()
            if not path or path.startswith("#") or tree.get(path) is not None:
                continue
            tree.add_symlink(path, "/" + BUSYBOX, origin=bb.origin)
            made += 1
    return made


def world_atoms(texts: list[str]) -> list[str]:
    """Spec requests as /etc/apk/world lines (apk's canonical operator spelling)."""
    return [str(Dependency.parse("".join(t.split()))) for t in texts]

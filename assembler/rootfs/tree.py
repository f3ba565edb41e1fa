"""The image filesystem, modelled in memory and filled from package tars.

Only metadata lives in Python objects. File contents are appended to one
anonymous spool file and referenced by (offset, size): a Python bytes object
per file would put the whole image (hundreds of MB) in RSS, while the spool
sits in the page cache the kernel can evict. Identical contents are stored
once (Multi-Arch: same packages and hardlinks ship the same bytes).

The tree enforces what dpkg would on a real system, and a few things dpkg
trusts packages with but an image builder must not:

* paths are normalized (`./usr/x`, `/usr/x` -> `usr/x`); a `..` component is
  rejected, because a tar that says `../etc/passwd` is hostile or broken;
* a relative symlink that climbs above the root is rejected (absolute
  targets such as `/etc/alternatives/x` are ordinary Debian practice);
* a parent component that is a symlink is followed, as the kernel would when
  dpkg unpacks through it, so the tree never holds both `lib64 -> usr/lib64`
  and a real `lib64/` directory;
* device nodes and fifos are dropped: an unprivileged build cannot create
  them, and a container runtime supplies /dev anyway;
* setuid/setgid bits on files are stripped unless allowed, since a
  distroless image rarely wants a privilege-raising binary by accident;
  world-writable files and directories without the sticky bit are kept (dpkg
  keeps them) but reported;
* owners follow the tar's names as dpkg does (`owner_of`); a name with a
  newline is refused, as dpkg refuses it, since it would forge lines in the
  package databases that list paths one per line;
* two packages shipping different things at one path is an error naming both.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import stat
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from typing import IO, Literal

from assembler.errors import AssemblerError, IntegrityError, MalformedError
from assembler.fetch.boundedtar import exceeded

Kind = Literal["file", "dir", "symlink", "hardlink"]

GENERATED = "generated"
# merged-/usr (Debian since bookworm, Ubuntu, Alpine since 3.20): these
# top-level directories are symlinks into /usr.
MERGED_USR_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Created up front; the multilib ones only once something needs them, so an
# amd64 image does not carry dangling lib32/libx32 links.
_MERGED_USR_ALWAYS = ("bin", "sbin", "lib")
_SYMLINK_HOPS = 40  # Linux's MAXSYMLINKS
_CHUNK = 1 << 20
_PRIVILEGE_BITS = stat.S_ISUID | stat.S_ISGID


@dataclass(slots=True)
class Entry:
    """One path in the image. `link` is the symlink target, or the hardlinked path."""

    path: str
    kind: Kind
    mode: int
    uid: int = 0
    gid: int = 0
    size: int = 0
    link: str = ""
    origin: str = GENERATED
    sha256: str = ""
    md5: str = ""
    # None means "no time of its own": the layer writer uses SOURCE_DATE_EPOCH.
    mtime: int | None = None
    # Directories created only because something was put inside them: an
    # explicit entry for the same directory later replaces their metadata.
    implicit: bool = False
    offset: int = -1
    # Where the bytes live: 0 is the tree's spool, others files attached with attach().
    store: int = 0


def owner_of(info: tarfile.TarInfo) -> tuple[int, int]:
    """A package member's uid and gid as dpkg installs them.

    dpkg looks the tar's user and group names up on the system and uses the
    numeric ids only for a name it does not know. Every system knows `root`,
    so a member named root is 0 whatever id the packager's tar recorded
    (a tar made as uid 1000 with root names is root's); other names keep the
    numeric ids, which for Debian's and Alpine's system accounts are the
    fixed ids base-passwd and alpine-baselayout give them.
    """
    uid = 0 if info.uname == "root" else info.uid
    gid = 0 if info.gname == "root" else info.gid
    return uid, gid


def normalize(path: str, origin: str = GENERATED) -> str:
    """`./usr/bin/x`, `/usr//bin/x/` -> `usr/bin/x`; '' is the root. `..` is refused."""
    if "\n" in path:
        raise MalformedError(
            f"{origin}: path {path[:200]!r} contains a newline; refusing to install it "
            "(dpkg refuses such names too: they would forge lines in status.d md5sums and "
            "apk's installed database)."
        )
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise IntegrityError(
                f"{origin}: path {path!r} contains a '..' component; refusing to install it."
            )
        parts.append(part)
    return "/".join(parts)


def _sort_key(path: str) -> list[str]:
    # Component-wise: a directory's subtree stays contiguous and follows it.
    return path.split("/")


def _join_target(directory: str, target: str) -> str | None:
    """Resolve a symlink target lexically from `directory`; None if it climbs above /."""
    if target.startswith("/"):
        base: list[str] = []
    else:
        base = directory.split("/") if directory else []
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not base:
                return None
            base.pop()
        else:
            base.append(part)
    return "/".join(base)


class _SpoolReader(io.RawIOBase):
    """Reads one file's bytes from the spool with pread, so readers never share a position."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self._fd = fd
        self._offset = offset
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(b), self._size - self._pos)
        if n <= 0:
            return 0
        data = os.pread(self._fd, n, self._offset + self._pos)
        b[: len(data)] = data
        self._pos += len(data)
        return len(data)


class Tree:
    """An image filesystem: path -> Entry, contents spooled to a temporary file."""

    def __init__(self, merged_usr: bool = False, allow_setuid: bool = False,
                 max_bytes: int | None = None) -> None:
        self.merged_usr = merged_usr
        self.allow_setuid = allow_setuid
        # The image's regular files may add up to this many bytes (boundedtar's "image").
        self.max_bytes = max_bytes
        self._file_bytes = 0
        self.warnings: list[str] = []
        self._entries: dict[str, Entry] = {}
        self._spool: IO[bytes] | None = None
        self._spool_end = 0
        # Read-only files whose byte ranges entries may point into (unpacked packages).
        self._stores: list[int] = [-1]
        # sha256 -> (offset, size) in the spool: identical contents share space.
        self._blobs: dict[str, tuple[int, int]] = {}
        if merged_usr:
            for top in _MERGED_USR_ALWAYS:
                self._ensure_merged_link(top)

    # -- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        for fd in self._stores[1:]:
            os.close(fd)
        self._stores = [-1]

    def attach(self, path: str | os.PathLike[str]) -> int:
        """Make a file's byte ranges usable as contents (add_member); returns its store id."""
        self._stores.append(os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
        return len(self._stores) - 1

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: str) -> bool:
        return self.get(path) is not None

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())

    def entries(self) -> list[Entry]:
        """All entries, parents before children, in a stable (component-wise) order."""
        return [self._entries[p] for p in sorted(self._entries, key=_sort_key)]

    def get(self, path: str) -> Entry | None:
        """The entry at `path`, following symlinks in parent components but not the last."""
        try:
            canon = self._canonical(normalize(path), "lookup", create=False)
        except AssemblerError:
            return None
        return self._entries.get(canon)

    def resolve(self, path: str) -> Entry | None:
        """Like get(), but also follows a final symlink (as open(2) would)."""
        entry = self.get(path)
        hops = 0
        while entry is not None and entry.kind == "symlink":
            hops += 1
            if hops > _SYMLINK_HOPS:
                return None
            target = _join_target(posixpath.dirname(entry.path), entry.link)
            if target is None:
                return None
            entry = self.get(target)
        return entry

    def open(self, path: str) -> IO[bytes]:
        """A stream of a file's contents (symlinks followed)."""
        entry = self.resolve(path)
        if entry is None or entry.kind not in ("file", "hardlink"):
            raise FileNotFoundError(path)
        return self.open_entry(entry)

    def open_entry(self, entry: Entry) -> IO[bytes]:
        if entry.kind not in ("file", "hardlink"):
            raise ValueError(f"{entry.path} is a {entry.kind}, it has no contents")
        if entry.size == 0:
            return io.BytesIO(b"")
        if entry.store:
            fd = self._stores[entry.store]
        else:
            spool = self._need_spool()
            spool.flush()
            fd = spool.fileno()
        return io.BufferedReader(_SpoolReader(fd, entry.offset, entry.size))

    def read(self, path: str) -> bytes:
        with self.open(path) as f:
            return f.read()

    # -- adding ----------------------------------------------------------------

    def add_dir(
        self,
        path: str,
        mode: int = 0o755,
        uid: int = 0,
        gid: int = 0,
        origin: str = GENERATED,
        mtime: int | None = None,
    ) -> None:
        norm = normalize(path, origin)
        if self._absorbed(norm):
            return
        canon = self._canonical(norm, origin)
        if canon == "":
            return  # the root itself: its metadata is the runtime's business
        existing = self._entries.get(canon)
        if existing is not None and existing.kind == "symlink":
            # dpkg keeps a symlink where a package ships a directory and unpacks
            # through it; do the same by making sure the target directory exists.
            target = self._follow(canon, origin)
            if target and target not in self._entries:
                self._add_parents(target, origin)
                self._put(Entry(target, "dir", 0o755, origin=origin, implicit=True))
            return
        if existing is not None and existing.kind != "dir":
            raise self._conflict(canon, existing, origin, "a directory")
        self._add_parents(canon, origin)
        if mode & 0o002 and not mode & stat.S_ISVTX and origin != GENERATED:
            self._warn(f"{origin}: directory /{canon} is world-writable without the sticky "
                       f"bit (mode {mode & 0o7777:04o}); kept as the package ships it.")
        new = Entry(canon, "dir", mode & 0o7777, uid, gid, origin=origin, mtime=mtime)
        if existing is None or existing.implicit or origin == GENERATED:
            if existing is not None and not existing.implicit and origin == GENERATED:
                new.mtime = mtime if mtime is not None else existing.mtime
            self._entries[canon] = new
        elif mtime is not None and (existing.mtime is None or mtime > existing.mtime):
            # Several packages ship the same directory with different mtimes:
            # taking the newest keeps the result independent of unpack order.
            existing.mtime = mtime

    def add_file(
        self,
        path: str,
        data: bytes | IO[bytes],
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        origin: str = GENERATED,
        mtime: int | None = None,
        *,
        replace: bool = False,
    ) -> None:
        """Add a regular file. `replace` lets a generated file override a package's."""
        canon, mode = self._file_target(path, mode, origin)
        previous_end = self._spool_end
        offset, size, sha, md5 = self._spool_data(data)
        new = Entry(canon, "file", mode, uid, gid, size, "", origin, sha, md5, mtime, False, offset)
        if not self._place_file(new, replace):
            self._release(offset, previous_end, sha)

    def _file_target(self, path: str, mode: int, origin: str) -> tuple[str, int]:
        """Where a regular file goes and the mode it keeps (setuid rules applied)."""
        canon = self._canonical(normalize(path, origin), origin)
        if canon == "":
            raise IntegrityError(f"{origin}: cannot install a file as the root directory.")
        return canon, self._check_mode(canon, mode, origin)

    def _place_file(self, new: Entry, replace: bool) -> bool:
        """Put a file entry at its (canonical) path; False if an existing one was kept."""
        canon, origin = new.path, new.origin
        existing = self._entries.get(canon)
        if existing is not None and not replace:
            if self._same_content(existing, new):
                if (existing.mode, existing.uid, existing.gid) != (new.mode, new.uid, new.gid):
                    self._warn(
                        f"{canon}: shipped by {existing.origin} and {origin} with different "
                        f"modes or owners; keeping {existing.origin}'s."
                    )
                return False
            if existing.origin != origin or existing.kind not in ("file", "hardlink"):
                raise self._conflict(canon, existing, origin, "a different file")
            # Same origin twice: a tar may list a path again; the later one wins.
        if existing is not None and existing.kind == "dir":
            raise self._conflict(canon, existing, origin, "a file")
        self._add_parents(canon, origin)
        if self.max_bytes is not None:
            self._file_bytes += new.size - (existing.size if existing is not None else 0)
            if self._file_bytes > self.max_bytes:
                raise exceeded(origin, "image", f"with /{canon} the image's files add up to "
                               f"more than {self.max_bytes:,} bytes")
        self._entries[canon] = new
        return True

    def add_symlink(
        self,
        path: str,
        target: str,
        uid: int = 0,
        gid: int = 0,
        origin: str = GENERATED,
        mtime: int | None = None,
        *,
        replace: bool = False,
    ) -> None:
        norm = normalize(path, origin)
        if self._absorbed(norm):
            return
        canon = self._canonical(norm, origin)
        if canon == "":
            raise IntegrityError(f"{origin}: cannot install a symlink as the root directory.")
        if not target:
            raise IntegrityError(f"{origin}: symlink {norm!r} has an empty target.")
        if _join_target(posixpath.dirname(canon), target) is None:
            raise IntegrityError(
                f"{origin}: symlink {norm!r} -> {target!r} points above the image root; "
                "refusing to install it."
            )
        existing = self._entries.get(canon)
        if existing is not None and not replace:
            if existing.kind == "symlink" and existing.link == target:
                return
            if existing.kind == "dir":
                # What dpkg does: a directory is never replaced by a symlink.
                self._warn(
                    f"{canon}: {origin} ships a symlink to {target!r} where {existing.origin} "
                    "has a directory; keeping the directory."
                )
                return
            if existing.origin != origin:
                raise self._conflict(canon, existing, origin, f"a symlink to {target!r}")
        if existing is not None and existing.kind == "dir":
            raise self._conflict(canon, existing, origin, f"a symlink to {target!r}")
        self._add_parents(canon, origin)
        self._entries[canon] = Entry(
            canon, "symlink", 0o777, uid, gid, 0, target, origin, mtime=mtime
        )

    def add_hardlink(
        self,
        path: str,
        target: str,
        origin: str = GENERATED,
        mtime: int | None = None,
        *,
        uid: int | None = None,
        gid: int | None = None,
        mode: int | None = None,
    ) -> None:
        """Hardlink `path` to the regular file `target`, which must already be in the tree.

        The link shares the target's contents and hashes; its own mode and
        owner are ignored (a hardlink has one inode), hence taken from the target.
        """
        norm = normalize(path, origin)
        canon = self._canonical(norm, origin)
        tnorm = normalize(target, origin)
        tentry = self._entries.get(self._canonical(tnorm, origin, create=False))
        if tentry is None or tentry.kind not in ("file", "hardlink"):
            raise IntegrityError(
                f"{origin}: hardlink {norm!r} -> {tnorm!r} does not point to a regular file "
                "added before it; refusing to install it."
            )
        root = tentry.link if tentry.kind == "hardlink" else tentry.path
        if canon == root:
            return
        new = dc_replace(
            tentry,
            path=canon,
            kind="hardlink",
            link=root,
            origin=origin,
            mtime=mtime if mtime is not None else tentry.mtime,
        )
        existing = self._entries.get(canon)
        if existing is not None:
            if self._same_content(existing, new):
                return
            if existing.origin != origin or existing.kind == "dir":
                raise self._conflict(canon, existing, origin, f"a hardlink to {root!r}")
        self._add_parents(canon, origin)
        self._entries[canon] = new

    def add_tar_member(
        self, info: tarfile.TarInfo, fileobj: IO[bytes] | None, origin: str
    ) -> list[str]:
        """Add one member of a package's data tar; returns the warnings it caused."""
        before = len(self.warnings)
        mtime = int(info.mtime)
        mode = info.mode & 0o7777
        uid, gid = owner_of(info)
        if info.isreg():
            data: bytes | IO[bytes] = fileobj if fileobj is not None else b""
            self.add_file(info.name, data, mode, uid, gid, origin, mtime)
        elif info.isdir():
            self.add_dir(info.name, mode, uid, gid, origin, mtime)
        elif info.issym():
            self.add_symlink(info.name, info.linkname, uid, gid, origin, mtime)
        elif info.islnk():
            self.add_hardlink(info.name, info.linkname, origin, mtime)
        elif info.ischr() or info.isblk() or info.isfifo():
            what = "fifo" if info.isfifo() else "device node"
            self._warn(f"{origin}: dropped {what} {normalize(info.name, origin)!r}.")
        else:
            self._warn(
                f"{origin}: dropped {normalize(info.name, origin)!r} "
                f"(unsupported tar member type {info.type!r})."
            )
        return self.warnings[before:]

    def add_member(self, member: tuple, store: int, origin: str) -> None:
        """Add one member of an unpacked package (see unpacked.py) whose bytes are in `store`."""
        name, kind, mode, uid, gid, size, link, mtime, offset, sha, md5, tar_type = member
        mode &= 0o7777
        if kind == "f":
            canon, mode = self._file_target(name, mode, origin)
            self._place_file(Entry(canon, "file", mode, uid, gid, size, "", origin, sha, md5,
                                   mtime, False, offset, store if size else 0), False)
        elif kind == "d":
            self.add_dir(name, mode, uid, gid, origin, mtime)
        elif kind == "l":
            self.add_symlink(name, link, uid, gid, origin, mtime)
        elif kind == "h":
            self.add_hardlink(name, link, origin, mtime)
        elif tar_type in (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE):
            what = "fifo" if tar_type == tarfile.FIFOTYPE else "device node"
            self._warn(f"{origin}: dropped {what} {normalize(name, origin)!r}.")
        else:
            self._warn(f"{origin}: dropped {normalize(name, origin)!r} "
                       f"(unsupported tar member type {tar_type!r}).")

    def add_tar(
        self, members: Iterable[tuple[tarfile.TarInfo, IO[bytes] | None]], origin: str
    ) -> list[str]:
        """Add every member of a streamed tar (e.g. deb.iter_data); returns warnings."""
        before = len(self.warnings)
        for info, f in members:
            self.add_tar_member(info, f, origin)
        return self.warnings[before:]

    def remove(self, path: str, *, missing_ok: bool = False) -> None:
        """Remove `path` and, for a directory, everything below it."""
        canon = self._canonical(normalize(path), "remove", create=False)
        if canon not in self._entries:
            if missing_ok:
                return
            raise KeyError(path)
        entry = self._entries.pop(canon)
        if entry.kind == "dir":
            prefix = canon + "/"
            for p in [p for p in self._entries if p.startswith(prefix)]:
                del self._entries[p]

    # -- internals -------------------------------------------------------------

    def _warn(self, message: str) -> None:
        self.warnings.append(message)

    def _need_spool(self) -> IO[bytes]:
        if self._spool is None:
            # Lives as long as the tree; close() releases it.
            self._spool = tempfile.TemporaryFile(prefix="assembler-rootfs-")  # noqa: SIM115
        return self._spool

    def _spool_data(self, data: bytes | IO[bytes]) -> tuple[int, int, str, str]:
        sha = hashlib.sha256()
        md5 = hashlib.md5(usedforsecurity=False)
        offset = self._spool_end
        if isinstance(data, bytes | bytearray | memoryview):
            chunks: Iterable[bytes] = [bytes(data)] if data else []
        else:
            chunks = iter(lambda: data.read(_CHUNK), b"")
        size = 0
        spool: IO[bytes] | None = None
        for chunk in chunks:
            if spool is None:
                spool = self._need_spool()
                spool.seek(offset)
            sha.update(chunk)
            md5.update(chunk)
            spool.write(chunk)
            size += len(chunk)
        digest = sha.hexdigest()
        known = self._blobs.get(digest)
        if known is not None and known[1] == size:
            # Already stored: rewind so the next file overwrites this copy.
            return known[0], size, digest, md5.hexdigest()
        self._spool_end = offset + size
        self._blobs[digest] = (offset, size)
        return offset, size, digest, md5.hexdigest()

    def _release(self, offset: int, previous_end: int, sha: str) -> None:
        # Drop a blob spooled for a file that was not kept, if it was the last one written.
        if self._spool_end > previous_end and offset == previous_end:
            self._spool_end = previous_end
            if self._blobs.get(sha, (None,))[0] == offset:
                del self._blobs[sha]

    def _check_mode(self, path: str, mode: int, origin: str) -> int:
        # Only called for files: setgid on a directory (/var/mail 2775) just
        # makes new files inherit its group and grants no privilege.
        mode &= 0o7777
        if mode & _PRIVILEGE_BITS and not self.allow_setuid:
            self._warn(
                f"{origin}: removed setuid/setgid bits from {path!r} "
                f"(mode {mode:04o} -> {mode & ~_PRIVILEGE_BITS:04o}); allow them in the "
                "spec if the image really needs them."
            )
            mode &= ~_PRIVILEGE_BITS
        if mode & 0o002 and origin != GENERATED:
            self._warn(f"{origin}: file /{path} is world-writable (mode {mode:04o}); kept as "
                       "the package ships it.")
        return mode

    @staticmethod
    def _same_content(a: Entry, b: Entry) -> bool:
        if a.kind in ("file", "hardlink") and b.kind in ("file", "hardlink"):
            return a.sha256 == b.sha256 and a.size == b.size
        if a.kind == b.kind == "symlink":
            return a.link == b.link
        return a.kind == b.kind == "dir"

    @staticmethod
    def _conflict(path: str, existing: Entry, origin: str, what: str) -> AssemblerError:
        have = "a directory" if existing.kind == "dir" else f"a {existing.kind}"
        if existing.kind == "symlink":
            have = f"a symlink to {existing.link!r}"
        if existing.origin == origin:
            return AssemblerError(
                f"Path conflict at /{path}: {origin} ships both {have} and {what} there."
            )
        return AssemblerError(
            f"Path conflict at /{path}: {existing.origin} installs {have} there and "
            f"{origin} wants {what}.",
            hint="Exclude one of the two packages, or pick slices that do not overlap.",
        )

    def _absorbed(self, norm: str) -> bool:
        """Under merged-/usr, a package's own top-level bin/, lib64 -> ... are no-ops."""
        if self.merged_usr and norm in MERGED_USR_DIRS:
            self._ensure_merged_link(norm)
            return True
        return False

    def _ensure_merged_link(self, top: str) -> None:
        if top in self._entries:
            return
        target = "usr/" + top
        if target not in self._entries:
            self._add_parents(target, GENERATED)
            self._entries[target] = Entry(target, "dir", 0o755, implicit=True)
        self._entries[top] = Entry(top, "symlink", 0o777, link=target)

    def _follow(self, path: str, origin: str) -> str | None:
        """Where the symlink at `path` leads (parents canonicalized), or None if nowhere."""
        entry = self._entries[path]
        target = _join_target(posixpath.dirname(path), entry.link)
        if target is None:
            return None
        return self._canonical(target, origin, create=False)

    def _canonical(self, norm: str, origin: str, create: bool = True) -> str:
        """Rewrite `norm` so that no parent component is a symlink in the tree."""
        if not norm:
            return norm
        parts = norm.split("/")
        # Installing under /lib64 creates the merged-/usr link; a lookup only follows
        # links that exist (below), so /lib64/x is missing in an image without /lib64.
        if create and self.merged_usr and len(parts) > 1 and parts[0] in MERGED_USR_DIRS:
            self._ensure_merged_link(parts[0])
            parts = ["usr", *parts]
        out: list[str] = []
        hops = 0
        i = 0
        while i < len(parts) - 1:
            out.append(parts[i])
            i += 1
            current = "/".join(out)
            entry = self._entries.get(current)
            if entry is None or entry.kind == "dir":
                continue
            if entry.kind != "symlink":
                raise AssemblerError(
                    f"Path conflict at /{norm}: {origin} installs it below /{current}, "
                    f"which {entry.origin} installs as a regular file."
                )
            hops += 1
            if hops > _SYMLINK_HOPS:
                raise IntegrityError(f"{origin}: too many levels of symlinks resolving {norm!r}.")
            target = _join_target(posixpath.dirname(current), entry.link)
            if target is None:
                raise IntegrityError(
                    f"{origin}: {norm!r} resolves through /{current} above the image root."
                )
            # Restart on the resolved prefix: the target may itself go through links.
            parts = (target.split("/") if target else []) + parts[i:]
            out = []
            i = 0
        out.append(parts[-1])
        return "/".join(p for p in out if p)

    def _add_parents(self, path: str, origin: str) -> None:
        parent = posixpath.dirname(path)
        missing: list[str] = []
        while parent and parent not in self._entries:
            missing.append(parent)
            parent = posixpath.dirname(parent)
        if parent and self._entries[parent].kind != "dir":
            existing = self._entries[parent]
            raise self._conflict(parent, existing, origin, "a directory")
        for p in reversed(missing):
            self._entries[p] = Entry(p, "dir", 0o755, origin=origin, implicit=True)

    def _put(self, entry: Entry) -> None:
        self._entries[entry.path] = entry


def read_small(tree: Tree, path: str, limit: int = 1 << 20) -> bytes | None:
    """The bytes of the regular file at `path` (symlinks followed), or None when there is
    none or it is bigger than `limit`: for reading records, never an unbounded blob."""
    entry = tree.resolve(path)
    if entry is None or entry.kind != "file" or entry.size > limit:
        return None
    return tree.read(entry.path)

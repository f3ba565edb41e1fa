"""A hermetic, signed apt archive for tests, served over HTTP on 127.0.0.1.

Everything is generated at test time: the OpenPGP key (pysequoia), the .deb
files (a pure-Python ar + tar writer, so that hostile packages are possible
too), the Packages indexes, Release/InRelease and by-hash copies.

Typical use::

    key = AptKey.generate(tmp_path / "key")
    repo = AptRepo(tmp_path / "repo", key=key, suites={
        "stable": [
            Pkg("app", "1.0-1", depends="libfoo (>= 1.2)",
                files={"usr/bin/app": File(b"#!/bin/sh\\n", mode=0o755),
                       "usr/bin/app-link": Symlink("app")}),
            Pkg("libfoo", "1.2-1", multi_arch="same"),
        ],
    })
    with serve(repo.root) as server:      # or: server = repo.serve(); ...; repo.stop()
        server.url            # http://127.0.0.1:PORT/  (an archive root, like a mirror)
        server.requests       # [Request(method, path, status), ...]
        server.count("/by-hash/")   # how many GETs had that in their path
        server.fail("/dists/stable/InRelease", 503, 503)  # next two answers are 503
        key.public_path       # armored public key file for signed-by / distro definitions
        repo.deb("app")       # PoolFile: .filename ("pool/main/a/app/..."), .sha256, .size

In pytest use the `apt_key` / `apt_repo` fixtures from tests/conftest.py:
`repo = apt_repo({"stable": [...]})` is already served (`repo.url`,
`repo.server`). To publish an archive update, change `repo.suites` and call
`repo.publish()`.

A hostile but signed archive: `repo.index_edits[suite] = lambda text: ...` rewrites
a suite's Packages text before it is hashed into the signed Release (then
`repo.publish()`).

Tampering helpers (`tamper_inrelease`, `replace_index`, `resign`, `expire`,
`tamper_pool_file`, `remove_signature`) mutate the published archive in place
the way a broken or malicious mirror would.

Hostile packages: `Pkg(..., tar_members=[Entry.file("../evil", ...),
Entry.symlink("./etc/x", "../../../../etc/shadow"), Entry.chardev("./dev/null2",
1, 3), Entry.file("./usr/bin/su2", b"", mode=0o4755)])` appends those tar
members verbatim (names are not normalised) after the regular ones.
"""

from __future__ import annotations

import bz2
import dataclasses
import datetime as dt
import gzip
import hashlib
import http.server
import io
import lzma
import os
import re
import shutil
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pysequoia

DEFAULT_MTIME = 1_700_000_000  # fixed, so that generated .debs are reproducible
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# --------------------------------------------------------------------------- keys


@dataclass
class AptKey:
    """An OpenPGP signing key (v4, RFC 4880: what apt's gpgv understands).

    `public_path` is the armored public key (`.asc`), `public_binary_path` the
    same key in binary form (`.gpg`); both work in an apt `signed-by=`.
    """

    tsk: pysequoia.Tsk
    public_path: Path
    public_binary_path: Path

    @classmethod
    def generate(
        cls,
        directory: str | os.PathLike[str],
        user_id: str = "Assembler Test Archive <archive@example.invalid>",
        *,
        rsa: bool = False,
        name: str = "archive-key",
    ) -> AptKey:
        """Generate a key (Cv25519 by default, RSA-2048 with rsa=True) and export it."""
        suite = pysequoia.CipherSuite.RSA2k if rsa else pysequoia.CipherSuite.Cv25519
        tsk = pysequoia.Tsk.generate(
            user_id, profile=pysequoia.Profile.RFC4880, cipher_suite=suite
        )
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        cert = tsk.extract_certificate()
        asc = directory / f"{name}.asc"
        gpg = directory / f"{name}.gpg"
        asc.write_text(str(cert))
        gpg.write_bytes(bytes(cert))
        return cls(tsk, asc, gpg)

    @property
    def cert(self) -> pysequoia.Cert:
        return self.tsk.extract_certificate()

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint

    @property
    def public_armored(self) -> str:
        return str(self.cert)

    def clearsign(self, data: bytes) -> bytes:
        return pysequoia.sign(self.tsk.signer(), data, mode=pysequoia.SignatureMode.CLEAR)

    def detach_sign(self, data: bytes, armor: bool = True) -> bytes:
        return pysequoia.sign(
            self.tsk.signer(), data, mode=pysequoia.SignatureMode.DETACHED, armor=armor
        )


# --------------------------------------------------------------------------- tar entries


@dataclass
class Entry:
    """One tar member of a package's data.tar. Build with the classmethods.

    `name` is written to the tar exactly as given (e.g. "./usr/bin/x", or a
    hostile "../../etc/passwd" / "/etc/passwd").
    """

    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    mode: int = 0o644
    linkname: str = ""
    uid: int = 0
    gid: int = 0
    uname: str = "root"
    gname: str = "root"
    devmajor: int = 0
    devminor: int = 0
    mtime: int = DEFAULT_MTIME

    @classmethod
    def file(cls, name: str, data: bytes = b"", mode: int = 0o644, **kw) -> Entry:
        return cls(name, tarfile.REGTYPE, data, mode, **kw)

    @classmethod
    def dir(cls, name: str, mode: int = 0o755, **kw) -> Entry:
        return cls(name, tarfile.DIRTYPE, b"", mode, **kw)

    @classmethod
    def symlink(cls, name: str, target: str, **kw) -> Entry:
        return cls(name, tarfile.SYMTYPE, b"", 0o777, target, **kw)

    @classmethod
    def hardlink(cls, name: str, target: str, **kw) -> Entry:
        return cls(name, tarfile.LNKTYPE, b"", 0o644, target, **kw)

    @classmethod
    def chardev(cls, name: str, major: int, minor: int, mode: int = 0o666, **kw) -> Entry:
        return cls(name, tarfile.CHRTYPE, b"", mode, devmajor=major, devminor=minor, **kw)

    @classmethod
    def blockdev(cls, name: str, major: int, minor: int, mode: int = 0o660, **kw) -> Entry:
        return cls(name, tarfile.BLKTYPE, b"", mode, devmajor=major, devminor=minor, **kw)

    @classmethod
    def fifo(cls, name: str, mode: int = 0o644, **kw) -> Entry:
        return cls(name, tarfile.FIFOTYPE, b"", mode, **kw)

    def tarinfo(self) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(self.name)
        ti.type = self.type
        ti.mode = self.mode
        ti.uid, ti.gid = self.uid, self.gid
        ti.uname, ti.gname = self.uname, self.gname
        ti.mtime = self.mtime
        ti.linkname = self.linkname
        ti.devmajor, ti.devminor = self.devmajor, self.devminor
        ti.size = len(self.data) if self.type == tarfile.REGTYPE else 0
        return ti


# Values for Pkg.files (the dict key is the path, so these carry no name).


def File(data: bytes = b"", mode: int = 0o644, **kw) -> Entry:
    return Entry.file("", data, mode, **kw)


def Dir(mode: int = 0o755, **kw) -> Entry:
    return Entry.dir("", mode, **kw)


def Symlink(target: str, **kw) -> Entry:
    return Entry.symlink("", target, **kw)


def Hardlink(target: str, **kw) -> Entry:
    """Target is an archive path like "./usr/bin/x" (as in a .deb's data.tar)."""
    return Entry.hardlink("", target, **kw)


# --------------------------------------------------------------------------- packages


@dataclass
class Pkg:
    """A binary package to put in the archive.

    `files` maps paths (relative, "usr/bin/x" or "./usr/bin/x") to bytes
    (a 0644 file) or an `Entry`: File(data, mode), Dir(mode), Symlink(target),
    Hardlink("./target"), or any Entry (its name is replaced by the key).
    Parent directories are added automatically. `tar_members` are appended
    verbatim after them, for hostile content. `extra_control` adds or
    overrides control fields (value None removes a field). `raw_deb` replaces
    the whole .deb with the given bytes (the index then describes those bytes).
    """

    name: str
    version: str
    arch: str = "amd64"
    depends: str = ""
    pre_depends: str = ""
    recommends: str = ""
    suggests: str = ""
    provides: str = ""
    conflicts: str = ""
    breaks: str = ""
    replaces: str = ""
    multi_arch: str = ""
    essential: bool = False
    priority: str = "optional"
    section: str = "misc"
    source: str = ""  # "src" or "src (1.0-1)"; defaults to the package name
    component: str = "main"
    description: str = ""
    files: dict[str, bytes | Entry] | None = None
    tar_members: list[Entry] | None = None
    extra_control: dict[str, str | None] | None = None
    compression: str = "xz"  # xz | gz | zst | none, for control.tar and data.tar
    raw_deb: bytes | None = None

    @property
    def source_name(self) -> str:
        return (self.source or self.name).split(" ", 1)[0]

    def control_fields(self, installed_size: int) -> dict[str, str]:
        f: dict[str, str] = {"Package": self.name}
        if self.source:
            f["Source"] = self.source
        f["Version"] = self.version
        f["Architecture"] = self.arch
        if self.essential:
            f["Essential"] = "yes"
        f["Maintainer"] = "Assembler Tests <tests@example.invalid>"
        f["Installed-Size"] = str(installed_size)
        for key, val in (
            ("Pre-Depends", self.pre_depends),
            ("Depends", self.depends),
            ("Recommends", self.recommends),
            ("Suggests", self.suggests),
            ("Breaks", self.breaks),
            ("Conflicts", self.conflicts),
            ("Replaces", self.replaces),
            ("Provides", self.provides),
            ("Multi-Arch", self.multi_arch),
        ):
            if val:
                f[key] = val
        f["Section"] = self.section
        f["Priority"] = self.priority
        f["Description"] = self.description or (
            f"test package {self.name}\nA package generated by tests/aptrepo.py."
        )
        for key, val in (self.extra_control or {}).items():
            if val is None:
                f.pop(key, None)
            else:
                f[key] = val
        return f

    def data_entries(self) -> list[Entry]:
        entries: dict[str, Entry] = {"./": Entry.dir("./")}
        for path, content in sorted((self.files or {}).items()):
            rel = path.removeprefix("./").lstrip("/")
            parts = rel.split("/")
            for i in range(1, len(parts)):
                d = "./" + "/".join(parts[:i]) + "/"
                entries.setdefault(d, Entry.dir(d))
            if isinstance(content, Entry):
                e = dataclasses.replace(content, name="./" + rel)
                if e.type == tarfile.DIRTYPE and not e.name.endswith("/"):
                    e.name += "/"
            else:
                e = Entry.file("./" + rel, content)
            entries[e.name] = e
        return list(entries.values()) + list(self.tar_members or [])


def format_control(fields: dict[str, str]) -> str:
    """Render deb822 fields; multi-line values get continuation lines."""
    out = []
    for key, val in fields.items():
        lines = val.split("\n")
        out.append(f"{key}: {lines[0]}\n")
        out.extend(f" {line if line.strip() else '.'}\n" for line in lines[1:])
    return "".join(out)


def _tar(entries: Sequence[Entry], compression: str) -> tuple[bytes, str]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for e in entries:
            tf.addfile(e.tarinfo(), io.BytesIO(e.data) if e.type == tarfile.REGTYPE else None)
    raw = buf.getvalue()
    if compression == "xz":
        return lzma.compress(raw, preset=1, check=lzma.CHECK_CRC64), ".xz"
    if compression == "gz":
        return gzip.compress(raw, mtime=0), ".gz"
    if compression == "zst":
        import zstandard

        return zstandard.ZstdCompressor().compress(raw), ".zst"
    if compression == "none":
        return raw, ""
    raise ValueError(f"unknown compression {compression!r}")


def ar_archive(members: Sequence[tuple[str, bytes]], mtime: int = DEFAULT_MTIME) -> bytes:
    """A System V / GNU ar archive as used by .deb (names up to 15 chars, no '/')."""
    out = [b"!<arch>\n"]
    for name, data in members:
        header = (
            f"{name:<16}{mtime:<12}{0:<6}{0:<6}{0o100644:<8o}{len(data):<10}".encode() + b"`\n"
        )
        assert len(header) == 60, name
        out.append(header)
        out.append(data)
        if len(data) % 2:
            out.append(b"\n")
    return b"".join(out)


def build_deb(pkg: Pkg) -> bytes:
    """The bytes of `pkg` as a .deb (debian-binary, control.tar.*, data.tar.*)."""
    if pkg.raw_deb is not None:
        return pkg.raw_deb
    entries = pkg.data_entries()
    installed = sum((len(e.data) + 1023) // 1024 for e in entries) or 1
    md5sums = "".join(
        f"{hashlib.md5(e.data).hexdigest()}  {e.name.removeprefix('./')}\n"
        for e in entries
        if e.type == tarfile.REGTYPE and e.name.startswith("./")
    )
    control = format_control(pkg.control_fields(installed)).encode()
    control_entries = [Entry.dir("./"), Entry.file("./control", control)]
    if md5sums:
        control_entries.append(Entry.file("./md5sums", md5sums.encode("utf-8", "surrogateescape")))
    control_tar, cext = _tar(control_entries, pkg.compression)
    data_tar, dext = _tar(entries, pkg.compression)
    return ar_archive(
        [
            ("debian-binary", b"2.0\n"),
            ("control.tar" + cext, control_tar),
            ("data.tar" + dext, data_tar),
        ]
    )


# --------------------------------------------------------------------------- archive


@dataclass
class PoolFile:
    """A .deb as published: its archive-relative path and hashes."""

    pkg: Pkg
    filename: str  # archive-relative, "pool/main/f/foo/foo_1.0_amd64.deb"
    size: int
    sha256: str
    md5: str


def _hashes(data: bytes) -> tuple[str, str]:
    return hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()


def format_date(when: dt.datetime) -> str:
    """RFC 2822 date in UTC as Debian writes it, independent of the locale."""
    when = when.astimezone(dt.UTC)
    return (
        f"{_DAYS[when.weekday()]}, {when.day:02d} {_MONTHS[when.month - 1]} {when.year} "
        f"{when:%H:%M:%S} UTC"
    )


def _compress(data: bytes, ext: str) -> bytes:
    if ext == "":
        return data
    if ext == ".gz":
        return gzip.compress(data, mtime=0)
    if ext == ".xz":
        return lzma.compress(data)
    if ext == ".bz2":
        return bz2.compress(data)
    raise ValueError(ext)


class AptRepo:
    """A signed apt archive written below `root` (`dists/`, `pool/`).

    suites: {suite directory name: [Pkg, ...]}. Every suite is published with
    the same components (default: "main" plus those the packages name) and
    architectures. Packages of arch "all" are listed
    in binary-all/Packages and in every binary-<arch>/Packages (Debian's
    "No-Support-for-Architecture-all: Packages" layout).

    key: AptKey signing InRelease and Release.gpg; None publishes an unsigned
    Release only. release_fields: {suite: {field: value}} adds/overrides
    Release fields (e.g. Codename, Origin). index_exts: which Packages files
    exist on disk ("" plain, ".gz", ".xz"); all of them are listed in Release.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        suites: dict[str, list[Pkg]],
        *,
        components: Sequence[str] | None = None,
        archs: Sequence[str] = ("amd64", "all"),
        key: AptKey | None = None,
        date: dt.datetime | None = None,
        valid_until: dt.datetime | None = None,
        by_hash: bool = True,
        index_exts: Sequence[str] = ("", ".gz", ".xz"),
        release_fields: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.root = Path(root)
        self.suites = {s: list(p) for s, p in suites.items()}
        if components is None:  # main + whatever the packages use
            used = {p.component for pkgs in self.suites.values() for p in pkgs}
            components = ["main", *sorted(used - {"main"})]
        self.components = list(components)
        self.archs = list(archs)
        self.key = key
        self.date = (date or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        self.valid_until = valid_until
        self.by_hash = by_hash
        self.index_exts = list(index_exts)
        self.release_fields = release_fields or {}
        # suite -> function rewriting its Packages text before it is signed: a hostile
        # (or broken) archive whose index is nonetheless correctly signed
        self.index_edits: dict[str, Callable[[str], str]] = {}
        self.pool: dict[tuple[str, str, str], PoolFile] = {}
        self.server: Server | None = None
        self.publish()

    # ---- serving

    def serve(self) -> Server:
        """Start serving the archive on 127.0.0.1 (see `serve_start`); stop with .stop()."""
        if self.server is None:
            self.server = serve_start(self.root)
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    @property
    def url(self) -> str:
        """Base URL of the served archive (a mirror root: url + "dists/...")."""
        if self.server is None:
            raise RuntimeError("archive is not served: call .serve() first")
        return self.server.url

    @property
    def requests(self) -> list[Request]:
        return self.server.requests if self.server else []

    # ---- paths

    def pool_path(self, pkg: Pkg) -> str:
        src = pkg.source_name
        prefix = src[:4] if src.startswith("lib") and len(src) > 3 else src[:1]
        version = pkg.version.split(":", 1)[-1]
        return f"pool/{pkg.component}/{prefix}/{src}/{pkg.name}_{version}_{pkg.arch}.deb"

    def deb(self, name: str, version: str | None = None, arch: str | None = None) -> PoolFile:
        """The published PoolFile of a package (first match)."""
        for (n, v, a), pf in self.pool.items():
            if n == name and version in (None, v) and arch in (None, a):
                return pf
        raise KeyError((name, version, arch))

    def index_path(self, suite: str, component: str = "main", arch: str = "amd64") -> str:
        """Archive-relative path of the plain Packages index (add .xz / .gz)."""
        return f"dists/{suite}/{component}/binary-{arch}/Packages"

    # ---- publishing

    def publish(self) -> None:
        """(Re)write pool, indexes, Release, InRelease, Release.gpg from self.suites."""
        for suite, pkgs in self.suites.items():
            for pkg in pkgs:
                if pkg.component not in self.components:
                    raise ValueError(f"{pkg.name}: component {pkg.component} not published")
                k = (pkg.name, pkg.version, pkg.arch)
                if k in self.pool and self.pool[k].pkg is pkg:
                    continue
                data = build_deb(pkg)
                rel = self.pool_path(pkg)
                path = self.root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                self.pool[k] = PoolFile(pkg, rel, len(data), *_hashes(data))
            self._publish_suite(suite)

    def packages_text(self, suite: str, component: str, arch: str) -> str:
        stanzas = []
        for pkg in sorted(self.suites[suite], key=lambda p: (p.name, p.version, p.arch)):
            if pkg.component != component:
                continue
            if pkg.arch != arch and not (pkg.arch == "all" and arch != "all"):
                continue
            pf = self.pool[(pkg.name, pkg.version, pkg.arch)]
            fields = pkg.control_fields(0)
            description = fields.pop("Description")
            fields.pop("Installed-Size")
            out = {}
            for k, v in fields.items():
                out[k] = v
                if k == "Maintainer":
                    out["Installed-Size"] = str(
                        sum((len(e.data) + 1023) // 1024 for e in pkg.data_entries()) or 1
                    )
            out["Description"] = description.split("\n", 1)[0]
            out["Filename"] = pf.filename
            out["Size"] = str(pf.size)
            out["MD5sum"] = pf.md5
            out["SHA256"] = pf.sha256
            stanzas.append(format_control(out))
        return "\n".join(stanzas)

    def _publish_suite(self, suite: str) -> None:
        listed: list[tuple[str, bytes]] = []  # (path relative to dists/<suite>, content)
        for comp in self.components:
            for arch in self.archs:
                text = self.packages_text(suite, comp, arch)
                edit = self.index_edits.get(suite)
                text = (edit(text) if edit else text).encode()
                base = f"{comp}/binary-{arch}"
                for ext in ("", ".gz", ".xz"):
                    listed.append((f"{base}/Packages{ext}", _compress(text, ext)))
                release = (
                    f"Archive: {suite}\nComponent: {comp}\nOrigin: Assembler Tests\n"
                    f"Label: Assembler Tests\nArchitecture: {arch}\n"
                ).encode()
                listed.append((f"{base}/Release", release))
        suite_dir = self.root / "dists" / suite
        for rel, data in listed:
            path = suite_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            name = path.name
            if name == "Release" or any(name == "Packages" + e for e in self.index_exts):
                path.write_bytes(data)
            elif path.exists():
                path.unlink()
            if self.by_hash:
                bh = path.parent / "by-hash" / "SHA256" / hashlib.sha256(data).hexdigest()
                bh.parent.mkdir(parents=True, exist_ok=True)
                bh.write_bytes(data)
                mh = path.parent / "by-hash" / "MD5Sum" / hashlib.md5(data).hexdigest()
                mh.parent.mkdir(parents=True, exist_ok=True)
                mh.write_bytes(data)
        fields = {
            "Origin": "Assembler Tests",
            "Label": "Assembler Tests",
            "Suite": suite,
            "Codename": suite,
            "Date": format_date(self.date),
        }
        if self.valid_until is not None:
            fields["Valid-Until"] = format_date(self.valid_until)
        if self.by_hash:
            fields["Acquire-By-Hash"] = "yes"
        if "all" in self.archs:
            fields["No-Support-for-Architecture-all"] = "Packages"
        fields["Architectures"] = " ".join(self.archs)
        fields["Components"] = " ".join(self.components)
        fields["Description"] = f"Assembler test archive, suite {suite}"
        fields.update(self.release_fields.get(suite, {}))
        text = format_control(fields)
        for algo, title in (("md5", "MD5Sum"), ("sha256", "SHA256")):
            text += f"{title}:\n"
            for rel, data in listed:
                digest = hashlib.new(algo, data).hexdigest()
                text += f" {digest} {len(data):>16} {rel}\n"
        self.write_release(suite, text.encode())

    def write_release(self, suite: str, release: bytes, key: AptKey | None | str = "default"):
        """Write Release and (if a key) InRelease + Release.gpg for `release`.

        key "default" means the archive's key; None writes an unsigned Release only.
        """
        if isinstance(key, str):
            key = self.key
        d = self.root / "dists" / suite
        d.mkdir(parents=True, exist_ok=True)
        (d / "Release").write_bytes(release)
        for name in ("InRelease", "Release.gpg"):
            (d / name).unlink(missing_ok=True)
        if key is not None:
            (d / "InRelease").write_bytes(key.clearsign(release))
            (d / "Release.gpg").write_bytes(key.detach_sign(release))

    def release(self, suite: str) -> bytes:
        return (self.root / "dists" / suite / "Release").read_bytes()

    def inrelease(self, suite: str) -> bytes:
        return (self.root / "dists" / suite / "InRelease").read_bytes()

    # ---- tampering (what a broken or hostile mirror would serve)

    def tamper_inrelease(self, suite: str, old: bytes = b"Label: Assembler Tests",
                         new: bytes = b"Label: Assembler Tesus") -> None:
        """Change signed text in InRelease (and Release.gpg's Release) after signing."""
        for name in ("InRelease", "Release"):
            p = self.root / "dists" / suite / name
            data = p.read_bytes()
            if old not in data:
                raise ValueError(f"{old!r} not in {name}")
            p.write_bytes(data.replace(old, new, 1))

    def replace_index(self, suite: str, component: str = "main", arch: str = "amd64",
                      content: bytes | None = None) -> None:
        """Serve different Packages content than the signed Release describes.

        Every existing Packages{,.gz,.xz} and the by-hash copies named by the
        signed hashes are overwritten (compressed accordingly). Default content
        is the real index plus an extra, unsigned package stanza.
        """
        if content is None:
            content = self.packages_text(suite, component, arch).encode() + (
                b"\nPackage: injected\nVersion: 6.6.6\nArchitecture: all\n"
                b"Filename: pool/main/i/injected/injected_6.6.6_all.deb\nSize: 1\n"
                b"SHA256: " + b"0" * 64 + b"\nDescription: not signed\n"
            )
        d = self.root / "dists" / suite / component / f"binary-{arch}"
        release = self.release(suite).decode()
        for ext in ("", ".gz", ".xz"):
            data = _compress(content, ext)
            target = d / f"Packages{ext}"
            if target.exists():
                target.write_bytes(data)
            rel = f"{component}/binary-{arch}/Packages{ext}"
            m = re.search(rf"^ ([0-9a-f]{{64}}) +\d+ {re.escape(rel)}$", release, re.M)
            if m and (d / "by-hash" / "SHA256" / m.group(1)).exists():
                (d / "by-hash" / "SHA256" / m.group(1)).write_bytes(data)
            m = re.search(rf"^ ([0-9a-f]{{32}}) +\d+ {re.escape(rel)}$", release, re.M)
            if m and (d / "by-hash" / "MD5Sum" / m.group(1)).exists():
                (d / "by-hash" / "MD5Sum" / m.group(1)).write_bytes(data)

    def resign(self, suite: str, key: AptKey | None) -> None:
        """Re-sign the current Release with another key (None: unsigned)."""
        self.write_release(suite, self.release(suite), key)

    def remove_signature(self, suite: str) -> None:
        self.resign(suite, None)

    def expire(self, suite: str | None = None, days_ago: int = 10) -> None:
        """Republish with Date/Valid-Until in the past (Valid-Until = Date + 1 day)."""
        self.date = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=days_ago)
        self.valid_until = self.date + dt.timedelta(days=1)
        for s in [suite] if suite else list(self.suites):
            self._publish_suite(s)

    def tamper_pool_file(self, name: str, version: str | None = None,
                         data: bytes | None = None) -> PoolFile:
        """Overwrite a published .deb with other bytes (default: same size, one bit flipped)."""
        pf = self.deb(name, version)
        path = self.root / pf.filename
        if data is None:
            data = bytearray(path.read_bytes())
            data[-1] ^= 1
            data = bytes(data)
        path.write_bytes(data)
        return pf


# --------------------------------------------------------------------------- HTTP server


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # URL path, without query
    status: int


@dataclass
class Server:
    """A running loopback HTTP server for one directory."""

    url: str  # "http://127.0.0.1:PORT/" (trailing slash)
    root: Path
    requests: list[Request] = field(default_factory=list)
    # path -> list of statuses to answer (one per request) before serving normally
    faults: dict[str, list[int]] = field(default_factory=dict)
    # path substring -> seconds to sleep per 64 KiB sent (a slow mirror)
    slow: dict[str, float] = field(default_factory=dict)
    # path substring -> function(the file's real bytes) -> (headers, body pieces): a
    # hostile mirror (an endless body, a drip); bytes it managed to send go to `sent`
    bodies: dict[str, Callable[[bytes], tuple[dict[str, str], Iterable[bytes]]]] = field(
        default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    _httpd: http.server.ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def paths(self, method: str | None = "GET") -> list[str]:
        return [r.path for r in self.requests if method is None or r.method == method]

    def count(self, substring: str, method: str | None = "GET") -> int:
        """How many requests had `substring` in their path."""
        return sum(substring in p for p in self.paths(method))

    def fail(self, path: str, *statuses: int) -> None:
        """Answer the next requests for `path` ("/dists/..") with these statuses."""
        self.faults.setdefault("/" + path.lstrip("/"), []).extend(statuses or (500,))

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)


class _QuietServer(http.server.ThreadingHTTPServer):
    """A client that hangs up mid-body (a build refusing a file, a full disk) is
    normal here; socketserver would print its traceback into the test's stderr."""

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve_start(root: str | os.PathLike[str],
                redirect: Callable[[str], str | None] | None = None) -> Server:
    """Serve `root` on 127.0.0.1 (random free port) in a daemon thread; call .stop().

    `redirect(path)` may name another path to answer a GET with (302), as the
    snapshot archive does for a timestamp that is not itself a snapshot.
    """
    root = Path(root)
    server = Server(url="", root=root)
    lock = threading.Lock()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def _fault(self) -> bool:
            path = self.path.split("?", 1)[0]
            with lock:
                queue = server.faults.get(path)
                status = queue.pop(0) if queue else None
            if status is None:
                return False
            self.send_error(status)
            return True

        def do_GET(self):
            if self._fault():
                return
            path = self.path.split("?", 1)[0]
            target = redirect(path) if redirect else None
            if target is not None and target != path:
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            hostile = next((f for sub, f in server.bodies.items() if sub in path), None)
            if hostile is not None:
                self._hostile(path, hostile)
                return
            delay = next((d for sub, d in server.slow.items() if sub in path), None)
            if delay is None:
                super().do_GET()
                return
            data = (root / path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for i in range(0, len(data), 65536):
                self.wfile.write(data[i:i + 65536])
                self.wfile.flush()
                time.sleep(delay)

        def _hostile(self, path, body) -> None:
            real = root / path.lstrip("/")
            headers, pieces = body(real.read_bytes() if real.is_file() else b"")
            self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.close_connection = True
            try:
                for piece in pieces:
                    self.wfile.write(piece)
                    self.wfile.flush()
                    with lock:
                        server.sent[path] = server.sent.get(path, 0) + len(piece)
            except OSError:   # the client hung up: what a hostile mirror wants to know
                pass

        def do_HEAD(self):
            if not self._fault():
                super().do_HEAD()

        def list_directory(self, path):  # no directory listings, like a mirror
            self.send_error(404)
            return None

        def log_request(self, code="-", size="-"):
            status = int(code) if str(code).isdigit() else int(getattr(code, "value", 0))
            with lock:
                server.requests.append(Request(self.command, self.path.split("?", 1)[0], status))

        def log_message(self, format, *args):
            pass

    httpd = _QuietServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server._httpd = httpd
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    server._thread = threading.Thread(target=httpd.serve_forever, daemon=True,
                                      name=f"aptrepo-{httpd.server_address[1]}")
    server._thread.start()
    return server


@contextmanager
def serve(root: str | os.PathLike[str]) -> Iterator[Server]:
    """Context manager around `serve_start`."""
    server = serve_start(root)
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- snapshots


SNAPSHOT_FORMAT = "%Y%m%dT%H%M%SZ"


class SnapshotArchive:
    """A snapshot archive on 127.0.0.1 in the Debian snapshot layout:
    `<url>archive/<archive>/<YYYYmmddTHHMMSSZ>/dists/...`, `.../pool/...`.

    `take(repo, "test", when)` copies the archive as published now. Like the real
    service, a timestamp that is not a snapshot redirects to the newest snapshot
    at or before it (404 if there is none).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.server: Server | None = None

    def take(self, repo: AptRepo, archive: str, when: dt.datetime) -> str:
        stamp = when.astimezone(dt.UTC).strftime(SNAPSHOT_FORMAT)
        shutil.copytree(repo.root, self.root / "archive" / archive / stamp)
        return stamp

    def path(self, archive: str, stamp: str, rel: str) -> Path:
        return self.root / "archive" / archive / stamp / rel

    def _redirect(self, path: str) -> str | None:
        parts = path.split("/", 4)   # "", "archive", NAME, STAMP, rest
        if len(parts) < 5 or parts[1] != "archive":
            return None
        _, _, name, stamp, rest = parts
        have = sorted(p.name for p in (self.root / "archive" / name).glob("*T*Z"))
        earlier = [h for h in have if h <= stamp]
        return f"/archive/{name}/{earlier[-1]}/{rest}" if earlier else None

    def serve(self) -> Server:
        if self.server is None:
            self.server = serve_start(self.root, redirect=self._redirect)
        return self.server

    @property
    def url(self) -> str:
        return self.serve().url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

"""A local, test-signed Alpine repository: .apk packages and an APKINDEX built here.

Packages are laid out as abuild makes them (signature member, control member
with .PKGINFO and scripts, data member with APK-TOOLS.checksum.SHA1 PAX
headers); the index is signed with a test RSA key (`Signer` from
test_apk_support). Everything is deterministic (gzip mtime 0, fixed tar
metadata), so two builds of one repository are byte-identical.
"""

from __future__ import annotations

import base64
import hashlib
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from test_apk_support import Signer, file_info, gz, make_index, tar_bytes


@dataclass
class Sym:
    target: str


@dataclass
class F:
    content: bytes
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


@dataclass
class Apk:
    name: str
    version: str = "1.0-r0"
    arch: str = "x86_64"
    depends: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    install_if: list[str] = field(default_factory=list)
    replaces: list[str] = field(default_factory=list)
    provider_priority: int | None = None
    origin: str = ""
    files: dict[str, bytes | F | Sym] = field(default_factory=dict)
    dirs: dict[str, int] = field(default_factory=dict)  # path -> mode
    scripts: dict[str, bytes] = field(default_factory=dict)  # ".post-install" -> body
    triggers: str = ""
    # raw (TarInfo, content) data members appended as is, for hostile packages
    raw_members: list[tuple[tarfile.TarInfo, bytes]] = field(default_factory=list)
    signed: bool = True
    datahash: str | None = None  # override: a lie about the data
    # the data tar's format; abuild's GNU headers carry non-ASCII names as raw bytes
    tar_format: int = tarfile.PAX_FORMAT
    # extra .PKGINFO lines ("key = value"), for hostile packages
    pkginfo: list[str] = field(default_factory=list)

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.apk"


def _data_entries(pkg: Apk) -> list[tuple[tarfile.TarInfo, bytes]]:
    entries: list[tuple[tarfile.TarInfo, bytes]] = []
    dirs = dict(pkg.dirs)
    for path in [*pkg.files, *pkg.dirs]:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.setdefault("/".join(parts[:i]), 0o755)
    for path in sorted(dirs):
        entries.append((file_info(path, mode=dirs[path], type_=tarfile.DIRTYPE), b""))
    for path, spec in sorted(pkg.files.items()):
        if isinstance(spec, Sym):
            info = file_info(path, mode=0o777, type_=tarfile.SYMTYPE)
            info.linkname = spec.target
            info.pax_headers = {"APK-TOOLS.checksum.SHA1":
                                hashlib.sha1(spec.target.encode()).hexdigest()}
            entries.append((info, b""))
            continue
        f = spec if isinstance(spec, F) else F(spec)
        info = file_info(path, mode=f.mode)
        info.uid, info.gid = f.uid, f.gid
        # Names as abuild's tar writes them: a non-root owner is not named root (the
        # installer maps a root name to 0 whatever the id, as apk and dpkg do).
        info.uname = "root" if f.uid == 0 else ""
        info.gname = "root" if f.gid == 0 else ""
        info.pax_headers = {"APK-TOOLS.checksum.SHA1": hashlib.sha1(f.content).hexdigest()}
        entries.append((info, f.content))
    return entries + list(pkg.raw_members)


def build_apk(pkg: Apk, signer: Signer | None) -> tuple[bytes, str, int]:
    """The .apk bytes, its control checksum (Q1) and its installed size."""
    entries = _data_entries(pkg)
    data_member = gz(tar_bytes(entries, fmt=pkg.tar_format))
    installed_size = sum(len(c) for _, c in entries) or 1
    lines = [f"pkgname = {pkg.name}", f"pkgver = {pkg.version}", "pkgdesc = test package",
             "url = https://example.org/", "builddate = 1700000000",
             "packager = Test <test@example.org>", f"size = {installed_size}",
             f"arch = {pkg.arch}", f"origin = {pkg.origin or pkg.name}", "license = MIT"]
    lines += [f"depend = {d}" for d in pkg.depends]
    lines += [f"provides = {p}" for p in pkg.provides]
    lines += [f"replaces = {r}" for r in pkg.replaces]
    if pkg.install_if:
        lines.append(f"install_if = {' '.join(pkg.install_if)}")
    if pkg.provider_priority is not None:
        lines.append(f"provider_priority = {pkg.provider_priority}")
    if pkg.triggers:
        lines.append(f"triggers = {pkg.triggers}")
    lines += pkg.pkginfo
    lines.append(f"datahash = {pkg.datahash or hashlib.sha256(data_member).hexdigest()}")
    control = [(file_info(".PKGINFO"), ("\n".join(lines) + "\n").encode())]
    control += [(file_info(name, mode=0o755), body) for name, body in sorted(pkg.scripts.items())]
    control_member = gz(tar_bytes(control, fmt=tarfile.USTAR_FORMAT, end_marker=False))
    sig = signer.signature_member(control_member) if signer and pkg.signed else b""
    q1 = "Q1" + base64.b64encode(hashlib.sha1(control_member).digest()).decode()
    return sig + control_member + data_member, q1, installed_size


def stanza(pkg: Apk, checksum: str, size: int, installed_size: int) -> str:
    lines = [f"C:{checksum}", f"P:{pkg.name}", f"V:{pkg.version}", f"A:{pkg.arch}",
             f"S:{size}", f"I:{installed_size}", "T:test package", "U:https://example.org/",
             "L:MIT", f"o:{pkg.origin or pkg.name}", "t:1700000000"]
    if pkg.provider_priority is not None:
        lines.append(f"k:{pkg.provider_priority}")
    if pkg.depends:
        lines.append("D:" + " ".join(pkg.depends))
    if pkg.provides:
        lines.append("p:" + " ".join(pkg.provides))
    if pkg.install_if:
        lines.append("i:" + " ".join(pkg.install_if))
    if pkg.replaces:
        lines.append("r:" + " ".join(pkg.replaces))
    return "\n".join(lines) + "\n"


def write_repo(root: Path, repo: str, pkgs: list[Apk], signer: Signer,
               *, index_signer: Signer | None = None, arch: str = "x86_64",
               description: bytes = b"test repo",
               index_edit: Callable[[str], str] | None = None) -> dict[str, bytes]:
    """Write `root/<repo>/<arch>/` with the packages and a signed APKINDEX.tar.gz.

    `index_signer` signs the index (default: `signer`); packages are signed by
    `signer` unless they say otherwise. `index_edit` rewrites the APKINDEX text
    before it is signed (a hostile but signed index). Returns filename -> .apk bytes.
    """
    d = root / repo / arch
    d.mkdir(parents=True, exist_ok=True)
    stanzas = []
    out = {}
    for pkg in pkgs:
        data, checksum, isize = build_apk(pkg, signer)
        (d / pkg.filename).write_bytes(data)
        out[pkg.filename] = data
        stanzas.append(stanza(pkg, checksum, len(data), isize))
    text = "\n".join(stanzas)
    text = index_edit(text) if index_edit else text
    (d / "APKINDEX.tar.gz").write_bytes(make_index(text, index_signer or signer,
                                                   description=description))
    return out


def write_distro(tmp: Path, key: Path, *, suites: str = "v3.99", components: str = "main",
                 signatures: str = "required", name: str = "test") -> Path:
    p = tmp / "alpine-test.yaml"
    p.write_text("family: alpine\nrelease: test\n"
                 f"package-signatures: {signatures}\n"
                 "archives:\n"
                 f"  - name: {name}\n"
                 f"    suites: [{suites}]\n"
                 f"    components: [{components}]\n"
                 f"    available-components: [main, community]\n"
                 f"    keys: [{key}]\n")
    return p


def write_key(tmp: Path, signer: Signer) -> Path:
    k = tmp / "keys" / signer.key_name
    k.parent.mkdir(parents=True, exist_ok=True)
    k.write_bytes(signer.public_pem)
    return k


def resign(apk: bytes, signer: Signer) -> bytes:
    """A real .apk with its signature member replaced by `signer`'s, as a mirror that
    re-signs does: control and data (so Q1 and datahash) stay byte for byte."""
    from assembler.alpine.signing import looks_like_signature, member_spans

    spans = member_spans(apk, what="apk")
    signed = looks_like_signature(apk[spans[0][0]:spans[0][1]], what="apk")
    start, end = spans[1] if signed else spans[0]
    return signer.signature_member(apk[start:end]) + apk[start:]


def external_stanza(apk: bytes) -> str:
    """The APKINDEX stanza of a real .apk, from its own .PKGINFO."""
    from assembler.alpine.package import open_apk

    pkg = open_apk(apk, require_signature=False)
    v = pkg.pkginfo_values
    lines = [f"C:{pkg.control_checksum}", f"P:{v('pkgname')[0]}", f"V:{v('pkgver')[0]}",
             f"A:{v('arch')[0]}", f"S:{len(apk)}", f"I:{v('size')[0]}",
             f"T:{v('pkgdesc')[0]}", "U:", f"L:{v('license')[0]}", f"o:{v('origin')[0]}",
             f"t:{v('builddate')[0]}"]
    if v("depend"):
        lines.append("D:" + " ".join(v("depend")))
    if v("provides"):
        lines.append("p:" + " ".join(v("provides")))
    return "\n".join(lines) + "\n"


def write_flat_repo(root: Path, repo: str, pkgs: list[Apk], signer: Signer,
                    external: dict[str, bytes] | None = None, arch: str = "x86_64",
                    ) -> dict[str, bytes]:
    """Like write_repo, plus real .apk files (`external`: file name -> bytes, already
    signed as wanted) in the same signed index."""
    d = root / repo / arch
    d.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}
    stanzas = []
    for pkg in pkgs:
        data, checksum, isize = build_apk(pkg, signer)
        files[pkg.filename] = data
        stanzas.append(stanza(pkg, checksum, len(data), isize))
    for filename, data in (external or {}).items():
        files[filename] = data
        stanzas.append(external_stanza(data))
    for filename, data in files.items():
        (d / filename).write_bytes(data)
    (d / "APKINDEX.tar.gz").write_bytes(make_index("\n".join(stanzas), signer))
    return files

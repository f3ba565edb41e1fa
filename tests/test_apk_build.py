"""Must-shows 5 and 6: `assemble build` of an Alpine spec against a repository the
test generates, signs and serves on 127.0.0.1; hostile .apk files are refused."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
from pathlib import Path

import pytest
from apkrepo import Apk, F, Sym, build_apk, write_distro, write_key, write_repo
from aptrepo import Server, serve_start
from hermetic import run, skopeo_inspect, umoci_unpack
from test_apk_support import FIXTURES, Signer, file_info

from assembler.alpine.installed import format_installed, parse_installed
from assembler.alpine.package import q1
from assembler.cli import main

pytestmark = pytest.mark.integration

REPO = "v3.99/main"


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.new("test@example.org-5f3c1a2b.rsa.pub")


@pytest.fixture(scope="module")
def stranger() -> Signer:
    return Signer.new("stranger@example.org-00000000.rsa.pub")


def good_packages() -> list[Apk]:
    return [
        Apk("libtest", "1.2-r0", provides=["so:libtest.so.1=1.2"],
            files={"usr/lib/libtest.so.1": F(b"\x7fELF not really", 0o755)}),
        Apk("busybox", "1.36.1-r0", provides=["/bin/sh", "cmd:busybox=1.36.1-r0",
                                               "cmd:sh=1.36.1-r0"],
            files={"bin/busybox": F(b"#!busybox", 0o755), "bin/sh": Sym("/bin/busybox"),
                   "etc/busybox-paths.d/busybox": b"/bin/ls\n/usr/bin/env\n/bin/sh\n"},
            scripts={".post-install": b"#!/bin/sh\nexit 0\n", ".trigger": b"#!/bin/sh\n"},
            triggers="/bin /usr/bin"),
        Apk("hello", "2.0-r1", depends=["so:libtest.so.1", "/bin/sh"],
            provides=["cmd:hello=2.0-r1"],
            files={"usr/bin/hello": F(b"#!/bin/sh\necho hello\n", 0o755),
                   "etc/hello.conf": F(b"secret\n", 0o600, 0, 42)},
            dirs={"var/lib/hello": 0o700}),
        Apk("hello", "1.0-r0", depends=["so:libtest.so.1"], files={"usr/bin/hello": b"old"}),
        # install_if: only the second one's conditions are met by the selection
        Apk("hello-doc", "2.0-r1", install_if=["docs", "hello=2.0-r1"],
            files={"usr/share/doc/hello/README": b"doc"}),
        Apk("hello-busybox", "2.0-r1", install_if=["hello", "busybox"],
            files={"usr/share/hello/busybox-integration": b"yes"}),
    ]


def setup_build(tmp_path: Path, signer: Signer, pkgs: list[Apk],
                request: str = "hello, busybox>=1.0", signatures: str = "required",
                index_signer: Signer | None = None) -> tuple[list[str], Path, Server]:
    served = tmp_path / "srv"
    write_repo(served, REPO, pkgs, signer, index_signer=index_signer)
    server = serve_start(served)
    url = server.url.rstrip("/")
    distro = write_distro(tmp_path, write_key(tmp_path, signer), signatures=signatures)
    spec = tmp_path / "image.yaml"
    # The build refuses an entrypoint the image lacks: only images with hello name it.
    entrypoint = "entrypoint: [/usr/bin/hello]\n" if request.startswith("hello") else ""
    spec.write_text(f"distro: {distro}\narchs: [x86_64]\n"
                    f"contents:\n  packages: [{request}]\n"
                    f"mirrors: {{test: {url}}}\n" + entrypoint)
    out = tmp_path / "out" / "image.tar"
    argv = ["build", str(spec), "-o", str(out), "--cache-dir", str(tmp_path / "cache"), "-q"]
    return argv, out, server


def expected_files(pkg: Apk) -> dict[str, str]:
    """path -> Z: checksum, computed here from the package definition."""
    out = {}
    for path, spec in pkg.files.items():
        if isinstance(spec, Sym):
            out[path] = q1(hashlib.sha1(spec.target.encode()).digest())
        else:
            content = spec.content if isinstance(spec, F) else spec
            out[path] = q1(hashlib.sha1(content).digest())
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory, signer):
    tmp = tmp_path_factory.mktemp("apkbuild")
    argv, out, server = setup_build(tmp, signer, good_packages())
    try:
        code = main(argv)
    finally:
        server.stop()
    assert code == 0
    return tmp, out, server.url.rstrip("/")


def test_lock_entries(built, signer):
    tmp, _, _ = built
    lock = json.loads((tmp / "image.lock.json").read_text())
    entries = {p["name"]: p for p in lock["archs"]["x86_64"]["packages"]}
    assert sorted(entries) == ["busybox", "hello", "hello-busybox", "libtest"]
    assert entries["hello"]["version"] == "2.0-r1"
    assert entries["hello-busybox"]["reason"] == ["busybox", "hello"]  # via install_if
    defs = {(p.name, p.version): p for p in good_packages()}
    for name, e in entries.items():
        data, checksum, _ = build_apk(defs[name, e["version"]], signer)
        assert e["checksum"] == checksum
        assert e["size"] == len(data)
        assert e["sha256"] == hashlib.sha256(data).hexdigest()
        assert re.fullmatch(r"[0-9a-f]{64}", e["datahash"])
        assert e["repository"] == REPO and e["arch"] == "x86_64"
        assert e["filename"] == f"{REPO}/x86_64/{name}-{e['version']}.apk"
    assert "127.0.0.1" not in json.dumps(lock)  # archive-relative, like Debian's locks


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")
def test_skopeo_accepts_image(built):
    info = skopeo_inspect(built[1])
    assert (info["Architecture"], info["Os"]) == ("amd64", "linux")


@pytest.fixture(scope="module")
def rootfs(built, tmp_path_factory):
    if shutil.which("umoci") is None:
        pytest.skip("umoci not installed")
    return umoci_unpack(built[1], tmp_path_factory.mktemp("unpacked"))


def test_installed_db_parses_back(rootfs, built):
    tmp, _, _ = built
    db = parse_installed((rootfs / "lib/apk/db/installed").read_text())
    lock = json.loads((tmp / "image.lock.json").read_text())["archs"]["x86_64"]["packages"]
    assert sorted((p.record.name, p.record.version) for p in db) == \
        sorted((e["name"], e["version"]) for e in lock)
    by_lock = {e["name"]: e for e in lock}
    defs = {(p.name, p.version): p for p in good_packages()}
    for pkg in db:
        assert pkg.record.checksum == by_lock[pkg.record.name]["checksum"]
        assert pkg.record.size == by_lock[pkg.record.name]["size"]
        files = {(f"{d.path}/{f.name}"): f.checksum for d in pkg.dirs for f in d.files}
        assert files == expected_files(defs[pkg.record.name, pkg.record.version])
        for path, checksum in files.items():
            on_disk = rootfs / path
            data = (os.readlink(on_disk).encode() if on_disk.is_symlink()
                    else on_disk.read_bytes())
            assert q1(hashlib.sha1(data).digest()) == checksum, path
    hello = next(p for p in db if p.record.name == "hello")
    assert hello.record.depends == ["so:libtest.so.1", "/bin/sh"]
    acl = {f"{d.path}/{f.name}": str(f.acl) for d in hello.dirs for f in d.files}
    assert acl["etc/hello.conf"] == "0:42:600" and acl["usr/bin/hello"] == "0:0:755"
    assert {d.path: str(d.acl) for d in hello.dirs}["var/lib/hello"] == "0:0:700"


def _shape(text: str) -> list[list[str]]:
    """Each stanza's sequence of line keys, runs of file lines collapsed."""
    out = []
    for stanza in text.split("\n\n"):
        keys = [line[0] for line in stanza.splitlines()]
        if keys:
            out.append(keys)
    return out


@pytest.mark.needs_shared
def test_installed_db_format_matches_fixture(rootfs):
    ours = (rootfs / "lib/apk/db/installed").read_text()
    theirs = (FIXTURES / "installed-db" / "installed").read_text()
    # both end every package with a blank line and round-trip byte for byte
    for text in (ours, theirs):
        assert text.endswith("\n\n")
        assert format_installed(parse_installed(text)) == text
    # header fields in the order apk writes them: no two keys of ours appear in
    # the opposite order of any stanza of apk's own file
    before = set()
    for keys in _shape(theirs):
        header = [k for k in keys if k not in "FMRaZ"]
        before |= {(a, b) for i, a in enumerate(header) for b in header[i + 1:]}
    assert len(before) > 50  # the fixture really constrains the order
    for keys in _shape(ours):
        header = [k for k in keys if k not in "FMRaZ"]
        pairs = {(a, b) for i, a in enumerate(header) for b in header[i + 1:]}
        assert not {(b, a) for a, b in pairs} & before, header
        assert header[:4] == ["C", "P", "V", "A"]
        body = keys[len(header):]
        assert set(body) <= set("FMRaZ") and (not body or body[0] == "F")
    # and every line has apk's grammar
    assert all(re.fullmatch(r"[A-Za-z]:.*", line) for line in ours.splitlines() if line)


def test_apk_state_files(rootfs, built, signer):
    _, _, url = built
    etc = rootfs / "etc" / "apk"
    assert (etc / "world").read_text() == "busybox>=1.0\nhello\n"
    assert (etc / "repositories").read_text() == f"{url}/{REPO}\n"
    assert (etc / "arch").read_text() == "x86_64\n"
    assert (etc / "keys" / signer.key_name).read_bytes() == signer.public_pem
    assert os.readlink(rootfs / "bin/ls") == "/bin/busybox"
    assert os.readlink(rootfs / "usr/bin/env") == "/bin/busybox"
    assert os.readlink(rootfs / "bin/sh") == "/bin/busybox"  # the package's own link
    with tarfile.open(rootfs / "lib/apk/db/scripts.tar") as t:
        names = t.getnames()
    assert len(names) == 2 and all(n.startswith("busybox-1.36.1-r0.Q1") for n in names)
    assert {n.rsplit(".", 1)[1] for n in names} == {"post-install", "trigger"}
    trig = (rootfs / "lib/apk/db/triggers").read_text()
    assert re.fullmatch(r"Q1\S+ /bin /usr/bin\n", trig)
    assert not (rootfs / "usr/share/doc/hello").exists()  # hello-doc's install_if not met


# -- must-show 6: hostile packages ----------------------------------------------------

def _hostile_member(name: str, content: bytes = b"evil") -> tuple[tarfile.TarInfo, bytes]:
    return file_info(name), content


def _symlink_member(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    info = file_info(name, mode=0o777, type_=tarfile.SYMTYPE)
    info.linkname = target
    return info, b""


def _evil(**kw) -> list[Apk]:
    return [Apk("evil", "1.0-r0", files={"usr/bin/ok": b"ok"}, **kw)]


@pytest.mark.parametrize("pkgs, signatures, words", [
    (_evil(raw_members=[_hostile_member("../../escape")]), "required",
     ["climbs out of the root with '..'"]),
    (_evil(raw_members=[_hostile_member("/etc/shadow-evil")]), "required",
     ["absolute path"]),
    (_evil(raw_members=[_symlink_member("usr/lib/evil", "../../../../etc/shadow")]), "required",
     ["points above the image root"]),
    (_evil(datahash="0" * 64), "required", ["does not match the datahash"]),
    (_evil(signed=False), "required", ["is not signed, and a signature is required"]),
], ids=["traversal", "absolute", "symlink-escape", "datahash", "unsigned"])
def test_hostile_packages_refused(tmp_path, signer, capsys, pkgs, signatures, words):
    argv, out, server = setup_build(tmp_path, signer, pkgs, "evil", signatures)
    try:
        code, _, err = run(argv, capsys)
    finally:
        server.stop()
    assert code != 0 and "Traceback" not in err, err
    assert "evil" in err and all(w in err for w in words), err
    assert not out.exists()
    for name in ("escape", "etc/shadow-evil"):
        assert not (tmp_path.parent / name).exists()


def test_unsigned_accepted_when_policy_allows(tmp_path, signer, capsys):
    """The policy is what refuses the unsigned package above: with signatures
    optional, the verified index's checksum vouches for it."""
    argv, out, server = setup_build(tmp_path, signer, _evil(signed=False), "evil", "optional")
    try:
        code, _, err = run(argv, capsys)
    finally:
        server.stop()
    assert code == 0, err
    assert out.exists()


def test_package_signed_by_untrusted_key_refused(tmp_path, signer, stranger, capsys):
    served = tmp_path / "srv"
    pkgs = _evil()
    write_repo(served, REPO, pkgs, stranger, index_signer=signer)
    server = serve_start(served)
    distro = write_distro(tmp_path, write_key(tmp_path, signer))
    spec = tmp_path / "image.yaml"
    spec.write_text(f"distro: {distro}\narchs: [x86_64]\ncontents:\n  packages: [evil]\n")
    try:
        code, _, err = run(["lock", str(spec), "--mirror", f"test={server.url}",
                            "--cache-dir", str(tmp_path / "cache")], capsys)
    finally:
        server.stop()
    assert code != 0 and "Traceback" not in err
    assert f"not signed by a trusted key (only by {stranger.key_name})" in err, err
    assert not list((tmp_path / "cache").rglob("apk-verified/*"))


def test_index_signed_by_untrusted_key_refused_and_not_cached(tmp_path, signer, stranger,
                                                               capsys):
    argv, out, server = setup_build(tmp_path, signer, good_packages(), index_signer=stranger)
    try:
        code, _, err = run(argv, capsys)
    finally:
        server.stop()
    assert code != 0 and "APKINDEX.tar.gz is signed by unknown key" in err, err
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


@pytest.mark.parametrize("winner", ["a", "b"])  # installed first / installed later
def test_replaces_decides_file_ownership(tmp_path, signer, capsys, winner):
    """Two packages shipping one path: an error, unless one replaces the other;
    then the replacing package owns it in the image and in the installed db."""
    loser = "b" if winner == "a" else "a"
    pkgs = [Apk("a", files={"usr/bin/tool": b"from a"}, depends=["b"]),
            Apk("b", files={"usr/bin/tool": b"from b", "usr/bin/b": b"b"})]
    next(p for p in pkgs if p.name == winner).replaces = [loser]
    argv, out, server = setup_build(tmp_path, signer, pkgs, "a")
    try:
        code, _, err = run([*argv, "--format", "oci-dir"], capsys)
        assert code == 0, err
        layer = next(p for p in (out / "blobs" / "sha256").iterdir()
                     if p.stat().st_size > 1000 and tarfile.is_tarfile(p))
        with tarfile.open(layer) as t:
            tool = t.extractfile("usr/bin/tool").read()
            db = parse_installed(t.extractfile("lib/apk/db/installed").read().decode())
        assert tool == f"from {winner}".encode()
        owned = {p.record.name: sorted(p.paths()) for p in db}
        assert "usr/bin/tool" in owned[winner] and "usr/bin/tool" not in owned[loser]
        assert "usr/bin/b" in owned["b"]
        # without replaces: the path conflict is explained
        for p in pkgs:
            p.replaces = []
        write_repo(tmp_path / "srv", REPO, pkgs, signer)
        (tmp_path / "image.lock.json").unlink()
        code, _, err = run([*argv, "--format", "oci-dir"], capsys)
    finally:
        server.stop()
    assert code != 0 and "Path conflict at /usr/bin/tool" in err, err


def test_python_bytecode_key_refused_for_apk(tmp_path, signer, capsys):
    """apk packages ship their .pyc: the Debian stand-in's key would do nothing here."""
    argv, out, server = setup_build(tmp_path, signer, good_packages())
    spec = Path(argv[1])
    spec.write_text(spec.read_text() + "python-bytecode: false\n")
    try:
        code, _, err = run(argv, capsys)
    finally:
        server.stop()
    assert code == 2 and "python-bytecode: apk images take their bytecode" in err, err
    assert not out.exists()

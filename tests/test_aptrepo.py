"""Self-test of tests/aptrepo.py: the generated archive is one the host's apt accepts
(and rejects, once tampered with), and the generated .debs are ones dpkg-deb reads."""

from __future__ import annotations

import io
import lzma
import shutil
import subprocess
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from aptrepo import AptKey, AptRepo, Dir, Entry, File, Pkg, Symlink, build_deb, serve
from aptsim import AptRoot, parse_inst, signed_by_sources

needs_apt = pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get")
needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


def ar_members(data: bytes) -> dict[str, bytes]:
    assert data[:8] == b"!<arch>\n"
    pos, out = 8, {}
    while pos < len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode().strip()
        size = int(header[48:58])
        out[name] = data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)
    return out


def data_tar(deb: bytes) -> tarfile.TarFile:
    members = ar_members(deb)
    (name,) = [n for n in members if n.startswith("data.tar")]
    return tarfile.open(fileobj=io.BytesIO(members[name]))


def sample_suites() -> dict[str, list[Pkg]]:
    return {
        "stable": [
            Pkg("app", "1.0-1", depends="libfoo (>= 1:1.2) | libbar, virtual-thing",
                pre_depends="base-thing",
                files={"usr/bin/app": File(b"#!/bin/sh\necho hi\n", mode=0o755),
                       "usr/bin/app-link": Symlink("app"),
                       "usr/share/doc/app/copyright": b"free\n"}),
            Pkg("libfoo", "1:1.2-1", multi_arch="same", source="foo (1.2-1)",
                files={"usr/lib/x86_64-linux-gnu/libfoo.so.1": b"\x7fELF fake"}),
            Pkg("provider", "2", arch="all", provides="virtual-thing"),
            Pkg("base-thing", "3~rc1", essential=True, priority="required"),
            Pkg("unrelated-essential", "1", essential=True, priority="required"),
            Pkg("lib-other", "1", component="contrib"),
        ],
        "stable-updates": [
            Pkg("libfoo", "1:1.3-1", multi_arch="same", source="foo (1.3-1)",
                files={"usr/lib/x86_64-linux-gnu/libfoo.so.1": b"\x7fELF fake 1.3"}),
        ],
    }


def apt_for(repo: AptRepo, tmp_path: Path, key_file: Path | None = None,
            suites: tuple[str, ...] = ("stable", "stable-updates"),
            components: tuple[str, ...] = ("main",)) -> AptRoot:
    sources = signed_by_sources(repo.url, suites, components,
                                key_file or repo.key.public_path)
    return AptRoot(tmp_path / "apt", sources)


# --------------------------------------------------------------------------- .deb files


@needs_dpkg
@pytest.mark.parametrize("compression", ["xz", "gz", "zst", "none"])
def test_deb_is_read_by_dpkg_deb(tmp_path: Path, compression: str) -> None:
    pkg = Pkg("hello", "1:2.0~b1-3+b1", depends="libc6 (>= 2.34)", compression=compression,
              multi_arch="foreign",
              files={"usr/bin/hello": File(b"\x7fELF hello", mode=0o755),
                     "usr/share/hello/data.txt": b"data\n",
                     "usr/share/hello/empty": Dir(),
                     "usr/bin/hi": Symlink("hello")},
              extra_control={"Homepage": "https://example.invalid/hello", "Section": None})
    deb = tmp_path / "hello.deb"
    deb.write_bytes(build_deb(pkg))
    assert build_deb(pkg) == deb.read_bytes(), "debs are reproducible"

    def field(name: str) -> str:
        return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True,
                              text=True, check=True).stdout.strip()

    assert field("Package") == "hello"
    assert field("Version") == "1:2.0~b1-3+b1"
    assert field("Depends") == "libc6 (>= 2.34)"
    assert field("Multi-Arch") == "foreign"
    assert field("Homepage") == "https://example.invalid/hello"
    assert field("Section") == ""
    out = tmp_path / "x"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(out)], check=True)
    assert (out / "usr/bin/hello").read_bytes() == b"\x7fELF hello"
    assert (out / "usr/bin/hello").stat().st_mode & 0o777 == 0o755
    assert (out / "usr/share/hello/data.txt").read_bytes() == b"data\n"
    assert (out / "usr/share/hello/empty").is_dir()
    assert (out / "usr/bin/hi").readlink() == Path("hello")
    ctrl = tmp_path / "ctrl"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(ctrl)], check=True)
    md5sums = (ctrl / "md5sums").read_text()
    assert "usr/bin/hello\n" in md5sums and "usr/share/hello/data.txt\n" in md5sums


def test_hostile_deb_keeps_hostile_members() -> None:
    pkg = Pkg("evil", "1", tar_members=[
        Entry.file("./../../escape", b"out"),
        Entry.file("/etc/abs", b"abs"),
        Entry.symlink("./etc/shadow-link", "../../../../etc/shadow"),
        Entry.symlink("./etc/abs-link", "/etc/shadow"),
        Entry.hardlink("./etc/hard", "/etc/passwd"),
        Entry.file("./usr/bin/su2", b"suid", mode=0o4755),
        Entry.chardev("./dev/mem2", 1, 1),
        Entry.blockdev("./dev/sda9", 8, 9),
        Entry.fifo("./run/fifo"),
    ], files={"usr/bin/ok": b"ok"})
    deb = build_deb(pkg)
    members = {m.name: m for m in data_tar(deb).getmembers()}
    assert members["./../../escape"].isfile()
    assert members["/etc/abs"].isfile()
    assert members["./etc/shadow-link"].issym()
    assert members["./etc/shadow-link"].linkname == "../../../../etc/shadow"
    assert members["./etc/abs-link"].linkname == "/etc/shadow"
    assert members["./etc/hard"].islnk()
    assert members["./usr/bin/su2"].mode == 0o4755
    dev = members["./dev/mem2"]
    assert dev.ischr() and (dev.devmajor, dev.devminor) == (1, 1)
    assert members["./dev/sda9"].isblk()
    assert members["./run/fifo"].isfifo()
    assert members["./usr/bin/ok"].isfile()


@needs_dpkg
def test_hostile_deb_listed_by_dpkg_deb(tmp_path: Path) -> None:
    pkg = Pkg("evil", "1", tar_members=[
        Entry.symlink("./etc/shadow-link", "../../../../etc/shadow"),
        Entry.file("./usr/bin/su2", b"suid", mode=0o4755),
        Entry.chardev("./dev/mem2", 1, 1),
    ])
    deb = tmp_path / "evil.deb"
    deb.write_bytes(build_deb(pkg))
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                             check=True).stdout
    assert "./etc/shadow-link -> ../../../../etc/shadow" in listing
    assert "-rwsr-xr-x" in listing
    assert "crw-rw-rw-" in listing


# --------------------------------------------------------------------------- archive layout


def test_archive_layout(tmp_path: Path, apt_key: AptKey) -> None:
    import datetime as dt

    until = dt.datetime(2099, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    repo = AptRepo(tmp_path, sample_suites(), key=apt_key, valid_until=until,
                   components=["main", "contrib"])
    release = repo.release("stable").decode()
    assert "Valid-Until: Fri, 02 Jan 2099 03:04:05 UTC" in release
    assert "Acquire-By-Hash: yes" in release
    assert repo.inrelease("stable").startswith(b"-----BEGIN PGP SIGNED MESSAGE-----")
    assert (tmp_path / "dists/stable/Release.gpg").exists()
    packages = lzma.decompress(
        (tmp_path / "dists/stable/main/binary-amd64/Packages.xz").read_bytes()).decode()
    # arch:all packages are in the arch index too; contrib is separate
    assert "Package: provider" in packages and "Package: lib-other" not in packages
    pf = repo.deb("libfoo", "1:1.2-1")
    assert pf.filename == "pool/main/f/foo/libfoo_1.2-1_amd64.deb"
    assert f"SHA256: {pf.sha256}\n" in packages and f"Size: {pf.size}\n" in packages
    assert f"Filename: {pf.filename}\n" in packages
    assert "Source: foo (1.2-1)\n" in packages
    assert repo.deb("lib-other").filename.startswith("pool/contrib/lib-/lib-other/")
    for line in release.split("SHA256:\n")[1].splitlines():
        digest, size, rel = line.split()
        by_hash = tmp_path / "dists/stable" / Path(rel).parent / "by-hash/SHA256" / digest
        assert by_hash.exists() and by_hash.stat().st_size == int(size)


def test_republish_updates_index(tmp_path: Path, apt_key: AptKey) -> None:
    repo = AptRepo(tmp_path, {"stable": [Pkg("a", "1")]}, key=apt_key)
    old = repo.inrelease("stable")
    repo.suites["stable"].append(Pkg("a", "2"))
    repo.publish()
    assert repo.inrelease("stable") != old
    text = (tmp_path / repo.index_path("stable")).read_text()
    assert "Version: 1\n" in text and "Version: 2\n" in text
    assert (tmp_path / repo.deb("a", "2").filename).exists()


def test_server_logs_requests_and_injects_faults(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"hello")
    with serve(tmp_path) as srv:
        srv.fail("/f", 503)
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(srv.url + "f")
        assert exc.value.code == 503
        assert urllib.request.urlopen(srv.url + "f?x=1").read() == b"hello"
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(srv.url + "missing")
        with pytest.raises(urllib.error.HTTPError):  # no directory listings
            urllib.request.urlopen(srv.url)
        assert srv.url.startswith("http://127.0.0.1:")
        assert [(r.path, r.status) for r in srv.requests] == [
            ("/f", 503), ("/f", 200), ("/missing", 404), ("/", 404)]
        assert srv.count("/f") == 2


# --------------------------------------------------------------------------- host apt


@pytest.mark.integration
@needs_apt
@pytest.mark.parametrize("key_form", ["asc", "gpg", "rsa-asc"])
def test_host_apt_accepts_archive(tmp_path: Path, apt_repo, key_form: str) -> None:
    key = AptKey.generate(tmp_path / "rsa", rsa=True) if key_form == "rsa-asc" else None
    repo = apt_repo(sample_suites(), **({"key": key} if key else {}))
    key_file = repo.key.public_binary_path if key_form == "gpg" else repo.key.public_path
    apt = apt_for(repo, tmp_path, key_file)
    cp = apt.update()
    assert "W:" not in cp.stdout + cp.stderr, cp.stdout + cp.stderr
    # Indexes came by hash; the plain paths were never asked for
    assert repo.server.count("/by-hash/SHA256/") == 2
    assert repo.server.count("/Packages") == 0
    got = apt.simulate(["app"])
    # highest version across suites; the virtual package via Provides; no
    # unrelated Essential package sneaks in on an empty status
    assert got == {"libfoo": "1:1.3-1", "provider": "2", "base-thing": "3~rc1",
                   "app": "1.0-1"}
    # downloads verify against the index hashes and are byte-identical to the pool
    cp = apt.run("install", "-y", "-d", "-q", "app", check=True)
    archives = tmp_path / "apt/cache/archives"
    for name, version in got.items():
        pf = repo.deb(name, version)
        fetched = archives / f"{name}_{version.replace(':', '%3a')}_{pf.pkg.arch}.deb"
        assert fetched.read_bytes() == (repo.root / pf.filename).read_bytes()


@pytest.mark.integration
@needs_apt
def test_host_apt_without_by_hash_and_with_contrib(tmp_path: Path, apt_repo) -> None:
    repo = apt_repo(sample_suites(), by_hash=False, components=["main", "contrib"],
                    index_exts=[".gz"])
    apt = apt_for(repo, tmp_path, suites=("stable",), components=("main", "contrib"))
    apt.update()
    assert repo.server.count("/by-hash/") == 0
    assert repo.server.count("/main/binary-amd64/Packages.gz") == 1
    assert parse_inst(apt.run("-s", "install", "lib-other", check=True).stdout) == {
        "lib-other": "1"}


def _update_error(repo: AptRepo, tmp_path: Path, **kw) -> str:
    cp = apt_for(repo, tmp_path, **kw).update(check=False)
    out = cp.stdout + cp.stderr
    assert cp.returncode != 0, out
    return out


@pytest.mark.integration
@needs_apt
def test_host_apt_rejects_modified_inrelease(tmp_path: Path, apt_repo) -> None:
    repo = apt_repo(sample_suites())
    repo.tamper_inrelease("stable")
    out = _update_error(repo, tmp_path, suites=("stable",))
    assert "BADSIG" in out or "signatures were invalid" in out, out


@pytest.mark.integration
@needs_apt
def test_host_apt_rejects_unknown_key(tmp_path: Path, apt_repo) -> None:
    repo = apt_repo(sample_suites())
    repo.resign("stable", AptKey.generate(tmp_path / "other"))
    out = _update_error(repo, tmp_path, suites=("stable",))
    assert "NO_PUBKEY" in out, out


@pytest.mark.integration
@needs_apt
def test_host_apt_rejects_unsigned(tmp_path: Path, apt_repo) -> None:
    repo = apt_repo(sample_suites())
    repo.remove_signature("stable")
    out = _update_error(repo, tmp_path, suites=("stable",))
    assert "not signed" in out, out


@pytest.mark.integration
@needs_apt
def test_host_apt_rejects_replaced_packages(tmp_path: Path, apt_repo) -> None:
    repo = apt_repo(sample_suites())
    repo.replace_index("stable")
    out = _update_error(repo, tmp_path, suites=("stable",))
    assert "Hash Sum mismatch" in out or "unexpected size" in out, out


@pytest.mark.integration
@needs_apt
def test_host_apt_rejects_expired_release(tmp_path: Path, apt_repo) -> None:
    repo = apt_repo(sample_suites())
    repo.expire("stable")
    out = _update_error(repo, tmp_path, suites=("stable",))
    assert "expired" in out, out


@pytest.mark.integration
@needs_apt
def test_host_apt_rejects_tampered_deb(tmp_path: Path, apt_repo) -> None:
    repo = apt_repo(sample_suites())
    repo.tamper_pool_file("app")
    apt = apt_for(repo, tmp_path)
    apt.update()
    cp = apt.run("install", "-y", "-d", "-q", "app")
    assert cp.returncode != 0
    assert "Hash Sum mismatch" in cp.stdout + cp.stderr

"""Must-show (issue 10, items 2 and 6): hostile package content, through `assemble build`.

A signed archive on 127.0.0.1 publishes tiny packages that Python's tarfile alone
would turn into gigabytes of memory or cache: sparse headers claiming 10**30
bytes, a real 1.5 GB PAX header, a 320 MB GNU long name, a 1.5 GB md5sums, a
3 GB file in a package that declares 4 KiB. Each build runs in a child capped
at 2 GiB of address space and 1 MiB per file (a regression fails the test, not
the machine) and must end in one paragraph, exit 2, under 100 MB peak RSS,
with no unpacked cache entry and under 1 MiB written.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from aptrepo import AptRepo, Entry, File, Pkg, Symlink
from hermetic import layer_members, run, write_distro, write_spec
from hostiletar import control_tar, deb, header, member, run_bounded, tar, zst_stream

pytestmark = pytest.mark.integration

MB = 1 << 20
HUGE = 1536 * MB


def _data(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    import lzma

    return lzma.compress(tar(members))


def _bombs() -> dict[str, bytes]:
    ok = (member("./usr/bin/ok", 2), b"ok")
    sparse = member("./usr/bin/x", 0, pax={"GNU.sparse.size": str(10 ** 30)})
    long_name = zst_stream(header("././@LongLink", 320 * MB, tarfile.GNUTYPE_LONGNAME),
                           b"a", 320 * MB)
    return {
        "sparse-data": deb(_data([ok, (sparse, b"")])),
        "sparse-control": deb(_data([ok]), control=control_tar(
            "sparse-control", extra=[(sparse, b"")])),
        "pax-header": deb(zst_stream(header("./PaxHeaders/x", HUGE, tarfile.XHDTYPE),
                                     b"0", HUGE), ".zst"),
        "long-name": deb(long_name, ".zst"),
        "md5sums": deb(_data([ok]), control=zst_stream(
            tar([(member("./control", 0), b"")], end=False)
            + header("./md5sums", HUGE, tarfile.REGTYPE), b"0" * 32 + b"  x\n", HUGE),
            control_ext=".zst"),
        "disk": deb(zst_stream(header("./usr/share/zeros", 3 << 30, tarfile.REGTYPE),
                               b"\0", 3 << 30), ".zst"),
    }


@pytest.fixture(scope="module")
def archive(tmp_path_factory, apt_key):
    tmp = tmp_path_factory.mktemp("hostile")
    pkgs = [Pkg(name, "1.0", raw_deb=data) for name, data in _bombs().items()]
    pkgs.append(Pkg("honest", "1.0", files={"usr/share/honest/blob": b"x" * (2 * MB)},
                    compression="gz", extra_control={"Installed-Size": "4"}))
    repo = AptRepo(tmp / "archive", {"stable": pkgs}, key=apt_key)
    repo.serve()
    yield tmp, repo, write_distro(tmp, apt_key.public_path, ["stable"])
    repo.stop()


def _argv(tmp: Path, repo: AptRepo, distro: Path, request: str, sub: str) -> list[str]:
    d = tmp / sub
    d.mkdir()
    spec = write_spec(d, f"distro: {distro}\narchs: [amd64]\ncontents:\n  packages: [{request}]\n")
    return ["build", str(spec), "-o", str(d / "out" / "image.tar"), "--mirror",
            f"test={repo.url}", "--cache-dir", str(d / "cache"), "-q"]


def _written(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("name, words", [
    ("sparse-data", ["is sparse"]),
    ("sparse-control", ["is sparse", "control.tar"]),
    ("pax-header", ["extension header", "ASSEMBLER_MAX_TAR_HEADER"]),
    ("long-name", ["extension header", "ASSEMBLER_MAX_TAR_HEADER"]),
    ("md5sums", ["md5sums", "ASSEMBLER_MAX_CONTROL_SIZE"]),
    ("disk", ["Installed-Size", "4,096", "ASSEMBLER_INSTALLED_SIZE_MARGIN"]),
])
def test_bomb_refused_with_bounded_memory_and_disk(archive, name, words):
    tmp, repo, distro = archive
    argv = _argv(tmp, repo, distro, name, name)
    code, err, rss = run_bounded(argv)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"{name} 1.0" in err and ".deb" in err, err   # names the package and its file
    for w in words:
        assert w in err, err
    print(f"{name}: peak RSS {rss / MB:.0f} MB")
    assert rss < 100 * MB, f"peak RSS {rss / MB:.0f} MB"
    cache = tmp / name / "cache"
    assert _written(tmp / name) - _written(cache / "blobs") < MB
    assert not list((cache / "unpacked").rglob("*.v*")), "a partial unpacked entry was cached"
    assert not list(cache.rglob(".tmp-*")) and not (tmp / name / "out" / "image.tar").exists()


def test_installed_size_bound_can_be_raised(archive, capsys, monkeypatch):
    """A 2 MB file in a package that declares 4 KiB: refused, then built with the margin off."""
    tmp, repo, distro = archive
    argv = _argv(tmp, repo, distro, "honest", "honest")
    code, _, err = run(argv, capsys)
    assert code == 2 and "Installed-Size" in err and "Traceback" not in err, err
    monkeypatch.setenv("ASSEMBLER_INSTALLED_SIZE_MARGIN", "0")
    code, _, err = run(argv, capsys)
    assert code == 0, err
    monkeypatch.setenv("ASSEMBLER_MAX_IMAGE_SIZE", "1M")     # the whole image has one too
    code, _, err = run(argv, capsys)
    assert code == 2 and "ASSEMBLER_MAX_IMAGE_SIZE" in err and "honest" in err, err
    monkeypatch.delenv("ASSEMBLER_MAX_IMAGE_SIZE")
    monkeypatch.setenv("ASSEMBLER_MAX_PACKAGE_SIZE", "1M")   # the absolute ceiling still holds
    (tmp / "honest" / "cache" / "unpacked").rename(tmp / "honest" / "unpacked-old")
    code, _, err = run(argv, capsys)
    assert code == 2 and "ASSEMBLER_MAX_PACKAGE_SIZE" in err and "1,048,576" in err, err
    monkeypatch.setenv("ASSEMBLER_MAX_PACKAGE_SIZE", "lots")
    code, _, err = run(argv, capsys)
    assert code == 2 and "ASSEMBLER_MAX_PACKAGE_SIZE='lots' is not a size" in err, err


# -- item 6: what a package's metadata may not do to the image -------------------------

_layer = layer_members


def _build(tmp_path, apt_repo, apt_key, capsys, pkgs, request="evil"):
    repo = apt_repo({"stable": pkgs})
    distro = write_distro(tmp_path, apt_key.public_path, ["stable"])
    spec = write_spec(tmp_path, f"distro: {distro}\narchs: [amd64]\n"
                      f"contents:\n  packages: [{request}]\n")
    out = tmp_path / "out" / "image.tar"
    code, _, err = run(["build", str(spec), "-o", str(out), "--mirror", f"test={repo.url}",
                        "--cache-dir", str(tmp_path / "cache")], capsys)
    return code, err, out


def test_newline_in_a_member_name_cannot_forge_md5sums(tmp_path, apt_repo, apt_key, capsys):
    forged = "usr/bin/ok\nd41d8cd98f00b204e9800998ecf8427e  etc/shadow"
    code, err, out = _build(tmp_path, apt_repo, apt_key, capsys,
                            [Pkg("evil", "1.0", files={"usr/bin/ok": b"ok", forged: b"x"})])
    assert code == 2 and "newline" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_owners_mapped_like_dpkg_and_world_writable_reported(tmp_path, apt_repo, apt_key,
                                                             capsys):
    files = {"usr/bin/rootname": File(b"a", uid=1000, gid=1000),     # root names: 0:0
             "usr/bin/numeric": File(b"b", uid=1000, gid=1000, uname="", gname=""),
             "var/mail": Entry.dir("", 0o2775, gid=8, gname="mail"),
             "usr/share/open": File(b"c", mode=0o666),
             "srv/drop": Entry.dir("", 0o777)}
    code, err, out = _build(tmp_path, apt_repo, apt_key, capsys, [Pkg("evil", "1.0",
                                                                      files=files)])
    assert code == 0, err
    m = _layer(out)
    assert (m["usr/bin/rootname"].uid, m["usr/bin/rootname"].gid) == (0, 0)
    assert (m["usr/bin/numeric"].uid, m["usr/bin/numeric"].gid) == (1000, 1000)
    assert m["var/mail"].gid == 8
    assert m["usr/share/open"].mode & 0o777 == 0o666 and "/usr/share/open is world-writable" \
        in err
    assert "/srv/drop is world-writable without the sticky bit" in err
    assert "/tmp is world-writable" not in err   # the image's own /tmp (1777) is fine


def test_tmp_symlink_to_root_is_replaced(tmp_path, apt_repo, apt_key, capsys):
    code, err, out = _build(tmp_path, apt_repo, apt_key, capsys, [
        Pkg("evil", "1.0", files={"usr/bin/ok": b"ok", "tmp": Symlink("/")})])
    assert code == 0, err
    m = _layer(out)
    assert "" not in m and "." not in m and "./" not in m
    assert m["tmp"].isdir() and m["tmp"].mode & 0o7777 == 0o1777
    assert "evil: ships /tmp as a symlink to '/'" in err

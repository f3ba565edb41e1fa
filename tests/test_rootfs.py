"""assembler.rootfs.tree: the in-memory image filesystem and its safety rules."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from assembler.errors import AssemblerError, IntegrityError
from assembler.rootfs.tree import Tree, normalize


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **kw) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = kw.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o644)
    info.mtime = kw.pop("mtime", 1_600_000_000)
    for k, v in kw.items():
        setattr(info, k, v)
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def add(tree: Tree, origin: str, *members: tuple) -> list[str]:
    warnings: list[str] = []
    for info, f in members:
        warnings += tree.add_tar_member(info, f, origin)
    return warnings


# -- normalization -------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["./usr/bin/x", "/usr/bin/x", "usr/bin/x", "usr//bin/./x", "./usr/bin/x/"]
)
def test_normalize(raw: str) -> None:
    assert normalize(raw) == "usr/bin/x"


def test_normalized_paths_land_on_one_entry() -> None:
    with Tree() as t:
        t.add_file("./usr/bin/x", b"a", origin="p")
        t.add_file("/usr/bin/x", b"a", origin="p")
        assert [e.path for e in t] == ["usr", "usr/bin", "usr/bin/x"]
        assert t.read("usr/bin/x") == b"a"


@pytest.mark.parametrize("bad", ["../etc/passwd", "./usr/../../etc/x", "usr/bin/.."])
def test_dotdot_rejected_naming_origin(bad: str) -> None:
    with Tree() as t, pytest.raises(IntegrityError, match=r"evil.*\.\."):
        t.add_tar_member(*member(bad, data=b"x"), origin="evil")


# -- files, hashes, spool --------------------------------------------------------


def test_contents_hashes_and_streaming() -> None:
    data = bytes(range(256)) * 10000
    with Tree() as t:
        t.add_file("big", io.BytesIO(data), origin="p")
        t.add_file("small", b"hello", mode=0o600, uid=1, gid=2, origin="p", mtime=5)
        big = t.get("big")
        assert big is not None
        assert big.size == len(data)
        assert big.sha256 == hashlib.sha256(data).hexdigest()
        assert big.md5 == hashlib.md5(data).hexdigest()
        assert t.read("big") == data
        with t.open("small") as f:
            assert f.read() == b"hello"
        small = t.get("/small")
        assert small is not None
        assert (small.mode, small.uid, small.gid, small.mtime) == (0o600, 1, 2, 5)


def test_identical_contents_share_spool_space() -> None:
    with Tree() as t:
        t.add_file("a", b"same" * 1000, origin="p")
        t.add_file("b", b"same" * 1000, origin="q")
        t.add_file("c", b"other", origin="q")
        a, b, c = t.get("a"), t.get("b"), t.get("c")
        assert a and b and c
        assert a.offset == b.offset
        assert c.offset == 4000
        assert t.read("c") == b"other"


def test_implicit_parents_are_root_0755() -> None:
    with Tree() as t:
        t.add_file("usr/share/doc/p/copyright", b"x", origin="p")
        d = t.get("usr/share/doc")
        assert d is not None and (d.kind, d.mode, d.uid, d.gid) == ("dir", 0o755, 0, 0)


def test_explicit_dir_overrides_implicit_then_first_wins() -> None:
    with Tree() as t:
        t.add_file("var/mail/x", b"", origin="a")
        add(t, "b", member("./var/mail", tarfile.DIRTYPE, mode=0o2775, gid=8))
        add(t, "c", member("./var/mail", tarfile.DIRTYPE, mode=0o700))
        d = t.get("var/mail")
        assert d is not None and (d.mode, d.gid, d.origin) == (0o2775, 8, "b")
        t.add_dir("var/mail", mode=0o755)  # 'generated' may change it
        d = t.get("var/mail")
        assert d is not None and d.mode == 0o755


def test_dir_mtime_is_order_independent() -> None:
    def build(order: list[int]) -> int | None:
        with Tree() as t:
            for i, m in enumerate(order):
                t.add_dir("usr", origin=f"p{i}", mtime=m)
            d = t.get("usr")
            assert d is not None
            return d.mtime

    assert build([5, 9, 7]) == build([9, 7, 5]) == 9


# -- symlinks and hardlinks -------------------------------------------------------


def test_absolute_symlink_is_fine() -> None:
    with Tree() as t:
        add(t, "p", member("./usr/bin/editor", tarfile.SYMTYPE, linkname="/etc/alternatives/ed"))
        e = t.get("usr/bin/editor")
        assert e is not None and e.link == "/etc/alternatives/ed"


@pytest.mark.parametrize("target", ["../../../etc/shadow", "../../../../x", "a/../../../.."])
def test_escaping_symlink_rejected(target: str) -> None:
    with Tree() as t, pytest.raises(IntegrityError, match="evil.*above the image root"):
        add(t, "evil", member("./usr/bin/x", tarfile.SYMTYPE, linkname=target))


def test_relative_symlink_to_root_level_is_fine() -> None:
    with Tree() as t:
        add(t, "p", member("./usr/bin/x", tarfile.SYMTYPE, linkname="../../etc/x"))
        assert t.get("usr/bin/x") is not None


def test_hardlink_needs_earlier_regular_file() -> None:
    with Tree() as t:
        with pytest.raises(IntegrityError, match="p.*hardlink"):
            add(t, "p", member("./usr/bin/b", tarfile.LNKTYPE, linkname="./usr/bin/a"))
        add(t, "p", member("./usr/bin/a", data=b"perl", mode=0o755))
        add(t, "p", member("./usr/bin/b", tarfile.LNKTYPE, linkname="./usr/bin/a"))
        b = t.get("usr/bin/b")
        assert b is not None and (b.kind, b.link, b.mode) == ("hardlink", "usr/bin/a", 0o755)
        assert t.read("usr/bin/b") == b"perl"
        add(t, "p", member("./usr/bin/d", tarfile.DIRTYPE))
        with pytest.raises(IntegrityError):
            add(t, "p", member("./usr/bin/c", tarfile.LNKTYPE, linkname="./usr/bin/d"))


def test_parent_symlink_is_followed() -> None:
    with Tree() as t:
        add(
            t,
            "libc6",
            member("./usr/lib64", tarfile.DIRTYPE),
            member("./lib64", tarfile.SYMTYPE, linkname="usr/lib64"),
        )
        add(t, "libc6", member("./lib64/ld-linux-x86-64.so.2", data=b"ld"))
        assert t.get("usr/lib64/ld-linux-x86-64.so.2") is not None
        assert "lib64/ld-linux-x86-64.so.2" not in {e.path for e in t}
        # Shipping the directory where a symlink is: unpack through it.
        add(t, "other", member("./lib64", tarfile.DIRTYPE))
        lib64 = t.get("lib64")
        assert lib64 is not None and lib64.kind == "symlink"
        assert t.read("lib64/ld-linux-x86-64.so.2") == b"ld"


def test_symlink_over_directory_keeps_directory_with_warning() -> None:
    with Tree() as t:
        add(t, "a", member("./opt/x", tarfile.DIRTYPE))
        warnings = add(t, "b", member("./opt/x", tarfile.SYMTYPE, linkname="y"))
        assert t.get("opt/x").kind == "dir"  # type: ignore[union-attr]
        assert warnings and "keeping the directory" in warnings[0]


# -- neutralized members -----------------------------------------------------------


def test_device_nodes_and_fifos_dropped_with_warning() -> None:
    with Tree() as t:
        warnings = add(
            t,
            "makedev",
            member("./dev/null", tarfile.CHRTYPE),
            member("./dev/sda", tarfile.BLKTYPE),
            member("./run/initctl", tarfile.FIFOTYPE),
        )
        assert len(warnings) == 3
        assert "makedev" in warnings[0] and "dev/null" in warnings[0]
        assert len(t) == 0


def test_setuid_stripped_unless_allowed() -> None:
    with Tree() as t:
        warnings = add(t, "mount", member("./usr/bin/mount", data=b"m", mode=0o4755))
        e = t.get("usr/bin/mount")
        assert e is not None and e.mode == 0o755
        assert warnings and "setuid" in warnings[0] and "mount" in warnings[0]
    with Tree(allow_setuid=True) as t:
        assert not add(t, "mount", member("./usr/bin/mount", data=b"m", mode=0o4755))
        assert t.get("usr/bin/mount").mode == 0o4755  # type: ignore[union-attr]


# -- conflicts ----------------------------------------------------------------------


def test_conflict_names_path_and_both_origins() -> None:
    with Tree() as t:
        add(t, "libfoo1", member("./usr/lib/libfoo.so", data=b"v1"))
        with pytest.raises(AssemblerError) as err:
            add(t, "libfoo2", member("./usr/lib/libfoo.so", data=b"v2"))
        msg = str(err.value)
        assert "/usr/lib/libfoo.so" in msg and "libfoo1" in msg and "libfoo2" in msg
        assert t.read("usr/lib/libfoo.so") == b"v1"


def test_kind_conflict() -> None:
    with Tree() as t:
        add(t, "a", member("./etc/x", data=b"v1"))
        with pytest.raises(AssemblerError, match="a.*b"):
            add(t, "b", member("./etc/x", tarfile.SYMTYPE, linkname="y"))
        with pytest.raises(AssemblerError, match="/etc/x"):
            add(t, "c", member("./etc/x", tarfile.DIRTYPE))
        with pytest.raises(AssemblerError, match="/etc/x"):
            add(t, "c", member("./etc/x/y", data=b""))


def test_identical_content_from_two_origins_is_fine() -> None:
    with Tree() as t:
        add(t, "libc6:amd64", member("./usr/share/doc/libc6/changelog.gz", data=b"same"))
        add(t, "libc6:arm64", member("./usr/share/doc/libc6/changelog.gz", data=b"same"))
        e = t.get("usr/share/doc/libc6/changelog.gz")
        assert e is not None and e.origin == "libc6:amd64"


def test_generated_file_can_replace() -> None:
    with Tree() as t:
        add(t, "base-files", member("./etc/os-release", data=b"old"))
        t.add_file("etc/os-release", b"new", replace=True)
        assert t.read("etc/os-release") == b"new"


# -- merged /usr ---------------------------------------------------------------------


def test_merged_usr_canonicalizes_and_absorbs() -> None:
    with Tree(merged_usr=True) as t:
        w = add(
            t,
            "dash",
            member("./bin", tarfile.DIRTYPE),
            member("./bin/sh", tarfile.SYMTYPE, linkname="dash"),
            member("./bin/dash", data=b"dash", mode=0o755),
        )
        add(t, "libc6", member("./lib64", tarfile.SYMTYPE, linkname="usr/lib64"))
        add(t, "libc6", member("./lib64/ld-linux-x86-64.so.2", data=b"ld"))
        assert not w
        kinds = {e.path: e.kind for e in t}
        assert kinds["bin"] == "symlink" and t.get("bin").link == "usr/bin"  # type: ignore[union-attr]
        assert kinds["usr/bin/sh"] == "symlink"
        assert kinds["usr/bin/dash"] == "file"
        assert kinds["lib64"] == "symlink"
        assert kinds["usr/lib64/ld-linux-x86-64.so.2"] == "file"
        assert "lib32" not in kinds  # multilib links only when used
        assert t.read("/bin/sh") == b"dash"
        # The same file shipped as /bin/x and /usr/bin/x is one path.
        with pytest.raises(AssemblerError, match="/usr/bin/dash.*dash.*other"):
            add(t, "other", member("./usr/bin/dash", data=b"different"))


def test_remove_subtree() -> None:
    with Tree() as t:
        t.add_file("usr/share/doc/a/copyright", b"x")
        t.add_file("usr/share/doc-base/b", b"x")
        t.remove("usr/share/doc")
        assert {e.path for e in t} == {
            "usr",
            "usr/share",
            "usr/share/doc-base",
            "usr/share/doc-base/b",
        }
        with pytest.raises(KeyError):
            t.remove("nope")
        t.remove("nope", missing_ok=True)


def test_sorted_order_parents_first() -> None:
    with Tree() as t:
        for p in ["usr/bin-x/a", "usr/bin/z", "etc/a", "usr/bin/a"]:
            t.add_file(p, b"")
        paths = [e.path for e in t.entries()]
        assert paths == [
            "etc",
            "etc/a",
            "usr",
            "usr/bin",
            "usr/bin/a",
            "usr/bin/z",
            "usr/bin-x",
            "usr/bin-x/a",
        ]


def test_merged_usr_lookup_needs_the_link_to_exist() -> None:
    """/lib64/x must not be found through a /lib64 link the image does not have."""
    with Tree(merged_usr=True) as t:
        t.add_file("usr/lib64/ld-linux-x86-64.so.2", b"ld", 0o755)
        assert t.get("usr/lib64/ld-linux-x86-64.so.2") is not None
        assert t.get("lib64/ld-linux-x86-64.so.2") is None
        assert "lib64" not in t
        t.add_symlink("lib64", "usr/lib64")
        assert t.get("lib64/ld-linux-x86-64.so.2").path == "usr/lib64/ld-linux-x86-64.so.2"

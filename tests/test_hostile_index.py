"""A signed but hostile index: every value is checked before it is used.

A repository the user adds is trusted to sign its own packages, nothing more:
a SHA256 that is a path, a Size that is no number, a Filename with '..' are
refused with one paragraph and exit code 2, before anything is fetched or
written outside the cache (issue 10, item 1 and the index half of item 5).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from apkrepo import Apk, write_key, write_repo
from apkrepo import write_distro as apk_distro
from aptrepo import Pkg, serve_start
from hermetic import cache_files, run, write_distro, write_spec
from test_apk_support import Signer

from assembler.cache import Cache
from assembler.errors import MalformedError

pytestmark = pytest.mark.integration


def _snapshot(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for p in root.rglob("*"):
        if skip in p.parents or p == skip:
            continue
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def hostile(tmp_path, apt_repo, apt_key):
    repo = apt_repo({"stable": [Pkg("hello", "1.0-1", files={"usr/bin/hello": b"hi\n"})]})
    distro = write_distro(tmp_path, apt_key.public_path, ["stable"])
    spec = write_spec(tmp_path, f"distro: {distro}\narchs: [amd64]\n"
                      "contents:\n  packages: [hello]\n")
    cache = tmp_path / "cache"

    def edit(pattern: str, replacement: str) -> None:
        def change(text: str) -> str:
            return re.sub(pattern, replacement, text, flags=re.M)
        repo.index_edits["stable"] = change
        repo.publish()

    def argv(command: str = "lock") -> list[str]:
        extra = ["-o", str(tmp_path / "out" / "image.tar")] if command == "build" else []
        return [command, str(spec), "--cache-dir", str(cache), "--mirror",
                f"test={repo.url}", "-q", *extra]

    return repo, edit, argv, cache, tmp_path


def _refused(argv, capsys, *words):
    code, _, err = run(argv, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w.lower() in err.lower(), err
    return err


def test_sha256_that_is_a_path_is_refused_and_nothing_is_written(hostile, capsys):
    repo, edit, argv, cache, tmp = hostile
    victim = tmp / "victim"
    victim.mkdir()
    planted = victim / "planted"
    planted.write_bytes(b"!<arch>\nnot the signed package\n")
    # Relative to cache/blobs/sha256/<first two characters>/: lands on the planted file.
    rel = os.path.relpath(planted, cache / "blobs")
    assert rel.startswith("..")
    edit(r"^SHA256: .*$", f"SHA256: {rel}")
    index = (repo.root / repo.index_path("stable")).read_text()
    assert f"SHA256: {rel}\n" in index
    before = _snapshot(tmp, cache)
    err = _refused(argv("build"), capsys, "not a sha256", "binary-amd64/Packages", "hello")
    assert rel[:40] in err
    assert _snapshot(tmp, cache) == before     # no .v2, no temp file, no output, no lock
    assert not (tmp / "image.lock.json").exists()
    assert sorted(victim.iterdir()) == [planted]
    assert all(f.startswith(("blobs/", "index/", "inrelease/")) for f in cache_files(cache))


@pytest.mark.parametrize("pattern, replacement, words", [
    (r"^Size: .*$", "Size: x", ["Size", "not a size"]),
    (r"^Size: .*$", "Size: 1_0", ["not a size"]),
    (r"^Version: .*$", "Version: x:1.0", ["not a Debian version"]),
    (r"^Filename: .*$", "Filename: ../../../etc/passwd", ["'..'", "relative archive path"]),
    (r"^Filename: .*$", "Filename: /etc/passwd", ["absolute"]),
    (r"^Filename: .*$", "Filename: pool/a b?x", ["characters"]),
    (r"^Package: .*$", "Package: ../hello", ["package name"]),
    (r"^SHA256: .*$", "SHA256: " + "A" * 64, ["not a sha256"]),
    (r"^SHA256: .*$", "SHA256:", ["not a sha256"]),
])
def test_malformed_packages_fields_refused(hostile, capsys, pattern, replacement, words):
    _, edit, argv, cache, tmp = hostile
    if "Package:" in pattern:
        # the spec must ask for the hostile name for the resolver to look at it
        (tmp / "image.yaml").write_text((tmp / "image.yaml").read_text()
                                        .replace("[hello]", "['hello', '../hello']"))
    edit(pattern, replacement)
    if "Package:" in pattern:
        code, _, err = run(argv(), capsys)
        assert code == 2 and "Traceback" not in err, err
        return
    _refused(argv(), capsys, *words)
    assert not (tmp / "image.lock.json").exists()


def test_release_size_that_is_no_number_refused(hostile, capsys):
    repo, _, argv, cache, _ = hostile
    text = repo.release("stable").decode()
    text = re.sub(r"^( [0-9a-f]{64} +)\d+( main/binary-amd64/Packages)$", r"\g<1>12ab\2",
                  text, count=1, flags=re.M)
    assert "12ab" in text
    repo.write_release("stable", text.encode())
    _refused(argv(), capsys, "InRelease", "not a size", "12ab")
    assert cache_files(cache) == []


def test_release_sha256_that_is_a_path_refused(hostile, capsys):
    repo, _, argv, cache, _ = hostile
    text = repo.release("stable").decode()
    text = re.sub(r"^ [0-9a-f]{64}( +\d+ main/binary-amd64/Packages\.xz)$",
                  r" ../../../../../../tmp/x\1", text, count=1, flags=re.M)
    repo.write_release("stable", text.encode())
    _refused(argv(), capsys, "InRelease", "not a sha256")
    assert cache_files(cache) == []


def test_cache_never_takes_a_path_from_a_digest(tmp_path):
    cache = Cache(tmp_path)
    for bad in ("../../etc/passwd", "a" * 63, "A" * 64, "/" + "a" * 63, "a" * 64 + "/x"):
        with pytest.raises(MalformedError):
            cache.blob_path(bad)
        with pytest.raises(MalformedError):
            cache.unpacked_path(bad, 2)
    for bad in ("../x", "a/../../b", "/abs", ""):
        with pytest.raises(MalformedError):
            cache.derived_path("index", bad)
    assert cache.blob_path("a" * 64).is_relative_to(tmp_path)


def test_packages_index_bomb_is_refused_while_inflating(hostile, capsys, monkeypatch):
    import tracemalloc

    _, edit, argv, cache, _ = hostile
    # 32 MiB of text in a signed Packages.xz of a few KB; the limit is lowered to 1 MiB
    edit(r"^Priority: .*$", "Priority: optional\n" + "X-Pad: " + "a" * (32 << 20))
    monkeypatch.setenv("ASSEMBLER_MAX_INDEX_SIZE", str(1 << 20))
    tracemalloc.start()
    try:
        _refused(argv(), capsys, "Packages.xz", "inflates to more than 1048576 bytes",
                 "ASSEMBLER_MAX_INDEX_SIZE")
        peak = tracemalloc.get_traced_memory()[1]

    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak      # liblzma's 8 MiB dictionary, plus a piece or two
    assert not [f for f in cache_files(cache) if f.startswith("index/")]


# -- Alpine: a signed APKINDEX with hostile values ----------------------------------

@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.new("test@example.org-5f3c1a2b.rsa.pub")


@pytest.mark.parametrize("pattern, replacement, words", [
    (r"^D:.*$", "D:x>", ["D:'x>'", "not an apk dependency"]),
    (r"^p:.*$", "p:=1", ["p:'=1'", "not an apk dependency"]),
    (r"^S:.*$", "S:12ab", ["not a number"]),
    (r"^V:2.0-r1$", "V:../../2.0", ["not an apk version"]),
    (r"^P:hello$", "P:../hello", ["not an apk package name"]),
    (r"^C:.*$", "C:../../etc/passwd", ["not an apk checksum"]),
])
def test_hostile_apkindex_refused(tmp_path, capsys, signer, pattern, replacement, words):
    pkgs = [Apk("hello", "2.0-r1", depends=["musl"], provides=["cmd:hello=2.0-r1"],
                files={"usr/bin/hello": b"hi"}), Apk("musl", "1.2-r0")]
    served = tmp_path / "srv"
    write_repo(served, "v3.99/main", pkgs, signer,
               index_edit=lambda text: re.sub(pattern, replacement, text, count=1, flags=re.M))
    server = serve_start(served)
    try:
        distro = apk_distro(tmp_path, write_key(tmp_path, signer))
        spec = write_spec(tmp_path, f"distro: {distro}\narchs: [x86_64]\n"
                          "contents:\n  packages: [hello]\n")
        cache = tmp_path / "cache"
        err = _refused(["lock", str(spec), "--cache-dir", str(cache), "--mirror",
                        f"test={server.url.rstrip('/')}", "-q"], capsys, "APKINDEX", *words)
    finally:
        server.stop()
    assert "hello" in err or "musl" in err
    assert cache_files(cache) == []
    assert not (tmp_path / "image.lock.json").exists()

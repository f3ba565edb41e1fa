"""The cache as the machine breaks it: full, read-only, damaged (issue 10, items 5 and 6).

A full or read-only cache is one paragraph and exit code 1, never retried and
never called a network problem; a cut-short parsed index, a damaged package
file and the temp files of killed runs are found and dealt with without the
user deleting anything by hand.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path

import pytest
from aptrepo import Pkg
from hermetic import run, write_distro, write_spec

pytestmark = pytest.mark.integration

PAYLOAD = random.Random(10).randbytes(200_000)   # incompressible: a 200 KB .deb


def _mount(where: Path, options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); needs root")


@pytest.fixture
def tmpfs(tmp_path):
    mounted: list[Path] = []

    def make(name: str, size: str) -> Path:
        where = tmp_path / name
        _mount(where, f"size={size}")
        mounted.append(where)
        return where

    yield make
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)


@pytest.fixture
def setup(tmp_path, apt_repo, apt_key):
    repo = apt_repo({"stable": [Pkg("hello", "1.0-1", compression="none",
                                    files={"usr/share/hello/blob": PAYLOAD})]})
    distro = write_distro(tmp_path, apt_key.public_path, ["stable"])
    spec = write_spec(tmp_path, f"distro: {distro}\narchs: [amd64]\n"
                      "contents:\n  packages: [hello]\n")

    def argv(command: str, cache: Path, *extra: str) -> list[str]:
        out = ["-o", str(tmp_path / "out" / "image.tar")] if command == "build" else []
        return [command, str(spec), "--cache-dir", str(cache), "--mirror", f"test={repo.url}",
                "-q", *out, *extra]

    return repo, argv, tmp_path


def _disk_fault(argv, capsys, *words) -> str:
    code, _, err = run(argv, capsys)
    assert code == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "could not download" not in err and "network" not in err.lower(), err
    for w in words:
        assert w.lower() in err.lower(), err
    return err


def test_full_cache_download_is_not_retried(setup, tmpfs, capsys):
    repo, argv, _ = setup
    cache = tmpfs("cache", "64k")      # the indexes fit, the 200 KB .deb does not
    assert run(argv("lock", cache), capsys)[0] == 0
    deb = repo.deb("hello")
    _disk_fault(argv("build", cache), capsys, "no space left", "blobs/sha256")
    assert repo.server.count(deb.filename) == 1      # tried once, not five times
    assert not [p for p in cache.rglob(".tmp-*")]


def test_full_cache_index_write(setup, tmpfs, capsys):
    _, argv, _ = setup
    cache = tmpfs("cache", "64k")
    (cache / "filler").write_bytes(b"\0" * (64 << 10))    # nothing left for the index
    _disk_fault(argv("lock", cache), capsys, "no space left", "index")
    assert not [p for p in cache.rglob(".tmp-*")]


def test_read_only_cache_unpacked_write(setup, tmpfs, capsys):
    repo, argv, _ = setup
    cache = tmpfs("cache", "16m")
    assert run(argv("build", cache), capsys)[0] == 0
    # Without its cached result (images/) the build needs the package unpacked again.
    subprocess.run(["rm", "-rf", str(cache / "unpacked"), str(cache / "images")], check=True)
    _read_only(cache)
    _disk_fault(argv("build", cache), capsys, "read-only file system", "unpacked")


def test_read_only_cache_inrelease_pointer(setup, tmpfs, capsys):
    _, argv, _ = setup
    cache = tmpfs("cache", "16m")
    assert run(argv("lock", cache), capsys)[0] == 0
    _read_only(cache)
    _disk_fault(argv("lock", cache, "--update"), capsys, "read-only file system", "inrelease")


def test_read_only_cache_index_write(setup, tmpfs, capsys):
    _, argv, _ = setup
    cache = tmpfs("cache", "16m")
    _read_only(cache)
    _disk_fault(argv("lock", cache), capsys, "read-only file system")


def test_cut_short_index_entry_is_rebuilt_by_lock_update(setup, capsys):
    repo, argv, tmp = setup
    cache = tmp / "cache"
    assert run(argv("lock", cache), capsys)[0] == 0
    [entry] = [p for p in (cache / "index").iterdir() if p.name.startswith("deb-index-")]
    good = entry.read_bytes()
    entry.write_bytes(good[: len(good) // 2])
    fetched = repo.server.count("/binary-amd64/")
    code, _, err = run(argv("lock", cache, "--update"), capsys)
    assert code == 0, err
    assert repo.server.count("/binary-amd64/") == fetched + 1     # fetched and parsed again
    assert entry.read_bytes() == good


def test_damaged_package_file_is_fetched_again(setup, capsys):
    repo, argv, tmp = setup
    cache = tmp / "cache"
    assert run(argv("build", cache), capsys)[0] == 0
    deb = repo.deb("hello")
    blob = cache / "blobs" / "sha256" / deb.sha256[:2] / deb.sha256
    # Without its cached result (images/) the build needs the package again.
    subprocess.run(["rm", "-rf", str(cache / "unpacked"), str(cache / "images")], check=True)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF                     # same size, other bytes
    blob.write_bytes(bytes(data))
    code, _, err = run(argv("build", cache), capsys)
    assert code == 0, err
    assert repo.server.count(deb.filename) == 2
    assert blob.read_bytes() == (repo.root / deb.filename).read_bytes()
    # cut short: found by its size even when its unpacked form is cached
    blob.write_bytes(blob.read_bytes()[:1000])
    subprocess.run(["rm", "-rf", str(cache / "images")], check=True)
    assert run(argv("build", cache), capsys)[0] == 0
    assert repo.server.count(deb.filename) == 3


def test_stale_temp_files_are_swept(setup, capsys):
    _, argv, tmp = setup
    cache = tmp / "cache"
    assert run(argv("lock", cache), capsys)[0] == 0
    old = time.time() - 2 * 86400
    stale = [cache / "blobs" / ".tmp-abc.deb", cache / "index" / ".tmp-x.marshal"]
    fresh = cache / "index" / ".tmp-in-use.marshal"
    out = tmp / "out"
    out.mkdir()
    stale_work = out / ".assemble-dead"
    (stale_work / "sub").mkdir(parents=True)
    stale_out = out / ".tmp-q1w2e3.image.tar"
    for p in [*stale, fresh, stale_work / "sub" / "layer", stale_out]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    for p in [*stale, stale_work / "sub" / "layer", stale_work / "sub", stale_work, stale_out]:
        os.utime(p, (old, old))
    os.utime(cache, (old, old))      # the last sweep was long ago
    assert run(argv("build", cache), capsys)[0] == 0
    assert not any(p.exists() for p in [*stale, stale_work, stale_out])
    assert fresh.exists()             # another run may be writing it


def test_read_only_warm_cache_still_builds(setup, tmpfs, capsys):
    _, argv, tmp = setup
    cache = tmpfs("cache", "16m")
    assert run(argv("build", cache), capsys)[0] == 0
    first = (tmp / "out" / "image.tar").read_bytes()
    _read_only(cache)
    code, _, err = run(argv("build", cache), capsys)        # unchanged: only reads the cache
    assert code == 0, err
    assert (tmp / "out" / "image.tar").read_bytes() == first
    # A layer the cache does not hold is written beside the output instead.
    code, _, err = run(argv("build", cache, "--compression", "zstd"), capsys)
    assert code == 0, err
    assert (tmp / "out" / "image.tar").read_bytes() != first

"""Must-show: a lock keeps building after the mirror dropped its files, from a snapshot
archive (the Debian snapshot layout, served on 127.0.0.1); `lock --snapshot` resolves
against one, verified with the release's keys, an expired Valid-Until accepted only there."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from aptrepo import AptKey, File, Pkg, SnapshotArchive
from hermetic import run, write_distro, write_spec

from assembler.distro.snapshot import for_index

pytestmark = pytest.mark.integration

APP = Pkg("app", "1.0-1", depends="libfoo", files={"usr/bin/app": File(b"#!/bin/sh\n", 0o755)})


def _libfoo(version: str) -> Pkg:
    return Pkg("libfoo", version, files={"usr/share/libfoo/version": version.encode()})


@pytest.fixture
def world(tmp_path, apt_repo, apt_key):
    repo = apt_repo({"stable": [APP, _libfoo("1.5-1")]})
    distro = write_distro(tmp_path, apt_key.public_path, ["stable"])
    spec = write_spec(tmp_path, f"distro: {distro}\narchs: [amd64]\n"
                      "contents:\n  packages: [app]\n  strip: []\n")
    snap = SnapshotArchive(tmp_path / "snapshots")
    # The snapshot service imports an archive state shortly after it is published.
    stamp = snap.take(repo, "test", repo.date + dt.timedelta(minutes=10))
    snap.serve()
    yield repo, spec, snap, stamp
    snap.stop()


def _build(tmp_path, spec, repo, cache: str, *extra: str) -> list[str]:
    return ["build", str(spec), "-o", str(tmp_path / f"out-{cache}" / "image.tar"), "-q",
            "--mirror", f"test={repo.url}", "--cache-dir", str(tmp_path / cache), *extra]


def _drop_old_libfoo(repo) -> None:
    """What the real archive does: a new version replaces the old, whose file leaves the pool."""
    old = repo.root / repo.deb("libfoo", "1.5-1").filename
    repo.suites["stable"] = [APP, _libfoo("1.6-1")]
    repo.publish()
    old.unlink()


def test_dropped_file_builds_from_snapshot_with_the_same_digest(world, tmp_path, capsys,
                                                                  monkeypatch):
    repo, spec, snap, stamp = world
    code, first, err = run(_build(tmp_path, spec, repo, "c1"), capsys)
    assert code == 0, err
    lock = json.loads(spec.with_name("image.lock.json").read_text())
    index = lock["archs"]["amd64"]["indexes"][0]
    assert index["snapshot"] == for_index(repo.date) and "valid-until-expired" not in index
    _drop_old_libfoo(repo)

    code, _, err = run(_build(tmp_path, spec, repo, "c2"), capsys)
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "package libfoo" in err and "libfoo_1.5-1_amd64.deb" in err
    assert "--snapshot-mirror" in err and "ASSEMBLER_SNAPSHOT_MIRROR" in err
    assert "snapshot-mirror:" in err and "'assemble lock --update'" in err
    assert not (tmp_path / "out-c2" / "image.tar").exists()

    code, again, err = run(_build(tmp_path, spec, repo, "c3", "--snapshot-mirror", snap.url),
                           capsys)
    assert code == 0, err
    assert again == first
    served = snap.server.paths()
    assert f"/archive/test/{index['snapshot']}/{repo.deb('libfoo', '1.5-1').filename}" in served
    assert any(p.startswith(f"/archive/test/{stamp}/pool/") for p in served)  # redirected
    assert not any(p.endswith(repo.deb("app").filename) for p in served)  # mirror had it

    # So is the spec's snapshot-mirror (and it does not stale the lock).
    spec.write_text(spec.read_text() + f"snapshot-mirror: {snap.url}\n")
    code, again, err = run(_build(tmp_path, spec, repo, "c3b", "--locked"), capsys)
    assert code == 0 and again == first, err
    spec.write_text(spec.read_text().replace(f"snapshot-mirror: {snap.url}\n", ""))

    # The environment is configuration too; a tampered snapshot file is refused.
    pool_file = snap.path("test", stamp, repo.deb("libfoo", "1.5-1").filename)
    data = bytearray(pool_file.read_bytes())
    data[-1] ^= 1
    pool_file.write_bytes(bytes(data))
    monkeypatch.setenv("ASSEMBLER_SNAPSHOT_MIRROR", snap.url)
    code, _, err = run(_build(tmp_path, spec, repo, "c4"), capsys)
    assert code == 1 and "sha256" in err and "discarded" in err and "Traceback" not in err
    assert not (tmp_path / "out-c4" / "image.tar").exists()
    assert not list((tmp_path / "c4").rglob(repo.deb("libfoo", "1.5-1").sha256))


def test_lock_against_an_expired_snapshot(tmp_path, apt_repo, apt_key, capsys):
    repo = apt_repo({"stable": [APP, _libfoo("1.5-1")]})
    repo.expire("stable", days_ago=30)          # Valid-Until is 29 days ago
    distro = write_distro(tmp_path, apt_key.public_path, ["stable"])
    spec = write_spec(tmp_path, f"distro: {distro}\narchs: [amd64]\n"
                      "contents:\n  packages: [app]\n")
    mirror = ["--mirror", f"test={repo.url}", "--cache-dir", str(tmp_path / "c"), "-q"]
    code, _, err = run(["lock", str(spec), *mirror], capsys)
    assert code == 1 and "expired" in err           # from a mirror: refused
    snap = SnapshotArchive(tmp_path / "snapshots")
    stamp = snap.take(repo, "test", repo.date + dt.timedelta(minutes=10))
    later = (repo.date + dt.timedelta(hours=5)).strftime("%Y%m%dT%H%M%SZ")
    snap.serve()
    try:
        _drop_old_libfoo(repo)
        code, _, err = run(["lock", str(spec), "--snapshot", later], capsys)
        assert code == 2 and "--snapshot-mirror" in err and "Traceback" not in err
        code, _, err = run(["lock", str(spec), "--snapshot", "2024-06-01", *mirror], capsys)
        assert code == 2 and "YYYYmmddTHHMMSSZ" in err

        snapped = [*mirror, "--snapshot", later, "--snapshot-mirror", snap.url]
        code, _, err = run(["lock", str(spec), *snapped], capsys)
        assert code == 0, err
        lock = json.loads(spec.with_name("image.lock.json").read_text())
        versions = {p["name"]: p["version"] for p in lock["archs"]["amd64"]["packages"]}
        assert versions == {"app": "1.0-1", "libfoo": "1.5-1"}
        index = lock["archs"]["amd64"]["indexes"][0]
        assert index["snapshot"] == later
        assert index["valid-until-expired"] == repo.valid_until.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert f"/archive/test/{stamp}/dists/stable/InRelease" in snap.server.paths()

        # The snapshot's InRelease must carry the release's signature, like a mirror's.
        inrelease = snap.path("test", stamp, "dists/stable/InRelease")
        other = AptKey.generate(tmp_path / "other")
        inrelease.write_bytes(other.clearsign(snap.path("test", stamp,
                                                        "dists/stable/Release").read_bytes()))
        snapped[3] = str(tmp_path / "c2")   # a fresh cache: nothing verified earlier helps
        code, _, err = run(["lock", str(spec), *snapped], capsys)
        assert code == 1 and "Traceback" not in err and "InRelease" in err, err
    finally:
        snap.stop()

"""Must-show: locks are byte-identical across runs; --update on an unchanged archive is a no-op."""

from __future__ import annotations

import json

import pytest
from aptrepo import Pkg
from hermetic import run, write_distro, write_spec

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path, apt_repo, apt_key):
    repo = apt_repo({"stable": [
        Pkg("app", "1.0-1", depends="libfoo (>= 1), awk"),
        Pkg("libfoo", "1.5-1"),
        Pkg("mawk", "1.3-1", provides="awk", priority="required"),
        Pkg("gawk", "5.2-1", provides="awk"),
    ], "stable-security": [Pkg("libfoo", "1.5-1+sec1")]})
    distro = write_distro(tmp_path, apt_key.public_path, ["stable", "stable-security"])
    spec = write_spec(tmp_path, f"distro: {distro}\narchs: [amd64]\n"
                      "contents:\n  packages: [app]\ncmd: [a]\n")
    extra = ["--mirror", f"test={repo.url}", "--cache-dir", str(tmp_path / "c"), "-q"]
    return repo, spec, extra


def test_lock_twice_identical_and_update_noop(env, capsys, tmp_path):
    repo, spec, extra = env
    lock = spec.with_name("image.lock.json")
    assert run(["lock", str(spec), *extra], capsys)[0] == 0
    first = lock.read_bytes()
    lock.unlink()
    # a fresh cache too: nothing about the cache leaks into the lock
    extra2 = [*extra[:2], "--cache-dir", str(tmp_path / "c2"), "-q"]
    assert run(["lock", str(spec), *extra2], capsys)[0] == 0
    assert lock.read_bytes() == first
    mtime = lock.stat().st_mtime_ns
    assert run(["lock", str(spec), "--update", *extra], capsys)[0] == 0
    assert lock.read_bytes() == first and lock.stat().st_mtime_ns == mtime

    data = json.loads(first)
    pkgs = {p["name"]: p for p in data["archs"]["amd64"]["packages"]}
    assert set(pkgs) == {"app", "libfoo", "mawk"}
    assert pkgs["libfoo"]["version"] == "1.5-1+sec1" and pkgs["libfoo"]["suite"] == \
        "stable-security"
    assert pkgs["app"]["filename"].startswith("pool/") and "127.0.0.1" not in first.decode()
    assert pkgs["app"]["sha256"] == repo.deb("app").sha256
    assert pkgs["mawk"]["reason"] == ["app"] and pkgs["app"]["reason"] == ["requested"]
    assert [i["suite"] for i in data["archs"]["amd64"]["indexes"]] == ["stable",
                                                                       "stable-security"]


def test_stale_lock_reported_and_cosmetic_edits_not(env, capsys):
    repo, spec, extra = env
    assert run(["lock", str(spec), *extra], capsys)[0] == 0
    spec.write_text(spec.read_text().replace("cmd: [a]", "cmd: [b]  # comment"))
    code, _, err = run(["lock", str(spec), *extra[:-1]], capsys)
    assert code == 0 and "is stale" not in err and "unchanged" in err
    spec.write_text(spec.read_text().replace("packages: [app]", "packages: [app, gawk]"))
    code, _, err = run(["lock", str(spec), *extra[:-1]], capsys)
    assert code == 0 and "is stale" in err and "written" in err


def test_update_picks_up_new_versions(env, capsys):
    repo, spec, extra = env
    lock = spec.with_name("image.lock.json")
    assert run(["lock", str(spec), *extra], capsys)[0] == 0
    repo.suites["stable-security"].append(Pkg("libfoo", "1.5-1+sec2"))
    repo.publish()
    assert run(["lock", str(spec), *extra], capsys)[0] == 0
    assert "1.5-1+sec2" not in lock.read_text()  # fresh lock is kept as is
    assert run(["lock", str(spec), "--update", *extra], capsys) == (0, "", "")   # -q: silent
    assert "1.5-1+sec2" in lock.read_text()
    repo.suites["stable-security"].append(Pkg("libfoo", "1.5-1+sec3"))
    repo.publish()
    code, out, err = run(["lock", str(spec), "--update", *extra[:-1]], capsys)
    assert code == 0 and "libfoo 1.5-1+sec2 -> 1.5-1+sec3" in out and "written" in err, out


def test_show_packages_and_why(env, capsys):
    repo, spec, extra = env
    assert run(["lock", str(spec), *extra], capsys)[0] == 0
    code, out, _ = run(["show-packages", str(spec), *extra], capsys)
    assert code == 0 and "libfoo" in out and "1.5-1+sec1" in out
    code, out, _ = run(["show-packages", str(spec), "--json", *extra], capsys)
    assert json.loads(out)["amd64"][0]["name"] == "app"
    code, out, _ = run(["why", "mawk", "--spec", str(spec), *extra], capsys)
    assert code == 0 and out.strip() == "(requested) -> app -> mawk"
    code, _, err = run(["why", "mawc", "--spec", str(spec), *extra], capsys)
    assert code == 2 and "Did you mean 'mawk'" in err

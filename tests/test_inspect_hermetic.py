"""`assemble inspect` and `assemble diff` on hermetic images: ours, and the docker save tar
skopeo makes of them; `lock --update` prints the same package summary as `diff`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from aptrepo import Dir, File, Pkg
from hermetic import run, write_distro, write_spec

pytestmark = pytest.mark.integration


def _app(version: str, extra: dict | None = None) -> Pkg:
    files = {"usr/bin/app": File(b"#!/bin/sh\necho " + version.encode() + b"\n", 0o755),
             "usr/bin/app-admin": File(b"#!/bin/sh\n", 0o4755),
             "var/spool/app": Dir(0o777), **(extra or {})}
    return Pkg("app", version, depends="libdata", files=files)


DATA = Pkg("libdata", "2.0-1", arch="all", files={"usr/share/data/big": b"x" * 300_000})


@pytest.fixture(scope="module")
def images(tmp_path_factory, apt_key):
    from aptrepo import AptRepo

    tmp = tmp_path_factory.mktemp("inspect")
    repo = AptRepo(tmp / "repo", {"stable": [_app("1.0-1"), DATA]}, key=apt_key)
    repo.serve()
    distro = write_distro(tmp, apt_key.public_path, ["stable"])
    spec = write_spec(tmp, f"distro: {distro}\narchs: [amd64]\ncontents:\n  packages: [app]\n"
                      "  allow-setuid: true\nentrypoint: [/usr/bin/app]\n"
                      "environment: {MODE: test}\n")
    common = ["--mirror", f"test={repo.url}", "--cache-dir", str(tmp / "cache"), "-q"]
    try:
        assert _cli(["build", str(spec), "-o", str(tmp / "v1.tar"), *common]) == 0
        old_lock = tmp / "v1.lock.json"
        shutil.copy(spec.with_name("image.lock.json"), old_lock)
        repo.suites["stable"] = [_app("1.1-1", {"usr/bin/app-new": b"new"}), DATA]
        repo.publish()
        update = subprocess.run(
            [sys.executable, "-m", "assembler.cli", "lock", str(spec), "--update",
             *common[:-1]],   # not -q: that silences the summary
            capture_output=True, text=True)
        assert update.returncode == 0, update.stderr
        assert _cli(["build", str(spec), "-o", str(tmp / "v2.tar"), *common]) == 0
    finally:
        repo.stop()
    return tmp, old_lock, spec.with_name("image.lock.json"), update.stdout


def _cli(argv: list[str]) -> int:
    from assembler.cli import main

    return main(argv)


def _json(capsys, argv: list[str]) -> dict:
    code, out, err = run(argv, capsys)
    assert code == 0, err
    return json.loads(out)


def test_inspect_our_image(images, capsys):
    tmp = images[0]
    doc = _json(capsys, ["inspect", str(tmp / "v1.tar"), "--json"])
    (p,) = doc["platforms"]
    assert p["platform"] == "linux/amd64"
    assert p["config"]["entrypoint"] == ["/usr/bin/app"] and "MODE=test" in p["config"]["env"]
    assert [x["compressed-size"] > 0 and x["digest"].startswith("sha256:") for x in p["layers"]]
    assert p["package-databases"] == ["/var/lib/dpkg/status.d"]
    pkgs = {x["name"]: x for x in p["packages"]}
    assert pkgs["app"]["version"] == "1.0-1" and pkgs["libdata"]["arch"] == "all"
    assert pkgs["libdata"]["size-in-image"] == 300_000 and pkgs["libdata"]["installed-size"]
    assert p["biggest"][0] == {"path": "/usr/share/data/big", "size": 300_000,
                               "owners": ["libdata"]}
    files = {f["path"]: f for f in p["files"]}
    assert files["/usr/bin/app"]["owners"] == ["app"] and files["/usr/bin/app"]["mode"] == "0755"
    assert [f["path"] for f in p["setuid-setgid"]] == ["/usr/bin/app-admin"]
    assert p["setuid-setgid"][0]["mode"] == "4755"
    ww = {f["path"] for f in p["world-writable"]}
    assert "/var/spool/app" in ww and "/usr/bin/app" not in ww
    # What the build generated has no package behind it, and says so.
    assert "/var/lib/dpkg/status.d/app" in p["unowned"] and "/usr/bin/app" not in p["unowned"]
    code, text, _ = run(["inspect", str(tmp / "v1.tar")], capsys)
    assert code == 0 and "app-admin" in text and "libdata 2.0-1 all" in text


def test_inspect_a_skopeo_docker_archive_reads_the_same(images, capsys):
    tmp = images[0]
    docker = tmp / "docker-save.tar"
    subprocess.run(["skopeo", "copy", "-q", f"oci-archive:{tmp / 'v1.tar'}",
                    f"docker-archive:{docker}:app:1"], check=True, capture_output=True)
    with __import__("tarfile").open(docker) as t:
        assert "manifest.json" in t.getnames() and "index.json" not in t.getnames()
    ours = _json(capsys, ["inspect", str(tmp / "v1.tar"), "--json"])["platforms"][0]
    theirs = _json(capsys, ["inspect", str(docker), "--json"])["platforms"][0]
    for key in ("packages", "files", "setuid-setgid", "world-writable", "biggest"):
        assert theirs[key] == ours[key], key
    assert theirs["config"]["entrypoint"] == ours["config"]["entrypoint"]
    # The same image in both forms: nothing to report.
    d = _json(capsys, ["diff", str(tmp / "v1.tar"), str(docker), "--json"])
    assert d["platforms"][0]["files"] == {"added": [], "removed": [], "changed": []}
    # And as an OCI layout directory (skopeo's, not ours).
    layout = tmp / "layout"
    subprocess.run(["skopeo", "copy", "-q", f"oci-archive:{tmp / 'v1.tar'}",
                    f"oci:{layout}:app"], check=True, capture_output=True)
    in_dir = _json(capsys, ["inspect", str(layout), "--json"])["platforms"][0]
    assert in_dir["files"] == ours["files"] and in_dir["packages"] == ours["packages"]


def test_diff_images_and_locks(images, capsys):
    tmp, old_lock, new_lock, update_out = images
    d = _json(capsys, ["diff", str(tmp / "v1.tar"), str(tmp / "v2.tar"), "--json"])
    assert d["kind"] == "images" and d["from"].endswith("v1.tar")
    (p,) = d["platforms"]
    (changed,) = p["packages"]["changed"]
    assert changed["name"] == "app" and (changed["from"], changed["to"]) == ("1.0-1", "1.1-1")
    assert changed["archs"] == ["linux/amd64"]
    assert not p["packages"]["added"] and not p["packages"]["removed"]
    assert [f["path"] for f in p["files"]["added"]] == ["/usr/bin/app-new"]
    changed_paths = {f["path"]: f for f in p["files"]["changed"]}
    assert "sha256" in changed_paths["/usr/bin/app"]["to"]
    assert "/var/lib/dpkg/status.d/app" in changed_paths
    assert "/usr/share/data/big" not in changed_paths
    assert len(p["layers"]["from"]) == len(p["layers"]["to"]) == 1

    locks = _json(capsys, ["diff", str(old_lock), str(new_lock), "--json"])
    (lc,) = locks["packages"]["changed"]
    assert lc["name"] == "app" and lc["archs"] == ["amd64"] and lc["from"] == "1.0-1"
    assert len(lc["size"]["amd64"]) == 2
    code, text, _ = run(["diff", str(old_lock), str(new_lock)], capsys)
    assert code == 0 and "~ app 1.0-1 -> 1.1-1 (amd64;" in text
    assert text == update_out   # lock --update printed the same summary

    code, _, err = run(["diff", str(old_lock), str(tmp / "v1.tar")], capsys)
    assert code == 2 and "one of each" in err

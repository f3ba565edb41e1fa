"""Must-show (issue 14, 1): local content and layering, built from the hermetic archive.

A directory tree with an executable, a symlink and a nested directory lands byte
for byte with the spec's owners (by name) and modes; the same inputs give one
digest in two environments (other umask, TZ, checkout place and file mtimes);
changing one app file changes only the app layer; with `layering: origin`
packages sit in layers by source package, a one-package bump changes only its
layer, and the default (one package layer) keeps its digest when an app is added;
layering changes the layers, never the filesystem umoci unpacks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from aptrepo import AptRepo, File, Pkg
from hermetic import run, write_distro, write_spec
from repro import Variant, build

pytestmark = pytest.mark.integration

DATE = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def _packages(tool_version: str) -> list[Pkg]:
    return [
        Pkg("libc6", "2.36-9", source="glibc", depends="libgcc-s1",
            files={"usr/lib/x86_64-linux-gnu/libc.so.6": b"libc " * 400}),
        Pkg("libc-bin", "2.36-9", source="glibc", depends="libc6",
            files={"usr/bin/ldd": File(b"#!/bin/sh\n", 0o755)}),
        Pkg("libgcc-s1", "12.2.0-14", source="gcc-12 (12.2.0-14)", depends="libc6",
            files={"usr/lib/x86_64-linux-gnu/libgcc_s.so.1": b"gcc"}),
        Pkg("base-files", "12.4", files={"etc/os-release": b"ID=test\n"}),
        Pkg("tool", tool_version, depends="libc6, libc-bin",
            files={"usr/bin/tool": File(f"tool {tool_version}\n".encode(), 0o755)}),
    ]


ACCOUNTS = """accounts:
  groups: [{groupname: nonroot, gid: 65532}, {groupname: staff, gid: 50}]
  users: [{username: nonroot, uid: 65532, gid: 65532}]
  run-as: nonroot
"""
APP_PATHS = """paths:
  - {path: /app, type: directory, source: app, uid: nonroot, gid: staff}
  - {path: /etc/app.conf, type: file, source: app.conf, mode: "0640", gid: nonroot}
  - {path: /app/data, type: permissions, mode: "0750", recursive: true}
"""
LAYERING = "layering: {strategy: origin, budget: 4}\n"
CONFIG = """entrypoint: /app/bin/run --flag "two words"
ports: [8080, 53/udp]
volumes: [/data]
stop-signal: TERM
labels: {org.example.team: infra}
"""


LAYERED = APP_PATHS + CONFIG + LAYERING


def _app_tree(root: Path) -> None:
    (root / "app" / "bin").mkdir(parents=True)
    (root / "app" / "data" / "nested").mkdir(parents=True)
    (root / "app" / "bin" / "run").write_bytes(b"#!/bin/sh\necho run\n")
    os.chmod(root / "app" / "bin" / "run", 0o755)
    os.symlink("run", root / "app" / "bin" / "start")
    (root / "app" / "data" / "nested" / "deep.bin").write_bytes(bytes(range(256)) * 3)
    (root / "app.conf").write_bytes(b"secret=1\n")
    os.chmod(root / "app.conf", 0o600)


@pytest.fixture(scope="module")
def archive(tmp_path_factory, apt_key):
    tmp = tmp_path_factory.mktemp("app-archive")
    repo = AptRepo(tmp / "archive", {"stable": _packages("1.0"), "next": _packages("1.1")},
                   key=apt_key, date=DATE)
    repo.serve()
    yield tmp, repo
    repo.stop()


def _spec(archive, where: Path, extra: str, suite: str = "stable") -> Path:
    tmp, repo = archive
    where.mkdir(parents=True, exist_ok=True)
    distro = write_distro(where, Path(repo.key.public_path), [suite])
    return write_spec(where, f"distro: {distro}\narchs: [amd64]\n"
                      "contents:\n  packages: [base-files, tool]\n"
                      f"mirrors: {{test: {repo.url}}}\n{ACCOUNTS}{extra}")


def _build(spec: Path, capsys, cache: Path) -> Path:
    out = spec.with_suffix(".tar")
    code, _, err = run(["build", str(spec), "-o", str(out), "-q", "--cache-dir", str(cache)],
                       capsys)
    assert code == 0, err
    return out


class _Member(tarfile.TarInfo):
    """A layer member that also carries its bytes (TarInfo itself has slots only)."""

    data: bytes = b""


def _image(tar: Path) -> tuple[dict, dict, list[dict[str, _Member]]]:
    """manifest, config, and per layer: name -> member (with .data for files)."""
    with tarfile.open(tar) as outer:
        entry = json.load(outer.extractfile("manifest.json"))[0]
        index = json.load(outer.extractfile("index.json"))
        manifest = json.load(outer.extractfile(
            "blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]))
        config = json.load(outer.extractfile(entry["Config"]))
        layers = []
        for name in entry["Layers"]:
            members: dict[str, _Member] = {}
            blob = outer.extractfile(name)
            with tarfile.open(fileobj=blob, mode="r:gz", tarinfo=_Member) as layer:
                for m in layer:
                    if m.isfile():
                        m.data = layer.extractfile(m).read()
                    members[m.name] = m
            layers.append(members)
    return manifest, config, layers


def _digests(tar: Path) -> list[str]:
    return [layer["digest"] for layer in _image(tar)[0]["layers"]]


@pytest.fixture(scope="module")
def layered(archive, tmp_path_factory):
    """The app image with origin layering, built once; its spec directory and cache."""
    root = tmp_path_factory.mktemp("layered")
    _app_tree(root)
    spec = _spec(archive, root, LAYERED)
    from assembler.cli import main

    cache = root / "cache"
    assert main(["lock", str(spec), "-q", "--cache-dir", str(cache)]) == 0
    assert main(["build", str(spec), "-o", str(root / "image.tar"), "-q", "--cache-dir",
                 str(cache)]) == 0
    return root, spec, cache


def test_app_tree_lands_byte_for_byte_with_owners_and_modes(layered):
    root, _, _ = layered
    _, config, layers = _image(root / "image.tar")
    app = layers[-1]
    assert config["history"][-1]["created_by"] == "app: paths with source"
    run_ = app["app/bin/run"]
    assert run_.data == (root / "app/bin/run").read_bytes()
    assert (run_.mode, run_.uid, run_.gid) == (0o755, 65532, 50)
    start = app["app/bin/start"]
    assert start.issym() and start.linkname == "run" and (start.uid, start.gid) == (65532, 50)
    deep = app["app/data/nested/deep.bin"]
    assert deep.data == bytes(range(256)) * 3
    # recursive permissions: the directory and everything under it
    assert deep.mode == app["app/data/nested"].mode == app["app/data"].mode == 0o750
    assert app["app"].isdir() and (app["app"].uid, app["app"].gid) == (65532, 50)
    conf = app["etc/app.conf"]
    assert (conf.data, conf.mode, conf.uid, conf.gid) == (b"secret=1\n", 0o640, 0, 65532)
    # Nothing of the host: one mtime (SOURCE_DATE_EPOCH), no user names. (etc/ is a
    # parent from base-files, with its package's mtime.)
    assert {m.mtime for n, m in app.items() if n != "etc"} == {int(DATE.timestamp())}
    assert {(m.uname, m.gname) for m in app.values()} == {("", "")}
    # and only the app is in the app layer (etc/ comes along as a parent)
    assert {n for n, m in app.items() if not m.isdir()} == {
        "app/bin/run", "app/bin/start", "app/data/nested/deep.bin", "etc/app.conf"}


def test_config_from_the_spec(layered):
    root, _, _ = layered
    _, config, _ = _image(root / "image.tar")
    c = config["config"]
    assert c["Entrypoint"] == ["/app/bin/run", "--flag", "two words"]
    assert c["ExposedPorts"] == {"53/udp": {}, "8080/tcp": {}}
    assert c["Volumes"] == {"/data": {}}
    assert c["StopSignal"] == "SIGTERM" and c["User"] == "65532:65532"
    assert c["Labels"] == {"org.example.team": "infra"}


def test_packages_are_layered_by_source_foundations_first(layered):
    root, _, _ = layered
    _, config, layers = _image(root / "image.tar")
    history = [h["created_by"] for h in config["history"]]
    # 4 source packages, budget 4: a layer each, foundations (height 0: base-files, gcc-12,
    # glibc, by name) below tool, which needs glibc; then generated files, then the app.
    assert history == ["packages: base-files", "packages: libgcc-s1",
                       "packages: libc-bin, libc6", "packages: tool",
                       "generated: accounts, certificates, paths", "app: paths with source"]
    glibc = {n for n, m in layers[2].items() if not m.isdir()}
    assert glibc == {"usr/lib/x86_64-linux-gnu/libc.so.6", "usr/bin/ldd",
                     "var/lib/dpkg/status.d/libc6", "var/lib/dpkg/status.d/libc-bin",
                     "var/lib/dpkg/status.d/libc6.md5sums",
                     "var/lib/dpkg/status.d/libc-bin.md5sums"}
    assert "etc/passwd" in layers[4] and "usr/bin/tool" in layers[3]
    every = [n for layer in layers for n, m in layer.items() if not m.isdir()]
    assert len(every) == len(set(every))   # each file in exactly one layer


def test_budget_caps_package_layers(archive, tmp_path, capsys):
    # Over budget, the largest group (glibc) stands alone and the others share a layer.
    spec = _spec(archive, tmp_path, "layering: {strategy: origin, budget: 2}\n")
    _, config, layers = _image(_build(spec, capsys, tmp_path / "cache"))
    assert [h["created_by"] for h in config["history"]] == [
        "packages: libc-bin, libc6", "packages: base-files, libgcc-s1, tool",
        "generated: accounts, certificates, paths"]


def test_app_update_changes_only_the_app_layer(layered, tmp_path, capsys):
    root, spec, cache = layered
    before = _digests(root / "image.tar")
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, symlinks=True, ignore=shutil.ignore_patterns("cache", "*.tar"))
    (copy / "app" / "bin" / "run").write_bytes(b"#!/bin/sh\necho run v2\n")
    after = _digests(_build(copy / spec.name, capsys, cache))
    assert after[:-1] == before[:-1] and after[-1] != before[-1]


def test_one_package_bump_changes_only_its_layer(layered, archive, tmp_path, capsys):
    root, spec, cache = layered
    before = _digests(root / "image.tar")
    bumped = tmp_path / "bumped"
    shutil.copytree(root, bumped, symlinks=True, ignore=shutil.ignore_patterns("*.tar", "*.json",
                                                                                "cache"))
    after = _digests(_build(_spec(archive, bumped, LAYERED, "next"), capsys, cache))  # tool 1.1
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed == [3]   # "packages: tool"


def test_same_digest_in_two_environments(layered, tmp_path):
    root, spec, cache = layered
    # Another checkout: other place, other mtimes, built under another umask/TZ/locale.
    other = tmp_path / "elsewhere"
    shutil.copytree(root, other, symlinks=True, ignore=shutil.ignore_patterns("cache", "*.tar"))
    for p in other.rglob("*"):
        os.utime(p, (1e9, 1e9), follow_symlinks=False)
    a = build(spec, tmp_path / "a.tar", Variant(cache, 0o022, "UTC", "C.UTF-8", 1))
    b = build(other / spec.name, tmp_path / "b.tar",
              Variant(tmp_path / "cold", 0o077, "Asia/Kolkata", "C", 7, threads=3))
    assert a == b


def test_default_layering_keeps_the_package_layer_when_an_app_is_added(archive, tmp_path,
                                                                         capsys):
    plain = _spec(archive, tmp_path / "plain", "")
    _app_tree(tmp_path / "with-app")
    app = _spec(archive, tmp_path / "with-app",
                "paths: [{path: /app, type: directory, source: app}]\n")
    one = _digests(_build(plain, capsys, tmp_path / "cache"))
    two = _digests(_build(app, capsys, tmp_path / "cache"))
    assert len(one) == 1 and len(two) == 2 and two[0] == one[0]


def _unpacked(tar: Path, dest: Path) -> dict[str, tuple]:
    """umoci's view of the image: path -> (type, mode, owner, bytes or link)."""
    layout = dest / "layout"
    layout.mkdir(parents=True)
    subprocess.run(["tar", "-C", str(layout), "-xf", str(tar)], check=True)
    subprocess.run(["umoci", "unpack", "--image", f"{layout}", str(dest / "bundle")],
                   check=True, capture_output=True)
    root = dest / "bundle" / "rootfs"
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        what = os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else b""
        out[str(p.relative_to(root))] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                         st.st_uid, st.st_gid, what)
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="umoci unpack keeps owners only as root")
def test_layering_changes_the_layers_not_the_filesystem(layered, archive, tmp_path, capsys):
    root, _, cache = layered
    single = tmp_path / "single"
    shutil.copytree(root, single, symlinks=True, ignore=shutil.ignore_patterns("cache", "*.tar"))
    spec = _spec(archive, single, APP_PATHS + CONFIG)   # same spec, no layering
    one = _unpacked(_build(spec, capsys, cache), tmp_path / "u1")
    many = _unpacked(root / "image.tar", tmp_path / "u2")
    assert one == many and "app/data/nested/deep.bin" in one

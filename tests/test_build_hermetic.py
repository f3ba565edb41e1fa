"""Must-show: hostile packages are refused or neutralized; killed builds leave nothing broken."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aptrepo import Entry, File, Pkg
from hermetic import layer_members, run, write_distro, write_spec

pytestmark = pytest.mark.integration


def _env(tmp_path, apt_repo, apt_key, pkgs, request):
    repo = apt_repo({"stable": pkgs})
    distro = write_distro(tmp_path, apt_key.public_path, ["stable"])
    spec = write_spec(tmp_path, f"distro: {distro}\narchs: [amd64]\n"
                      f"contents:\n  packages: [{request}]\n")
    out = tmp_path / "out" / "image.tar"
    argv = ["build", str(spec), "-o", str(out), "--mirror", f"test={repo.url}",
            "--cache-dir", str(tmp_path / "cache")]
    return repo, spec, out, argv


_members = layer_members


def _outside_untouched(tmp_path: Path) -> None:
    for name in ("x", "etc/shadow-evil", "escape"):
        assert not (tmp_path.parent / name).exists()
        assert not Path("/", name).exists() or name == "x" and not Path("/x").exists()


@pytest.mark.parametrize("member, words", [
    (Entry.file("./../../escape", b"evil"), ["'..' component"]),
    (Entry.symlink("./usr/lib/evil", "../../../../etc/shadow"), ["above the image root"]),
    (Entry.hardlink("./usr/bin/evil", "./etc/../../shadow"), ["'..' component"]),
])
def test_hostile_paths_rejected(tmp_path, apt_repo, apt_key, capsys, member, words):
    pkgs = [Pkg("evil", "1.0", files={"usr/bin/ok": b"ok"}, tar_members=[member])]
    repo, spec, out, argv = _env(tmp_path, apt_repo, apt_key, pkgs, "evil")
    code, _, err = run(argv, capsys)
    assert code != 0 and "Traceback" not in err and "evil" in err
    assert any(w.lower() in err.lower() for w in words), err
    assert not out.exists() and not list(out.parent.glob(".assemble-*"))
    _outside_untouched(tmp_path)


def test_setuid_and_device_neutralized(tmp_path, apt_repo, apt_key, capsys):
    pkgs = [Pkg("evil", "1.0", files={"usr/bin/su": File(b"#!", mode=0o4755),
                                      "usr/bin/ok": b"ok",
                                      "etc/abs": Entry.symlink("", "/etc/shadow")},
                tar_members=[Entry.chardev("./dev/mem", 1, 1)])]
    repo, spec, out, argv = _env(tmp_path, apt_repo, apt_key, pkgs, "evil")
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert "setuid" in err and "dev/mem" in err  # each neutralization is reported
    members = _members(out)
    assert members["usr/bin/su"].mode & 0o7000 == 0
    assert "dev/mem" not in members
    assert members["etc/abs"].linkname == "/etc/shadow"  # absolute: resolved inside the image


def test_setuid_kept_when_spec_allows(tmp_path, apt_repo, apt_key, capsys):
    pkgs = [Pkg("evil", "1.0", files={"usr/bin/su": File(b"#!", mode=0o4755)})]
    repo, spec, out, argv = _env(tmp_path, apt_repo, apt_key, pkgs, "evil")
    spec.write_text(spec.read_text() + "  allow-setuid: true\n")
    assert run(argv, capsys)[0] == 0
    assert _members(out)["usr/bin/su"].mode & 0o4000


def test_path_conflict_between_packages_explained(tmp_path, apt_repo, apt_key, capsys):
    pkgs = [Pkg("a", "1.0", depends="b", files={"usr/bin/tool": b"a"}),
            Pkg("b", "1.0", files={"usr/bin/tool": b"b"})]
    repo, spec, out, argv = _env(tmp_path, apt_repo, apt_key, pkgs, "a")
    code, _, err = run(argv, capsys)
    assert code != 0 and "/usr/bin/tool: a installs a file there and b wants" in err, err
    assert not out.exists()


def _wait_for(pred, timeout=20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return False


def _kill_when(argv, pred, cwd) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "assembler.cli", *argv], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert _wait_for(pred), "the build never reached the point to kill it at"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(10)


def _big_pkg() -> Pkg:
    # incompressible, so both the download and the layer's gzip take a while
    return Pkg("big", "1.0", files={"usr/share/big/blob": os.urandom(24 * 1024 * 1024)},
               compression="none")


def test_kill_during_download(tmp_path, apt_repo, apt_key, capsys):
    repo, spec, out, argv = _env(tmp_path, apt_repo, apt_key, [_big_pkg()], "big")
    assert run(["lock", str(spec), *argv[4:]], capsys)[0] == 0
    repo.server.slow["/pool/"] = 0.02
    cache = tmp_path / "cache"
    _kill_when([*argv, "-q"], lambda: any(cache.rglob(".tmp-*")), tmp_path)
    blobs = [p for p in (cache / "blobs").rglob("*") if p.is_file()]
    sha = repo.deb("big").sha256
    assert not (cache / "blobs" / "sha256" / sha[:2] / sha).exists()
    assert all(".tmp-" in p.name or "inrelease" in str(p) or p.name != sha for p in blobs)
    assert not out.exists()
    repo.server.slow.clear()
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert (cache / "blobs" / "sha256" / sha[:2] / sha).exists()


def test_kill_during_layer_writing(tmp_path, apt_repo, apt_key, capsys):
    repo, spec, out, argv = _env(tmp_path, apt_repo, apt_key, [_big_pkg()], "big")
    assert run([*argv, "--compression", "none"], capsys)[0] == 0  # warm the cache
    first = out.read_bytes()
    out.unlink()
    # A new layer is written inside the cache, renamed into the blob store once complete.
    _kill_when([*argv, "-q"], lambda: any((tmp_path / "cache" / "layers").glob(".tmp-*")),
               tmp_path)
    assert not out.exists()
    code, _, err = run([*argv, "--compression", "none"], capsys)
    assert code == 0, err
    assert out.read_bytes() == first


def test_unchanged_rebuild_reuses_the_layers_and_a_damaged_blob_is_rebuilt(
        tmp_path, apt_repo, apt_key, capsys, monkeypatch):
    pkgs = [Pkg("hello", "1.0", files={"usr/bin/hello": File(b"#!/bin/sh\n", mode=0o755)})]
    repo, spec, out, argv = _env(tmp_path, apt_repo, apt_key, pkgs, "hello")
    assert run(argv, capsys)[0] == 0
    first = out.read_bytes()

    def no_make(*a, **k):
        raise AssertionError("an unchanged rebuild fetched and installed again")

    with monkeypatch.context() as m:
        m.setattr("assembler.build._make", no_make)
        out.unlink()
        assert run(argv, capsys)[0] == 0
        assert out.read_bytes() == first
    # A damaged cached layer is noticed before use and rebuilt, to the same bytes.
    records = list((tmp_path / "cache" / "layers").glob("*.json"))
    assert len(records) == 1
    import json

    digest = json.loads(records[0].read_text())["digest"].removeprefix("sha256:")
    blob = tmp_path / "cache" / "blobs" / "sha256" / digest[:2] / digest
    blob.write_bytes(blob.read_bytes()[:-1] + b"\0")
    assert run(argv, capsys)[0] == 0
    assert out.read_bytes() == first
    # A spec change that only reaches the config re-keys the recipe, reuses the layer blob.
    spec.write_text(spec.read_text() + "environment: {A: b}\n")
    assert run(argv, capsys)[0] == 0
    assert out.read_bytes() != first
    assert len(list((tmp_path / "cache" / "layers").glob("*.json"))) == 1


def test_several_specs_build_in_one_invocation(tmp_path, apt_repo, apt_key, capsys):
    pkgs = [Pkg("hello", "1.0", files={"usr/bin/hello": File(b"#!/bin/sh\n", mode=0o755)}),
            Pkg("other", "1.0", files={"usr/bin/other": b"x"})]
    repo, spec, out, argv = _env(tmp_path, apt_repo, apt_key, pkgs, "hello")
    specs = tmp_path / "specs"
    specs.mkdir()
    spec = spec.rename(specs / spec.name)
    second = specs / "second.yaml"
    second.write_text(spec.read_text().replace("[hello]", "[other]"))
    common = argv[4:]
    argv[1] = str(spec)
    code, _, err = run(["build", str(specs), "--tag", "a:1", *common], capsys)
    assert code == 2 and "--tag names one image" in err
    code, stdout, err = run(["build", str(specs), "-o", str(tmp_path / "all"), *common], capsys)
    assert code == 0, err
    built = dict(reversed(line.split("  ")) for line in stdout.splitlines())
    assert sorted(Path(p).name for p in built) == sorted([spec.stem + ".tar", "second.tar"])
    # The same bytes as one process per spec.
    for path, digest in built.items():
        name = Path(path).stem
        one = [a if a != str(spec) else str(spec.with_name(name + ".yaml")) for a in argv]
        one[one.index("-o") + 1] = str(tmp_path / f"{name}-alone.tar")
        code, alone, err = run([*one, "-q"], capsys)
        assert code == 0, err
        assert alone.strip() == digest

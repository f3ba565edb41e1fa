"""Must-show: user mistakes and odd inputs end in one paragraph and a non-zero exit.

Every case runs `assemble` in-process (an uncaught exception fails the test, so a
traceback can never pass) and checks the exit code, that the error is one line,
and, for builds, that no output file and no `.assemble-*` temp directory is left.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aptrepo import AptRepo, Pkg
from hermetic import run, write_distro, write_spec

from assembler.cli import main

BASE = "distro: debian/bookworm\ncontents:\n  packages: [python3]\n"


def _fails(argv: list[str], capsys, code: int = 2, *words: str) -> str:
    got, _, err = run(argv, capsys)
    assert got == code, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, err
    return err


def _spec(tmp_path: Path, text: str | bytes) -> Path:
    p = tmp_path / "image.yaml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def _show(tmp_path: Path, text: str | bytes, capsys, *words: str) -> str:
    p = _spec(tmp_path, text)
    return _fails(["show-packages", str(p), "--offline", "--cache-dir",
                   str(tmp_path / "c")], capsys, 2, *words)


# -- the spec ------------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("distro: !foo debian/bookworm\ncontents:\n  packages: [a]\n", ["image.yaml:1:", "!foo"]),
    ("distro: debian/bookworm\ncontents:\n  packages: [!!int abc]\n", ["image.yaml:3:"]),
    (BASE + "cmd: !!binary AAA\n", ["image.yaml:4:"]),
])
def test_yaml_tags_are_spec_errors(tmp_path, capsys, text, words):
    _show(tmp_path, text, capsys, *words)


def test_empty_spec_message_is_literal(tmp_path, capsys):
    err = _show(tmp_path, "", capsys, "empty")
    assert "{{" not in err and "contents: {packages: [...]}" in err


@pytest.mark.parametrize("extra, words", [
    ("environment: {A: ~}\n", ["image.yaml:4:", "environment"]),
    ("work-dir: null\n", ["image.yaml:4:", "work-dir"]),
])
def test_null_is_not_a_value(tmp_path, capsys, extra, words):
    _show(tmp_path, BASE + extra, capsys, *words)


@pytest.mark.parametrize("extra, words", [
    ("accounts:\n  users: [{username: a, uid: 5}, {username: a, uid: 6}]\n",
     ["image.yaml:5:", "'a'", "twice"]),
    ("accounts:\n  users:\n    - {username: a, uid: 5}\n    - {username: b, uid: 5}\n",
     ["image.yaml:7:", "uid 5", "line 6"]),
    ("accounts:\n  groups:\n    - {groupname: g, gid: 7}\n    - {groupname: h, gid: 7}\n",
     ["image.yaml:7:", "gid 7"]),
    ("accounts:\n  groups:\n    - {groupname: g, gid: 7}\n    - {groupname: g, gid: 8}\n",
     ["image.yaml:7:", "'g'"]),
    ("accounts:\n  users: [{username: a, uid: -5}]\n", ["image.yaml:5:", "uid"]),
    ("accounts:\n  users: [{username: a, uid: 4294967296}]\n", ["image.yaml:5:", "uid"]),
    ("accounts:\n  users: [{username: 'a:b', uid: 5}]\n", ["image.yaml:5:", "username"]),
    ("accounts:\n  users: [{username: a, uid: 5, gecos: \"x\\ny\"}]\n",
     ["image.yaml:5:", "gecos"]),
    ("accounts:\n  users: [{username: a, uid: 5, home: relative}]\n",
     ["image.yaml:5:", "home"]),
    ("accounts:\n  run-as: '5:'\n", ["image.yaml:5:", "run-as"]),
    ("accounts:\n  run-as: '5:bob'\n", ["image.yaml:5:", "run-as"]),
])
def test_bad_accounts(tmp_path, capsys, extra, words):
    _show(tmp_path, BASE + extra, capsys, *words)


def test_numeric_run_as_still_allowed(tmp_path):
    from assembler.spec.document import load_spec

    for who in ("1000", "1000:1000"):
        spec = load_spec(_spec(tmp_path, BASE + f"accounts:\n  run-as: '{who}'\n"))
        assert spec.accounts.run_as == who


@pytest.mark.parametrize("extra, words", [
    ("paths: [{path: /a, type: directory, mode: '-1'}]\n", ["image.yaml:4:", "mode"]),
    ("paths: [{path: /a, type: directory, mode: '777777'}]\n", ["image.yaml:4:", "mode"]),
    ("paths: [{path: /a, type: file, uid: 99999999999}]\n", ["image.yaml:4:", "uid"]),
    ("environment: {'A=B': x}\n", ["image.yaml:4:", "'A=B'"]),
    ("environment: {'': x}\n", ["image.yaml:4:", "environment"]),
    ("environment:\n  A: x\n  A: y\n", ["image.yaml:6:", "'A'", "twice"]),
    ("work-dir: relative/dir\n", ["image.yaml:4:", "absolute"]),
])
def test_bad_values(tmp_path, capsys, extra, words):
    _show(tmp_path, BASE + extra, capsys, *words)


# -- the distro definition and slice catalog ------------------------------------------

def _info(tmp_path: Path, capsys, distro_text: str | bytes, *words: str) -> str:
    d = tmp_path / "d.yaml"
    d.write_bytes(distro_text if isinstance(distro_text, bytes) else distro_text.encode())
    return _fails(["info", "x", "--distro", str(d)], capsys, 2, *words)


@pytest.mark.parametrize("text, words", [
    (b"\xff\xfe", ["d.yaml", "UTF-8"]),
    ("archives: [\n", ["d.yaml:", "YAML"]),
    ("", ["d.yaml", "mapping"]),
    ("[1]", ["d.yaml", "mapping"]),
    ("family: debian\nrelease: t\narchives: 5\n", ["d.yaml", "archives"]),
    ("family: debian\nrelease: t\narchives: [5]\n", ["d.yaml", "archive"]),
    ("family: debian\nrelease: t\narchives: [{name: a, suites: stable, keys: []}]\n",
     ["d.yaml", "suites"]),
    ("family: debian\nrelease: t\narchives: [{name: a, suites: [s], keys: k.asc}]\n",
     ["d.yaml", "keys"]),
    ("family: debian\nrelease: t\narchives: []\nslices: 5\n", ["d.yaml", "slices"]),
])
def test_bad_distro_definition(tmp_path, capsys, text, words):
    _info(tmp_path, capsys, text, *words)


def _catalog(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    sl = tmp_path / "slices"
    sl.mkdir()
    for name, text in files.items():
        p = sl / name
        if text is None:
            p.mkdir()
        else:
            p.write_bytes(text if isinstance(text, bytes) else text.encode())
    d = tmp_path / "d.yaml"
    d.write_text(f"family: debian\nrelease: t\narchives: []\nslices: {sl}\n")
    return d


@pytest.mark.parametrize("files, words", [
    ({"hello.yaml": b"\xff\xfe"}, ["hello.yaml", "UTF-8"]),
    ({"Hello.yaml": "package: Hello\n"}, ["Hello.yaml", "invalid slice definition filename"]),
    ({"hello.yaml": "package: hello\nslices:\n  bins: {}\n  bins: {}\n"},
     ["hello.yaml:4:", "hello_bins", "twice"]),
    ({"hello.yaml": "package: hello\nslices:\n  bins:\n    contents:\n"
                    "      /usr/bin/hello: {mode: -1}\n"}, ["hello.yaml:5:", "mode"]),
])
def test_bad_slice_definitions(tmp_path, capsys, files, words):
    d = _catalog(tmp_path, files)
    _fails(["find", "x", "--distro", str(d)], capsys, 2, *words)


def test_info_without_spec_or_distro_says_how(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fails(["info", "libc6"], capsys, 2, "--distro")
    _fails(["find", "libc"], capsys, 2, "--distro")


# -- command line ----------------------------------------------------------------------

@pytest.mark.parametrize("url", ["notaurl", "ftp://host/debian", "http://", "http://a b/",
                                 "http://[::1/debian", "http://host:port/debian"])
def test_malformed_mirror_is_refused_at_once(tmp_path, capsys, url):
    p = _spec(tmp_path, BASE)
    _fails(["lock", str(p), "--mirror", f"debian={url}", "--cache-dir",
            str(tmp_path / "c")], capsys, 2, "debian", repr(url))


def test_malformed_mirror_in_spec(tmp_path, capsys):
    p = _spec(tmp_path, BASE + "mirrors: {debian: notaurl}\n")
    _fails(["lock", str(p), "--cache-dir", str(tmp_path / "c")], capsys, 2,
           "image.yaml", "'notaurl'")


def test_cache_dir_that_is_a_file(tmp_path, capsys):
    p = _spec(tmp_path, BASE)
    _fails(["lock", str(p), "--cache-dir", str(p)], capsys, 2, "--cache-dir")


def test_push_missing_authfile(tmp_path, capsys):
    image = tmp_path / "image.tar"
    image.write_bytes(b"x")
    _fails(["push", str(image), "127.0.0.1:1/app:1", "--plain-http",
            "--authfile", str(tmp_path / "nope.json")], capsys, 2, "nope.json")


def test_push_ca_cert_that_is_not_pem(tmp_path, capsys):
    image = tmp_path / "image.tar"
    image.write_bytes(b"x")
    _fails(["push", str(image), "127.0.0.1:1/app:1", "--ca-cert", str(image)], capsys, 2,
           "--ca-cert")


def test_push_garbage_file_is_one_line(tmp_path, capsys):
    image = tmp_path / "image.tar"
    image.write_bytes(b"garbage\n")
    _fails(["push", str(image), "127.0.0.1:1/app:1", "--plain-http"], capsys, 2,
           "image.tar")


# -- against a served archive: the lock and the build -----------------------------------


@pytest.fixture(scope="module")
def locked(tmp_path_factory, apt_key):
    """One served archive, a spec and its lock, made once for the module."""
    tmp = tmp_path_factory.mktemp("mistakes")
    repo = AptRepo(tmp / "archive", {"stable": [
        Pkg("hello", "1.0", depends="libfoo", files={"usr/bin/hello": b"#!/bin/sh\n"}),
        Pkg("libfoo", "2.0", files={"usr/lib/foo": b"foo"})]}, key=apt_key)
    repo.serve()
    distro = write_distro(tmp, apt_key.public_path, ["stable"])
    spec = write_spec(tmp, f"distro: {distro}\narchs: [amd64]\n"
                      "contents:\n  packages: [hello]\n")
    common = ["--mirror", f"test={repo.url}", "--cache-dir", str(tmp / "cache"), "-q"]
    assert main(["lock", str(spec), *common]) == 0
    yield spec, common
    repo.stop()


@pytest.fixture
def env(locked, tmp_path, capsys):
    """The module's spec and lock, copied for one test to spoil."""
    spec, common = locked
    capsys.readouterr()
    for p in (spec, spec.with_name("image.lock.json")):
        (tmp_path / p.name).write_bytes(p.read_bytes())
    return tmp_path / spec.name, common


def _no_leftovers(directory: Path) -> None:
    assert not list(directory.glob(".assemble-*")), list(directory.iterdir())
    assert not list(directory.glob(".tmp-*")), list(directory.iterdir())


def _edit_lock(spec: Path, edit) -> None:
    path = spec.with_name(spec.stem + ".lock.json")
    lock = json.loads(path.read_text())
    edit(lock)
    path.write_text(json.dumps(lock, indent=2))


def _pkg(lock: dict) -> dict:
    return lock["archs"]["amd64"]["packages"][0]


LOCK_EDITS = {
    "packages-not-a-list": lambda lock: lock["archs"]["amd64"].__setitem__("packages", {}),
    "sha256-escapes": lambda lock: _pkg(lock).__setitem__("sha256", "../../../../etc/passwd"),
    "sha256-int": lambda lock: _pkg(lock).__setitem__("sha256", 5),
    "size-str": lambda lock: _pkg(lock).__setitem__("size", "big"),
    "name-int": lambda lock: _pkg(lock).__setitem__("name", 5),
    "version-list": lambda lock: _pkg(lock).__setitem__("version", [1]),
    "reason-missing": lambda lock: _pkg(lock).pop("reason"),
    "reason-str": lambda lock: _pkg(lock).__setitem__("reason", "requested"),
    "slices-str": lambda lock: _pkg(lock).__setitem__("slices", "bins"),
    "spec-str": lambda lock: lock.__setitem__("spec", "x"),
    "indexes-str": lambda lock: lock["archs"]["amd64"].__setitem__("indexes", "x"),
    "index-date-missing": lambda lock: lock["archs"]["amd64"]["indexes"][0].pop("date"),
    "index-date-bad": lambda lock: lock["archs"]["amd64"]["indexes"][0].__setitem__(
        "date", "yesterday"),
    "excluded-list": lambda lock: lock["archs"]["amd64"].__setitem__("excluded", ["x"]),
}


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(LOCK_EDITS))
@pytest.mark.parametrize("command", ["show-packages", "why", "build"])
def test_damaged_lock(env, capsys, tmp_path, name, command):
    spec, common = env
    _edit_lock(spec, LOCK_EDITS[name])
    out = tmp_path / "out" / "image.tar"
    argv = {"show-packages": ["show-packages", str(spec)],
            "why": ["why", "libfoo", "--spec", str(spec)],
            "build": ["build", str(spec), "-o", str(out), "--locked"]}[command]
    _fails(argv + common, capsys, 2, "image.lock.json")
    assert not out.exists()
    if out.parent.exists():
        _no_leftovers(out.parent)


@pytest.mark.integration
def test_lock_that_is_not_utf8(env, capsys):
    spec, common = env
    spec.with_name("image.lock.json").write_bytes(b"\xff\xfe{")
    _fails(["show-packages", str(spec), *common], capsys, 2, "image.lock.json")


@pytest.mark.integration
def test_lock_path_is_a_directory(env, capsys):
    spec, common = env
    lock = spec.with_name("image.lock.json")
    lock.unlink()
    lock.mkdir()
    _fails(["lock", str(spec), *common], capsys, 2, "image.lock.json")


@pytest.mark.integration
def test_lock_names_unknown_archive(env, capsys, tmp_path):
    spec, common = env
    _edit_lock(spec, lambda lock: _pkg(lock).__setitem__("archive", "nope"))
    out = tmp_path / "out" / "image.tar"
    _fails(["build", str(spec), "-o", str(out), *common], capsys, 2, "image.lock.json",
           "'nope'")
    assert not out.exists()


@pytest.mark.integration
def test_lock_names_unknown_slice(env, capsys, tmp_path):
    spec, common = env
    _edit_lock(spec, lambda lock: _pkg(lock).__setitem__("slices", ["nosuch"]))
    out = tmp_path / "out" / "image.tar"
    _fails(["build", str(spec), "-o", str(out), *common], capsys, 2, "image.lock.json",
           "hello_nosuch")
    assert not out.exists()


@pytest.mark.integration
@pytest.mark.parametrize("target", ["spec", "lock"])
def test_output_over_the_spec_or_lock_is_refused(env, capsys, target):
    spec, common = env
    victim = spec if target == "spec" else spec.with_name("image.lock.json")
    before = victim.read_bytes()
    _fails(["build", str(spec), "-o", str(victim), *common], capsys, 2, str(victim))
    assert victim.read_bytes() == before
    _no_leftovers(spec.parent)


@pytest.mark.integration
def test_output_is_an_existing_directory(env, capsys, tmp_path):
    spec, common = env
    (tmp_path / "adir").mkdir()
    _fails(["build", str(spec), "-o", str(tmp_path / "adir"), *common], capsys, 2, "adir")
    assert not any((tmp_path / "adir").iterdir())
    _no_leftovers(tmp_path)


@pytest.mark.integration
def test_output_below_a_file(env, capsys, tmp_path):
    spec, common = env
    _fails(["build", str(spec), "-o", str(spec / "x.tar"), *common], capsys, 2, "x.tar")
    _no_leftovers(tmp_path)


@pytest.mark.integration
def test_output_in_unwritable_directory(env, capsys, tmp_path):
    spec, common = env
    # /proc refuses new entries even to root.
    _fails(["build", str(spec), "-o", "/proc/assembler-test.tar", *common], capsys, 2,
           "/proc")


@pytest.mark.integration
@pytest.mark.parametrize("value", ["99999999999999", "-5"])
def test_source_date_epoch_out_of_range(env, capsys, tmp_path, monkeypatch, value):
    spec, common = env
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    out = tmp_path / "out" / "image.tar"
    _fails(["build", str(spec), "-o", str(out), *common], capsys, 2, "SOURCE_DATE_EPOCH")
    assert not out.exists()


@pytest.mark.integration
@pytest.mark.parametrize("flag, value, word", [
    ("--tag", "Bad Tag!!", "Bad Tag!!"),
    ("--digest-file", "/proc/assembler-digest", "/proc/assembler-digest"),
])
def test_bad_tag_or_digest_file_refused_before_building(env, capsys, tmp_path, monkeypatch,
                                                         flag, value, word):
    spec, common = env

    def no_build(*a, **k):
        raise AssertionError("built before checking the command line")

    # cli imports build() when the command runs, so the module attribute is what it gets.
    monkeypatch.setattr("assembler.build.build", no_build)
    _fails(["build", str(spec), "-o", str(tmp_path / "x.tar"), flag, value, *common], capsys, 2,
           word)

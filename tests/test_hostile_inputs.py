"""Must-show (issue 10, item 5): user input, auth files and registries that used to end in
a traceback now end in one paragraph and exit 2, through the CLI."""

from __future__ import annotations

import base64
import json

import pytest
from aptrepo import AptRepo, Pkg
from fakeregistry import FakeRegistry
from hermetic import run, write_distro, write_spec

pytestmark = pytest.mark.integration


def _one_paragraph(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, err


@pytest.fixture(scope="module")
def archive(tmp_path_factory, apt_key):
    tmp = tmp_path_factory.mktemp("inputs")
    repo = AptRepo(tmp / "archive", {"stable": [Pkg("base-files", "1.0",
                                                     files={"etc/issue": b"hi\n"})]},
                   key=apt_key)
    repo.serve()
    yield tmp, repo, write_distro(tmp, apt_key.public_path, ["stable"])
    repo.stop()


@pytest.fixture(scope="module")
def image(archive):
    tmp, repo, distro = archive
    spec = write_spec(tmp, f"distro: {distro}\narchs: [amd64]\n"
                      "contents:\n  packages: [base-files]\n", "built.yaml")
    from assembler.cli import main

    out = tmp / "built.tar"
    assert main(["build", str(spec), "-o", str(out), "-q", "--mirror", f"test={repo.url}",
                 "--cache-dir", str(tmp / "cache")]) == 0
    return out


def test_request_with_a_bad_epoch(tmp_path, archive, capsys):
    tmp, repo, distro = archive
    spec = write_spec(tmp_path, f"distro: {distro}\narchs: [amd64]\n"
                      "contents:\n  packages: [base-files=x:1]\n")
    code, _, err = run(["lock", str(spec), "--mirror", f"test={repo.url}", "--cache-dir",
                        str(tmp / "cache")], capsys)
    _one_paragraph(code, err, "image.yaml:4", "'x:1' is not a Debian version")


def test_lock_entry_without_suite(tmp_path, archive, capsys):
    tmp, repo, distro = archive
    spec = write_spec(tmp_path, f"distro: {distro}\narchs: [amd64]\n"
                      "contents:\n  packages: [base-files]\n")
    cache = ["--cache-dir", str(tmp / "cache")]
    assert run(["lock", str(spec), "--mirror", f"test={repo.url}", *cache], capsys)[0] == 0
    lock = tmp_path / "image.lock.json"
    data = json.loads(lock.read_text())
    del data["archs"]["amd64"]["packages"][0]["suite"]
    lock.write_text(json.dumps(data))
    code, _, err = run(["show-packages", str(spec), *cache], capsys)
    _one_paragraph(code, err, "lacks 'suite'", "lock --update")


@pytest.mark.parametrize("auth, words", [
    ({"credHelpers": {"HOST": "pass\u0000word"}}, ["not a helper name"]),
    ({"credHelpers": {"HOST": "x" * 300}}, ["not a helper name"]),
    ({"credHelpers": {"HOST": "../../bin/sh"}}, ["not a helper name"]),
    ({"auths": {"HOST": {"auth": "\u00fcser:pw"}}}, ["'auth' is not base64"]),
    ({"auths": {"HOST": {"auth": base64.b64encode(b"\xff\xfe:x").decode()}}},
     ["'auth' is not base64"]),
])
def test_bad_auth_files(tmp_path, image, capsys, auth, words):
    reg = FakeRegistry("basic")
    try:
        authfile = tmp_path / "auth.json"
        authfile.write_text(json.dumps(auth).replace("HOST", reg.host))
        code, _, err = run(["push", str(image), f"{reg.host}/x:1", "--plain-http",
                            "--authfile", str(authfile), "--cache-dir", str(tmp_path / "c")],
                           capsys)
    finally:
        reg.stop()
    _one_paragraph(code, err, *words)


@pytest.mark.parametrize("fault, words", [
    ("token-newline", ["token", "cannot have"]),
    ("token-latin1", ["token", "cannot have"]),
    ("head-loop", ["redirects in a loop"]),
    ("location-ftp", ["'ftp://127.0.0.1/upload'", "not an http(s) URL"]),
    ("location-ipv6", ["'http://[::1'", "not an http(s) URL"]),
])
def test_hostile_registry(tmp_path, image, capsys, fault, words):
    reg = FakeRegistry(fault)
    try:
        code, _, err = run(["push", str(image), f"{reg.host}/x:1", "--plain-http",
                            "--cache-dir", str(tmp_path / "c")], capsys)
    finally:
        reg.stop()
    _one_paragraph(code, err, reg.host, *words)
    # refused at once, never retried: a loop's 30 redirects are the only repeats
    assert len(reg.requests) <= 34, reg.requests

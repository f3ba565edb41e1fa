"""Issue 18, must-show 3: an apko.lock.json is imported and gives the same package set.

tests/data/apko/apko.lock.json is written in apko's lock format for the packages of
the repository served here (their real Q1 and data checksums). `assemble lock` on the
apko config beside it starts from it: the same packages, each downloaded and verified
again; a pin the repository cannot honour, or a package that is not the file apko
locked, stops the import with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apkrepo import Apk, F, resign, write_flat_repo
from aptrepo import serve_start
from hermetic import run
from test_apk_support import FIXTURES, Signer
from wolfirepo import HELLO, KEY

pytestmark = [pytest.mark.integration, pytest.mark.needs_shared]

DATA = Path(__file__).parent / "data" / "apko"


def packages() -> list[Apk]:
    """Deterministic builds: their checksums are the fixture's."""
    return [Apk("glibc", "2.40-r0", provides=["so:libc.so.6=6", "so:ld-linux-x86-64.so.2=2"],
                files={"usr/lib/libc.so.6": F(b"not really libc\n", 0o755),
                       "usr/lib/ld-linux-x86-64.so.2": F(b"not really ld.so\n", 0o755)}),
            Apk("app-data", "1.0-r0",
                files={"usr/share/app-data/app.conf": F(b"port=8080\n", 0o644)}),
            Apk("app-data", "1.1-r0",  # newer: resolution alone would take it
                files={"usr/share/app-data/app.conf": F(b"port=9090\n", 0o644)})]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("apkolock")
    signer = Signer.new(KEY)
    hello = resign((FIXTURES / "packages" / HELLO).read_bytes(), signer)
    write_flat_repo(tmp / "srv", "os", packages(), signer, external={HELLO: hello})
    (tmp / "srv" / "os" / KEY).write_bytes(signer.public_pem)
    server = serve_start(tmp / "srv")
    yield server.url.rstrip("/")
    server.stop()


def setup(tmp: Path, url: str, edit=None) -> tuple[Path, Path]:
    spec = tmp / "apko.yaml"
    spec.write_text((DATA / "apko-lock.yaml").read_text().replace("${REPO}", url))
    lock = json.loads((DATA / "apko.lock.json").read_text().replace("${REPO}", url))
    if edit:
        edit(lock)
    (tmp / "apko.lock.json").write_text(json.dumps(lock, indent=2))
    return spec, tmp / "apko.lock.json"


def apko_set() -> set[tuple[str, str, str, str]]:
    lock = json.loads((DATA / "apko.lock.json").read_text())
    return {(p["name"], p["version"], p["checksum"], p["data"]["checksum"])
            for p in lock["contents"]["packages"]}


def test_import_gives_the_same_packages(tmp_path, repo, capsys):
    import base64

    spec, lock_file = setup(tmp_path, repo)
    code, _, err = run(["lock", str(spec), "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 0, err
    assert "imported apko's lock" in err and "the same 3 packages" in err
    ours = json.loads(lock_file.read_text())  # now assembler's lock, same name
    assert ours["lockfile-version"] == 1
    got = {(p["name"], p["version"], p["checksum"],
            "sha256-" + base64.b64encode(bytes.fromhex(p["datahash"])).decode())
           for p in ours["archs"]["amd64"]["packages"]}
    assert got == apko_set()  # app-data stays at 1.0-r0 although 1.1-r0 is there
    # the imported lock is fresh for the config: a second run keeps it as it is
    code, _, err = run(["lock", str(spec), "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 0 and "unchanged" in err, err


def test_import_by_name_leaves_apkos_lock(tmp_path, repo, capsys):
    spec, lock_file = setup(tmp_path, repo)
    other = spec.rename(tmp_path / "image.yaml")
    before = lock_file.read_bytes()
    code, _, err = run(["lock", str(other), "--from-apko-lock", str(lock_file),
                        "--cache-dir", str(tmp_path / "cache"), "-q"], capsys)
    assert code == 0, err
    assert lock_file.read_bytes() == before
    names = {p["name"] for p in json.loads((tmp_path / "image.lock.json").read_text())[
        "archs"]["amd64"]["packages"]}
    assert names == {"glibc", "hello-wolfi", "app-data"}


def _pin(lock: dict, name: str) -> dict:
    return next(p for p in lock["contents"]["packages"] if p["name"] == name)


@pytest.mark.parametrize("edit, code_, words", [
    (lambda lock: _pin(lock, "app-data").update(version="0.9-r0"), 2,
     "app-data is pinned at 0.9-r0, which the repositories no longer offer"),
    (lambda lock: _pin(lock, "hello-wolfi").update(checksum="Q1" + "A" * 27 + "="), 1,
     "hello-wolfi 2.12.1-r0 for x86_64 is not the package apko locked"),
    (lambda lock: lock["contents"]["packages"].append(dict(_pin(lock, "glibc"),
                                                           name="busybox")), 2,
     "busybox 2.40-r0 is pinned but no longer needed"),
    (lambda lock: lock.update(version="v2"), 2, "apko lock version 'v2'"),
])
def test_import_refusals_write_nothing(tmp_path, repo, capsys, edit, code_, words):
    spec, lock_file = setup(tmp_path, repo, edit)
    before = lock_file.read_bytes()
    code, _, err = run(["lock", str(spec), "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == code_, err
    assert words in err and "Traceback" not in err
    assert lock_file.read_bytes() == before


def test_locked_build_does_not_import(tmp_path, repo, capsys):
    spec, lock_file = setup(tmp_path, repo)
    code, _, err = run(["build", str(spec), "--locked", "-o", str(tmp_path / "i.tar"),
                        "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 2 and "is apko's lock; run 'assemble lock'" in err

"""Must-show: signed index handling against a locally built, locally signed archive.

A good signature is accepted; a tampered InRelease, a Packages file that does
not match the signed hash, a signature by an unknown key and an expired
Valid-Until are each refused with a clear error, and nothing is cached.
"""

from __future__ import annotations

import pytest
from aptrepo import AptKey, Pkg
from hermetic import cache_files, run, write_distro, write_spec

pytestmark = pytest.mark.integration

PKGS = [
    Pkg("hello", "1.0-1", depends="libhello (>= 1.0)"),
    Pkg("libhello", "1.2-1"),
]


@pytest.fixture
def setup(tmp_path, apt_repo, apt_key):
    repo = apt_repo({"stable": PKGS, "stable-updates": [Pkg("libhello", "1.2-2")]})
    distro = write_distro(tmp_path, apt_key.public_path, ["stable", "stable-updates"])
    spec = write_spec(tmp_path, f"distro: {distro}\narchs: [amd64]\n"
                      "contents:\n  packages: [hello]\n")
    cache = tmp_path / "cache"
    argv = ["lock", str(spec), "--cache-dir", str(cache), "--mirror", f"test={repo.url}", "-q"]
    return repo, spec, cache, argv


def test_good_signature_accepted_and_cached(setup, capsys):
    repo, spec, cache, argv = setup
    code, _, err = run(argv, capsys)
    assert code == 0, err
    lock = (spec.parent / "image.lock.json").read_text()
    assert '"libhello"' in lock and '"1.2-2"' in lock  # -updates wins: highest version
    assert any(f.startswith("index/") for f in cache_files(cache))
    # by-hash was used for the index
    assert repo.server.count("/by-hash/SHA256/") >= 1


def _refused(argv, capsys, cache, *words):
    code, _, err = run(argv, capsys)
    assert code != 0
    assert "Traceback" not in err
    for w in words:
        assert w.lower() in err.lower(), err
    assert len(err.strip().splitlines()) == 1, err  # one paragraph
    assert cache_files(cache) == [], cache_files(cache)
    return err


def test_tampered_inrelease_refused(setup, capsys):
    repo, _, cache, argv = setup
    repo.tamper_inrelease("stable")
    _refused(argv, capsys, cache, "signature does not verify", "dists/stable/InRelease")


def test_packages_not_matching_signed_hash_refused(setup, capsys):
    repo, _, cache, argv = setup
    repo.replace_index("stable")
    _refused(argv, capsys, cache, "does not match the signed InRelease", "Packages")


def test_unknown_key_refused(setup, capsys, tmp_path):
    repo, _, cache, argv = setup
    other = AptKey.generate(tmp_path / "other-key")
    repo.resign("stable", other)
    err = _refused(argv, capsys, cache, "signature does not verify", "signed by key id")
    assert "signed by key id(s) none" not in err.lower()


def test_unsigned_refused(setup, capsys):
    repo, _, cache, argv = setup
    repo.remove_signature("stable")
    _refused(argv, capsys, cache, "InRelease")


def test_expired_valid_until_refused(setup, capsys):
    repo, _, cache, argv = setup
    repo.expire("stable")
    _refused(argv, capsys, cache, "expired", "Valid-Until")


def test_tampered_after_good_run_keeps_good_cache_only(setup, capsys):
    """A cache filled by a good run is not touched by a later bad one."""
    repo, _, cache, argv = setup
    assert run(argv, capsys)[0] == 0
    before = cache_files(cache)
    repo.tamper_inrelease("stable")
    code, _, err = run([*argv, "--update"], capsys)
    assert code != 0 and "signature" in err
    assert cache_files(cache) == before

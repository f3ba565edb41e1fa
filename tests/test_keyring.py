"""Keys named by URL (apko's keyring, the wolfi definition's key-urls): fetched once,
checked, kept; then never fetched again. Bad keys leave nothing in the cache."""

from __future__ import annotations

import pytest
from aptrepo import serve_start
from test_apk_support import Signer

from assembler.cache import Cache
from assembler.distro.keyring import MAX_KEY, cached_key
from assembler.errors import IntegrityError, NetworkError, SpecError
from assembler.spec.document import load_spec

pytestmark = pytest.mark.integration


@pytest.fixture
def served(tmp_path):
    (tmp_path / "srv").mkdir()
    server = serve_start(tmp_path / "srv")
    yield tmp_path / "srv", server
    server.stop()


def test_fetched_once_then_kept(tmp_path, served):
    root, server = served
    key = Signer.new("k.rsa.pub").public_pem
    (root / "k.rsa.pub").write_bytes(key)
    cache = Cache(tmp_path / "cache")
    url = server.url + "k.rsa.pub"
    path = cached_key(url, cache)
    assert path.name == "k.rsa.pub" and path.read_bytes() == key
    (root / "k.rsa.pub").write_bytes(Signer.new("k.rsa.pub").public_pem)  # the server swaps it
    assert cached_key(url, cache).read_bytes() == key  # trust on first use
    assert cached_key(url, cache, offline=True) == path
    assert sum(1 for r in server.requests if r.path.endswith("k.rsa.pub")) == 1


@pytest.mark.parametrize("content, error, words", [
    (b"<html>not found</html>", IntegrityError, "not a public key in PEM form"),
    (b"x" * (MAX_KEY + 1), IntegrityError, "too large for a public key"),
])
def test_bad_keys_are_not_cached(tmp_path, served, content, error, words):
    root, server = served
    (root / "bad.rsa.pub").write_bytes(content)
    with pytest.raises(error, match=words):
        cached_key(server.url + "bad.rsa.pub", Cache(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*.pub"))


def test_offline_and_names(tmp_path):
    with pytest.raises(NetworkError, match="--offline: the key .* was never fetched"):
        cached_key("https://example.org/k.rsa.pub", Cache(tmp_path), offline=True)
    with pytest.raises(SpecError, match="usable key file name"):
        cached_key("https://example.org/keys/", Cache(tmp_path))


def test_our_spec_takes_tags_and_key_urls(tmp_path):
    (tmp_path / "local.rsa.pub").write_bytes(Signer.new().public_pem)
    spec = tmp_path / "image.yaml"
    spec.write_text("distro: alpine/v3.21\ncontents:\n  packages: [busybox, foo@local]\n"
                    "  repositories:\n    - name: local\n      url: file:///srv/repo\n"
                    "      suites: [.]\n      components: [.]\n      tag: local\n"
                    "      keys: [local.rsa.pub, https://example.org/other.rsa.pub]\n")
    (repo,) = load_spec(spec).repositories
    assert repo.tag == "local"
    assert repo.key_urls == ["https://example.org/other.rsa.pub"]
    assert [k.name for k in repo.keys] == ["local.rsa.pub"]

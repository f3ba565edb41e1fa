"""Registry credentials from docker/podman auth files and docker-credential-* helpers."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from assembler.push.credentials import ANONYMOUS, CredentialsError, auth_files, lookup


def _auth(user: str, password: str) -> dict:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def _write(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def helper_dir(tmp_path, monkeypatch):
    """A fake docker-credential-test helper that logs its stdin and answers per server."""
    d = tmp_path / "bin"
    d.mkdir()
    script = d / "docker-credential-test"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || exit 3\n'
        f'read server; echo "$server" >> {tmp_path}/helper.log\n'
        'case "$server" in\n'
        '  reg.example) echo \'{"ServerURL":"reg.example","Username":"hu","Secret":"hs"}\';;\n'
        '  tok.example) echo \'{"ServerURL":"tok.example","Username":"<token>",'
        '"Secret":"refresh"}\';;\n'
        '  *) echo "credentials not found in native keychain"; exit 1;;\n'
        "esac\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{d}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def test_docker_config_auths_and_hub_key(tmp_path):
    cfg = _write(tmp_path / "config.json", {"auths": {
        "https://index.docker.io/v1/": _auth("hub", "p1"),
        "https://reg.example:5000": _auth("alice", "p:2"),
    }})
    hub = lookup("docker.io", "library/app", [cfg])
    assert (hub.username, hub.password) == ("hub", "p1")
    c = lookup("reg.example:5000", "team/app", [cfg])
    assert (c.username, c.password) == ("alice", "p:2")  # the password may hold a colon
    assert str(cfg) in c.source
    assert lookup("other.example", "x", [cfg]) is ANONYMOUS


def test_podman_repository_scoped_keys_longest_match(tmp_path):
    cfg = _write(tmp_path / "auth.json", {"auths": {
        "reg.example": _auth("host", "1"),
        "reg.example/team": _auth("team", "2"),
        "reg.example/team/app": _auth("app", "3"),
    }})
    assert lookup("reg.example", "team/app", [cfg]).username == "app"
    assert lookup("reg.example", "team/other", [cfg]).username == "team"
    assert lookup("reg.example", "else/x", [cfg]).username == "host"


def test_file_order_first_file_with_an_entry_wins(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_CONFIG_HOME", "DOCKER_CONFIG", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(var, raising=False)
    env_file = _write(tmp_path / "env-auth.json", {"auths": {"a.example": _auth("env", "x")}})
    podman = _write(home / ".config/containers/auth.json",
                    {"auths": {"a.example": _auth("podman", "x"),
                               "b.example": _auth("podman", "y")}})
    docker = _write(home / ".docker/config.json", {"auths": {"c.example": _auth("docker", "z")}})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(env_file))
    assert auth_files() == [env_file, podman, docker]
    assert lookup("a.example").username == "env"
    assert lookup("b.example").username == "podman"
    assert lookup("c.example").username == "docker"
    assert auth_files(str(tmp_path / "given.json")) == [tmp_path / "given.json"]


def test_credential_helpers(tmp_path, helper_dir):
    cfg = _write(tmp_path / "config.json", {
        "auths": {"reg.example": {}, "fallback.example": _auth("file", "f")},
        "credHelpers": {"reg.example": "test", "tok.example": "test",
                        "fallback.example": "test"},
    })
    c = lookup("reg.example", "app", [cfg])
    assert (c.username, c.password) == ("hu", "hs") and "docker-credential-test" in c.source
    t = lookup("tok.example", "app", [cfg])
    assert t.identity_token == "refresh" and not t.username
    # The helper has nothing for it ("credentials not found"): the auths entry is used.
    assert lookup("fallback.example", "app", [cfg]).username == "file"
    store = _write(tmp_path / "store.json", {"auths": {"reg.example": {}}, "credsStore": "test"})
    assert lookup("reg.example", "app", [store]).username == "hu"
    assert lookup("none.example", "app", [store]) is ANONYMOUS
    assert "reg.example" in (helper_dir / "helper.log").read_text().split()


def test_broken_files_and_missing_helpers_are_clear(tmp_path, monkeypatch):
    bad = tmp_path / "config.json"
    bad.write_text('{"auths": {\n  "x": }')
    with pytest.raises(CredentialsError, match=r"config.json:2: .*not valid JSON"):
        lookup("x", "y", [bad])
    cfg = _write(tmp_path / "h.json", {"credHelpers": {"x.example": "nonexistent-helper"}})
    with pytest.raises(CredentialsError, match="docker-credential-nonexistent-helper.*not "
                       "installed"):
        lookup("x.example", "y", [cfg])
    junk = _write(tmp_path / "j.json", {"auths": {"x.example": {"auth": "***"}}})
    with pytest.raises(CredentialsError, match="base64"):
        lookup("x.example", "y", [junk])

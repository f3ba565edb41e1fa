"""Registry credentials from the files users already have (docker login, podman login).

Looked up in the order containers/image (podman, skopeo, buildah) uses, then
docker's own file, so `assemble push` works after either tool's login:

1. `--authfile` (the CLI), else `REGISTRY_AUTH_FILE`;
2. `$XDG_RUNTIME_DIR/containers/auth.json`;
3. `~/.config/containers/auth.json`;
4. `$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`.

The first file with an entry for the registry wins. Inside a file a
`credHelpers` entry for the host comes first, then `auths` (podman may key
those by `host/namespace/repo`: the longest matching key wins), then the
default `credsStore`. Helpers speak docker's credential-helper protocol:
`docker-credential-NAME get` with the server on stdin, JSON on stdout.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assembler.errors import AssemblerError

# Where `docker login` with no server stores Docker Hub's entry.
DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io",
                   "registry-1.docker.io")
HELPER_TIMEOUT = 30


class CredentialsError(AssemblerError):
    """An auth file or credential helper could not be used."""

    exit_code = 2


@dataclass(frozen=True)
class Credentials:
    """A username and password, or an identity (refresh) token for the token service."""

    username: str = ""
    password: str = ""
    identity_token: str = ""
    source: str = ""  # where they came from, for error messages

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token)


ANONYMOUS = Credentials(source="no credentials")


def auth_files(authfile: str | None = None) -> list[Path]:
    """The files to consult, in order (missing ones are skipped by `lookup`)."""
    env = os.environ
    if authfile:
        return [Path(authfile)]
    files: list[Path] = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    home = Path(env.get("HOME") or Path.home())
    config_home = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    files.append(config_home / "containers" / "auth.json")
    files.append(Path(env.get("DOCKER_CONFIG") or home / ".docker") / "config.json")
    return files


def _normalize(key: str) -> str:
    """An auths key as host[/path]: scheme and docker's `/v1/` suffix removed."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme):]
            for suffix in ("/v1/", "/v1", "/v2/", "/v2"):
                if key.endswith(suffix):
                    key = key[: -len(suffix)]
            break
    return key.rstrip("/")


def _candidates(registry: str, repository: str) -> list[str]:
    """Keys that may hold `registry`'s credentials, most specific first."""
    out = []
    parts = repository.split("/")
    for i in range(len(parts), 0, -1):
        out.append(registry + "/" + "/".join(parts[:i]))
    out.append(registry)
    if registry in DOCKER_HUB_KEYS:
        out += [_normalize(k) for k in DOCKER_HUB_KEYS]
    return out


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise CredentialsError(f"cannot read the registry auth file {path}: {e}.") from None
    except json.JSONDecodeError as e:
        raise CredentialsError(f"{path}:{e.lineno}: the registry auth file is not valid JSON "
                               f"({e.msg}).") from None
    if not isinstance(data, dict):
        raise CredentialsError(f"{path}: the registry auth file is not a JSON object.")
    return data


def _from_auths_entry(entry: Any, where: str) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    if entry.get("identitytoken"):
        return Credentials(identity_token=str(entry["identitytoken"]), source=where)
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode()
        except (ValueError, UnicodeDecodeError):  # binascii.Error, or not ASCII at all
            raise CredentialsError(f"{where}: 'auth' is not base64 of user:password.") from None
        user, sep, password = decoded.partition(":")
        if not sep:
            raise CredentialsError(f"{where}: 'auth' does not decode to user:password.")
        return Credentials(user, password, source=where)
    if entry.get("username") or entry.get("password"):
        return Credentials(str(entry.get("username", "")), str(entry.get("password", "")),
                           source=where)
    return None  # docker writes `{}` placeholders when a credsStore holds the secret


# docker's helper names (osxkeychain, ecr-login, gcloud, pass): one file name on PATH,
# never a path, so an auth file cannot make us run ./anything or ../anything.
_HELPER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,200}")


def helper_get(helper: str, server: str) -> Credentials | None:
    """Ask `docker-credential-<helper>` for `server`; None if it has nothing for it."""
    if not _HELPER_NAME.fullmatch(helper):
        raise CredentialsError(f"the credential helper name {helper[:80]!r} configured for "
                               f"{server} is not a helper name (letters, digits, '.', '_', "
                               "'+', '-'; at most 201 characters).")
    program = f"docker-credential-{helper}"
    try:
        r = subprocess.run([program, "get"], input=server, capture_output=True, text=True,
                           timeout=HELPER_TIMEOUT)
    except FileNotFoundError:
        raise CredentialsError(f"the credential helper {program} is configured for {server} "
                               "but is not installed (not on PATH).") from None
    except OSError as e:
        raise CredentialsError(f"the credential helper {program} configured for {server} "
                               f"cannot be run: {e.strerror}.") from None
    except subprocess.TimeoutExpired:
        raise CredentialsError(f"the credential helper {program} did not answer for {server} "
                               f"within {HELPER_TIMEOUT} s.") from None
    if r.returncode != 0:
        # The protocol's way to say "nothing stored" (docker treats it as anonymous).
        if "credentials not found" in (r.stdout + r.stderr).lower():
            return None
        raise CredentialsError(f"the credential helper {program} failed for {server}: "
                               f"{(r.stderr or r.stdout).strip() or f'exit {r.returncode}'}.")
    try:
        data = json.loads(r.stdout)
        user, secret = str(data.get("Username", "")), str(data.get("Secret", ""))
    except (json.JSONDecodeError, AttributeError):
        raise CredentialsError(f"the credential helper {program} answered for {server} with "
                               "something that is not its JSON protocol.") from None
    source = f"credential helper {program}"
    if user == "<token>":  # the protocol's marker for an identity token
        return Credentials(identity_token=secret, source=source)
    return Credentials(user, secret, source=source)


def _helper_servers(registry: str) -> list[str]:
    if registry in DOCKER_HUB_KEYS:
        return ["https://index.docker.io/v1/"]
    # Helpers store what `docker login HOST` gave them: with or without scheme.
    return [registry, "https://" + registry]


def _from_helper(helper: str, registry: str) -> Credentials | None:
    for server in _helper_servers(registry):
        found = helper_get(helper, server)
        if found is not None:
            return found
    return None


def lookup(registry: str, repository: str = "", files: Sequence[Path] | None = None
           ) -> Credentials:
    """Credentials for pushing to `registry`/`repository`, or ANONYMOUS."""
    keys = _candidates(registry, repository)
    for path in files if files is not None else auth_files():
        data = _load(path)
        if data is None:
            continue
        helpers = data.get("credHelpers") or {}
        if isinstance(helpers, dict):
            for key in keys:
                if key in helpers:
                    found = _from_helper(str(helpers[key]), registry)
                    if found is not None:
                        return found
        auths = data.get("auths") or {}
        if isinstance(auths, dict):
            normalized = {_normalize(k): v for k, v in auths.items()}
            for key in keys:
                if key in normalized:
                    found = _from_auths_entry(normalized[key], f"{path} (auths {key})")
                    if found is not None:
                        return found
        if data.get("credsStore"):
            found = _from_helper(str(data["credsStore"]), registry)
            if found is not None:
                return found
    return ANONYMOUS

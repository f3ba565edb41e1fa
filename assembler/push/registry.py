"""Pushing an image layout to a registry over the OCI distribution API.

Order is what keeps a registry consistent when a push dies half way: every
blob is in the repository before any manifest names it, every platform
manifest is stored (by digest, untagged) before the index names it, and only
then does the top document go up under each tag. A tag therefore only ever
points at a complete image; an interrupted push leaves at most unreferenced
blobs, which the next push finds and skips.

Per blob: HEAD (already there: nothing to send), else a cross-repository
mount from a repository on the same registry known to hold it, else an
upload: monolithic (POST + PUT) up to the chunk size, chunked (POST, PATCH
per chunk, PUT) above it. An upload that fails is started over after a
backoff (a registry restarted mid-upload may have lost the session);
manifests are PUT as the exact bytes that were built, and the registry's
`Docker-Content-Digest` must echo our digest.

Auth follows the registry's challenge: Basic with the user's credentials,
or Bearer with a token from the realm the challenge names (docker's token
protocol: GET with basic auth, or POST with an identity token).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests

from assembler import transport
from assembler.cache import atomic_write
from assembler.errors import AssemblerError, IntegrityError, SpecError
from assembler.image.layout import Descriptor, Layout, open_layout
from assembler.image.oci import parse_tag
from assembler.image.store import MAX_DOCUMENT
from assembler.push.credentials import Credentials, auth_files, lookup
from assembler.push.referrers import attach
from assembler.sbom.files import Attachment

DEFAULT_CHUNK = 16 << 20
TIMEOUT = (10, 120)
# https://github.com/opencontainers/distribution-spec: repository path components and tags.
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER = 60.0


class RegistryError(AssemblerError):
    """The registry refused or failed a request (after retries where retrying makes sense)."""


class AuthenticationError(RegistryError):
    """Missing or wrong credentials, or no permission: the user has to act."""

    exit_code = 2


class ProtocolError(RegistryError):
    """The registry answered outside the protocol: a token that cannot be an HTTP header,
    a redirect loop, a Location that is not an http(s) URL. Retrying cannot help."""

    exit_code = 2


# RFC 6750's b64token, which every registry's token (a JWT or an opaque string) is.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def _location(base: str, location: str, registry: str, what: str) -> str:
    """An upload Location made absolute; refused unless it is an http(s) URL."""
    try:
        url = urljoin(base + "/", location)
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        url, parts = "", None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProtocolError(f"{registry}: {what} answered with the upload Location "
                            f"{location[:200]!r}, which is not an http(s) URL; the registry "
                            "is broken or hostile, so the push stops here.")
    return url


def _unsendable(registry: str, method: str, url: str, e: Exception) -> ProtocolError:
    """A request requests could not complete for a reason retrying cannot cure."""
    if isinstance(e, requests.TooManyRedirects):
        return ProtocolError(f"{registry}: {method} {url[:200]} redirects in a loop (more "
                             "than 30 redirects); the registry is misconfigured.")
    # a redirect to ftp://, a header value the registry made unsendable, ...
    return ProtocolError(f"{registry}: {method} {url[:200]} cannot be sent: {_reason(e)}.")


class _Retryable(Exception):
    """A transient failure: connection lost, 5xx, 429."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class Reference:
    """Where to push: `registry` as the user wrote it (docker.io for Docker Hub)."""

    registry: str
    repository: str
    tag: str

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"

    @property
    def api_host(self) -> str:
        return "registry-1.docker.io" if self.registry == "docker.io" else self.registry


def parse_reference(ref: str) -> Reference:
    """`[registry/]repository[:tag]`, normalized as docker does (docker.io, library/)."""
    tag = parse_tag(ref)
    registry, _, repository = tag.repository.partition("/")
    bad = [c for c in repository.split("/") if not _COMPONENT.fullmatch(c)]
    if bad or not _TAG.fullmatch(tag.tag):
        what = f"path component {bad[0]!r}" if bad else f"tag {tag.tag!r}"
        raise SpecError(f"Invalid image reference {ref!r}: its {what} is not allowed "
                        "(lower-case letters, digits and . _ - separators; tags up to 128 "
                        "characters of letters, digits, _ . -).")
    return Reference(registry, repository, tag.tag)


@dataclass
class PushOptions:
    plain_http: bool = False
    ca_cert: str | None = None
    authfile: str | None = None
    chunk_size: int = DEFAULT_CHUNK
    # Where to remember which repositories hold which blobs, for mounts (None: don't).
    hints_path: Path | None = None


@dataclass
class PushStats:
    """What a push did per blob: the test suite and the summary line count these."""

    existing: int = 0
    mounted: int = 0
    uploaded: int = 0
    uploaded_bytes: int = 0
    manifests: int = 0


@dataclass
class PushResult:
    digest: str
    refs: list[Reference]
    stats: PushStats = field(default_factory=PushStats)


# --------------------------------------------------------------------------- auth


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


class _Auth:
    """The credentials and tokens for one registry host."""

    def __init__(self, ref: Reference, authfile: str | None, session: requests.Session,
                 verify: str | bool) -> None:
        self.registry = ref.registry
        self.verify = verify
        self.authfile = authfile
        self.session = session
        self.scheme = ""  # "", "basic" or "bearer", from the registry's challenge
        self.params: dict[str, str] = {}
        self.tokens: dict[tuple[str, ...], str] = {}
        self._creds: dict[str, Credentials] = {}

    def credentials(self, repository: str) -> Credentials:
        if repository not in self._creds:
            self._creds[repository] = lookup(
                self.registry, repository,
                auth_files(self.authfile))
        return self._creds[repository]

    def challenge(self, header: str) -> None:
        self.scheme, self.params = _parse_challenge(header)

    def header(self, repository: str, scopes: tuple[str, ...], fresh: bool = False
               ) -> dict[str, str]:
        if self.scheme == "basic":
            creds = self.credentials(repository)
            if creds.anonymous:
                raise self._missing(repository)
            if creds.identity_token:
                raise AuthenticationError(
                    f"{self.registry} asks for a password, but {creds.source} holds only an "
                    "identity token; log in again with a username and password.")
            pair = f"{creds.username}:{creds.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        if self.scheme == "bearer":
            if fresh or scopes not in self.tokens:
                self.tokens[scopes] = self._token(repository, scopes)
            token = self.tokens[scopes]
            return {"Authorization": f"Bearer {token}"} if token else {}
        return {}

    def _missing(self, repository: str) -> AuthenticationError:
        files = ", ".join(str(p) for p in auth_files(self.authfile))
        return AuthenticationError(
            f"{self.registry} requires credentials to push to {repository}, and none were "
            f"found (looked in {files}). Log in with 'docker login {self.registry}' or "
            f"'podman login {self.registry}', or pass --authfile FILE.")

    def _token(self, repository: str, scopes: tuple[str, ...]) -> str:
        realm = self.params.get("realm")
        if not realm:
            raise RegistryError(f"{self.registry} asked for a bearer token but named no realm.")
        creds = self.credentials(repository)
        query: list[tuple[str, str]] = []
        if self.params.get("service"):
            query.append(("service", self.params["service"]))
        query += [("scope", s) for s in scopes]
        try:
            if creds.identity_token:
                form = dict(query)
                form.update(grant_type="refresh_token", refresh_token=creds.identity_token,
                            client_id="assembler", scope=" ".join(scopes))
                r = self.session.post(realm, data=form, timeout=TIMEOUT, verify=self.verify)
            else:
                auth = None if creds.anonymous else (creds.username, creds.password)
                r = self.session.get(realm + ("&" if "?" in realm else "?") + urlencode(query),
                                     auth=auth, timeout=TIMEOUT, verify=self.verify)
        except requests.RequestException as e:
            raise RegistryError(f"could not get a token for {self.registry} from {realm}: "
                                f"{_reason(e)}.") from None
        if r.status_code in (401, 403):
            if creds.anonymous:
                raise self._missing(repository)
            raise AuthenticationError(
                f"{self.registry} rejected the credentials for {repository} "
                f"(user {creds.username or '<identity token>'}, from {creds.source}): the token "
                f"service answered HTTP {r.status_code}. Check the password or log in again.")
        if r.status_code != 200:
            raise RegistryError(f"the token service {realm} of {self.registry} answered HTTP "
                                f"{r.status_code}.")
        try:
            body = r.json()
            token = str(body.get("token") or body.get("access_token") or "")
        except (ValueError, AttributeError):
            raise RegistryError(f"the token service {realm} of {self.registry} did not answer "
                                "with JSON.") from None
        if token and not _TOKEN.fullmatch(token):
            raise ProtocolError(f"the token service {realm} of {self.registry} answered with a "
                                "token holding characters a bearer token cannot have (a "
                                "newline, a space or non-ASCII); refusing to send it.")
        return token


# --------------------------------------------------------------------------- client


def _reason(e: BaseException) -> str:
    text = str(e)
    # requests nests urllib3's long repr; the innermost reason is what a user needs.
    m = re.search(r"(Connection refused|Name or service not known|timed out|"
                  r"Temporary failure in name resolution|Connection reset by peer|"
                  r"RemoteDisconnected[^)]*|certificate verify failed[^)]*)", text)
    return m.group(1) if m else (e.__class__.__name__ + (f": {text}" if text else ""))


def _error_text(r: requests.Response) -> str:
    try:
        errors = r.json().get("errors") or []
        parts = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors]
        if parts:
            return "; ".join(parts)
    except (ValueError, AttributeError):
        pass
    return (r.text or "").strip()[:200] or r.reason or ""


class Client:
    """One registry host: requests with auth, retries and plain-language errors."""

    def __init__(self, ref: Reference, options: PushOptions) -> None:
        self.registry = ref.registry
        self.scheme = "http" if options.plain_http else "https"
        self.base = f"{self.scheme}://{ref.api_host}"
        self.options = options
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "assembler/0.1"
        # Passed on every call: a session-level value loses to REQUESTS_CA_BUNDLE (requests#3829).
        self.verify: str | bool = options.ca_cert or True
        self.auth = _Auth(ref, options.authfile, self.session, self.verify)
        self._pinged = False

    def close(self) -> None:
        self.session.close()

    def _tls_error(self, e: Exception) -> RegistryError:
        return RegistryError(f"TLS to {self.registry} failed ({_reason(e)}). For a registry "
                             "with a private CA pass --ca-cert FILE; for a plain-HTTP registry, "
                             "--plain-http.")

    # -- one request -----------------------------------------------------------------
    def _send(self, method: str, url: str, repository: str, scopes: tuple[str, ...],
              headers: dict[str, str] | None = None, data: bytes | None = None,
              ) -> requests.Response:
        """One request, answering at most one auth challenge. Transient faults raise _Retryable."""
        for attempt in range(2):
            h = dict(headers or {})
            if urlsplit(url).netloc == urlsplit(self.base).netloc:
                h.update(self.auth.header(repository, scopes, fresh=attempt > 0))
            try:
                r = self.session.request(method, url, headers=h, data=data, timeout=TIMEOUT,
                                         allow_redirects=method in ("GET", "HEAD"),
                                         verify=self.verify)
            except requests.exceptions.SSLError as e:
                raise self._tls_error(e) from None
            except (requests.ConnectionError, requests.Timeout) as e:
                raise _Retryable(_reason(e)) from None
            except (requests.RequestException, ValueError) as e:
                raise _unsendable(self.registry, method, url, e) from None
            if r.status_code == 401 and attempt == 0 and r.headers.get("WWW-Authenticate"):
                before = self.auth.scheme
                self.auth.challenge(r.headers["WWW-Authenticate"])
                if before == "basic" and self.auth.scheme == "basic":
                    break  # our basic credentials were refused: asking again will not help
                continue
            break
        if r.status_code in _RETRY_STATUS:
            after = r.headers.get("Retry-After", "")
            raise _Retryable(f"HTTP {r.status_code} {_error_text(r)}".strip(),
                             min(float(after), MAX_RETRY_AFTER) if after.isdigit() else None)
        if r.status_code == 401:
            creds = self.auth.credentials(repository)
            if creds.anonymous:
                raise self.auth._missing(repository)
            raise AuthenticationError(
                f"{self.registry} rejected the credentials for {repository} (user "
                f"{creds.username or '<identity token>'}, from {creds.source}): "
                f"{_error_text(r) or 'HTTP 401'}. Check the password or log in again.")
        if r.status_code == 403:
            raise AuthenticationError(f"{self.registry} denied {method} on {repository}: "
                                      f"{_error_text(r) or 'HTTP 403'}. The account may lack "
                                      "push rights to this repository.")
        return r

    def retrying(self, what: str, attempt: Callable[[], Any]) -> Any:
        """Run `attempt` again after transient failures, with exponential backoff."""
        delay = transport.BACKOFF
        last = ""
        for i in range(transport.RETRIES + 1):
            try:
                return attempt()
            except _Retryable as e:
                last = e.reason
                wait = e.retry_after if e.retry_after is not None else delay
            if i < transport.RETRIES:
                time.sleep(wait)
                delay *= 2
        hint = ""
        if "refused" in last.lower() and self.scheme == "https":
            hint = " If it is a plain-HTTP registry, add --plain-http."
        raise RegistryError(f"{what} on {self.registry} failed after {transport.RETRIES + 1} "
                            f"attempts ({last}).{hint}")

    def url(self, repository: str, tail: str) -> str:
        return f"{self.base}/v2/{repository}/{tail}"

    @staticmethod
    def scopes(repository: str, *pull_from: str) -> tuple[str, ...]:
        return (f"repository:{repository}:pull,push",
                *(f"repository:{r}:pull" for r in pull_from))

    # -- the API ---------------------------------------------------------------------
    def ping(self) -> None:
        """GET /v2/: the registry is there and speaks the API; learn its auth scheme."""
        if self._pinged:
            return

        def attempt() -> None:
            try:
                r = self.session.get(self.base + "/v2/", timeout=TIMEOUT, verify=self.verify)
            except requests.exceptions.SSLError as e:
                raise self._tls_error(e) from None
            except (requests.ConnectionError, requests.Timeout) as e:
                raise _Retryable(_reason(e)) from None
            except (requests.RequestException, ValueError) as e:
                raise _unsendable(self.registry, "GET", self.base + "/v2/", e) from None
            if r.status_code in _RETRY_STATUS:
                raise _Retryable(f"HTTP {r.status_code}")
            if r.status_code == 401 and r.headers.get("WWW-Authenticate"):
                self.auth.challenge(r.headers["WWW-Authenticate"])
            elif r.status_code != 200:
                raise RegistryError(f"{self.base}/v2/ answered HTTP {r.status_code}: "
                                    f"{self.registry} does not look like an OCI registry.")

        self.retrying(f"contacting {self.base}/v2/", attempt)
        self._pinged = True

    def blob_exists(self, repository: str, digest: str) -> bool:
        def attempt() -> bool:
            r = self._send("HEAD", self.url(repository, f"blobs/{digest}"), repository,
                           self.scopes(repository))
            if r.status_code == 200:
                return True
            if r.status_code == 404:
                return False
            raise RegistryError(f"{self.registry}: checking blob {digest} in {repository} "
                                f"gave HTTP {r.status_code}.")

        return bool(self.retrying(f"checking blob {digest} in {repository}", attempt))

    def mount(self, repository: str, digest: str, source: str) -> bool:
        """Ask the registry to link `digest` from `source`; False if it would not."""
        def attempt() -> bool:
            url = self.url(repository, "blobs/uploads/?" + urlencode(
                {"mount": digest, "from": source}))
            r = self._send("POST", url, repository, self.scopes(repository, source),
                           headers={"Content-Length": "0"})
            if r.status_code == 201:
                return True
            if r.status_code == 202:
                # An upload session instead of a mount: leave it, a fresh upload follows.
                self._cancel(repository, r)
                return False
            raise RegistryError(f"{self.registry}: mounting {digest} from {source} into "
                                f"{repository} gave HTTP {r.status_code}: {_error_text(r)}")

        try:
            return bool(self.retrying(f"mounting {digest} into {repository}", attempt))
        except AuthenticationError:
            return False  # no pull right on the source: uploading still works

    def _cancel(self, repository: str, r: requests.Response) -> None:
        location = r.headers.get("Location")
        if location:
            # An abandoned session expires on the registry by itself, so failing is fine.
            with contextlib.suppress(RegistryError, _Retryable):
                self._send("DELETE", _location(self.base, location, self.registry,
                                               "an upload"), repository,
                           self.scopes(repository))

    def upload(self, repository: str, desc: Descriptor, layout: Layout,
               progress: Callable[[int], None] | None = None) -> int:
        """Upload one blob (monolithic or chunked); returns the bytes sent."""
        def attempt() -> int:
            if self.blob_exists(repository, desc.digest):
                return 0  # an earlier attempt completed although its answer was lost
            return self._upload_once(repository, desc, layout, progress)

        return int(self.retrying(f"uploading {desc.digest} to {repository}", attempt))

    def _start(self, repository: str) -> tuple[str, int]:
        r = self._send("POST", self.url(repository, "blobs/uploads/"), repository,
                       self.scopes(repository), headers={"Content-Length": "0"})
        if r.status_code != 202 or not r.headers.get("Location"):
            raise RegistryError(f"{self.registry}: starting an upload to {repository} gave "
                                f"HTTP {r.status_code}: {_error_text(r)}")
        min_chunk = r.headers.get("OCI-Chunk-Min-Length", "0")
        location = _location(self.base, r.headers["Location"], self.registry,
                             f"starting an upload to {repository}")
        return location, int(min_chunk) if min_chunk.isdigit() else 0

    @staticmethod
    def _with_digest(location: str, digest: str) -> str:
        return location + ("&" if "?" in location else "?") + urlencode({"digest": digest})

    def _upload_once(self, repository: str, desc: Descriptor, layout: Layout,
                     progress: Callable[[int], None] | None) -> int:
        location, min_chunk = self._start(repository)
        chunk = max(self.options.chunk_size, min_chunk)
        h = hashlib.sha256()
        sent = 0
        octets = {"Content-Type": "application/octet-stream"}
        with layout.open_blob(desc) as f:
            if desc.size <= chunk:
                data = f.read(desc.size + 1)
                h.update(data)
                self._check(desc, h, len(data))
                r = self._send("PUT", self._with_digest(location, desc.digest), repository,
                               self.scopes(repository), headers=octets, data=data)
                sent = len(data)
                if progress:
                    progress(sent)
            else:
                while True:
                    data = f.read(chunk)
                    if not data:
                        break
                    h.update(data)
                    headers = dict(octets, **{"Content-Range": f"{sent}-{sent + len(data) - 1}"})
                    r = self._send("PATCH", location, repository, self.scopes(repository),
                                   headers=headers, data=data)
                    if r.status_code != 202:
                        raise _Retryable(f"chunk at byte {sent} answered HTTP {r.status_code} "
                                         f"{_error_text(r)}")
                    location = _location(self.base, r.headers.get("Location", location),
                                         self.registry, f"a chunk of {desc.digest}")
                    sent += len(data)
                    if progress:
                        progress(len(data))
                self._check(desc, h, sent)
                r = self._send("PUT", self._with_digest(location, desc.digest), repository,
                               self.scopes(repository), headers={"Content-Length": "0"})
        if r.status_code != 201:
            raise RegistryError(f"{self.registry}: uploading {desc.digest} to {repository} "
                                f"gave HTTP {r.status_code}: {_error_text(r)}")
        return sent

    @staticmethod
    def _check(desc: Descriptor, h: Any, size: int) -> None:
        digest = "sha256:" + h.hexdigest()
        if digest != desc.digest or size != desc.size:
            raise IntegrityError(f"blob {desc.digest} in the image reads as {size} bytes with "
                                 f"digest {digest}; the image file is damaged, rebuild it.")

    def get_manifest(self, repository: str, reference: str, accept: str) -> bytes | None:
        """The manifest's bytes, or None when the registry has none by that reference."""
        def attempt() -> bytes | None:
            r = self._send("GET", self.url(repository, f"manifests/{reference}"), repository,
                           self.scopes(repository), headers={"Accept": accept})
            if r.status_code == 404:
                return None
            if r.status_code != 200 or len(r.content) > MAX_DOCUMENT:
                raise RegistryError(f"{self.registry}: reading manifest {repository}:"
                                    f"{reference} gave HTTP {r.status_code}: {_error_text(r)}")
            return r.content

        return self.retrying(f"reading manifest {reference} of {repository}", attempt)

    def put_manifest(self, repository: str, reference: str, desc: Descriptor,
                     data: bytes) -> str:
        """PUT the manifest; returns the OCI-Subject the registry answered ("" for none:
        a registry without the referrers API)."""
        def attempt() -> str:
            r = self._send("PUT", self.url(repository, f"manifests/{reference}"), repository,
                           self.scopes(repository),
                           headers={"Content-Type": desc.media_type}, data=data)
            if r.status_code not in (200, 201):
                raise RegistryError(f"{self.registry} refused the manifest {desc.digest} for "
                                    f"{repository}:{reference} (HTTP {r.status_code}: "
                                    f"{_error_text(r)}).")
            echoed = r.headers.get("Docker-Content-Digest")
            if echoed and echoed != desc.digest:
                raise IntegrityError(f"{self.registry} stored the manifest for {repository}:"
                                     f"{reference} as {echoed}, not {desc.digest}: it changed "
                                     "the bytes.")
            return r.headers.get("OCI-Subject", "")

        return str(self.retrying(f"storing manifest {reference} in {repository}", attempt))


# --------------------------------------------------------------------------- mount hints


class MountHints:
    """Which repositories of a registry were seen holding a blob (docker keeps the same).

    Only a hint: a stale entry costs one refused mount, then an upload.
    """

    KEEP = 4

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, dict[str, list[str]]] = {}
        if path is not None:
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    self.data = loaded
            except (OSError, ValueError):
                pass  # no or unreadable hints: just no mounts from earlier runs

    def sources(self, registry: str, digest: str, exclude: str) -> list[str]:
        repos = self.data.get(registry, {}).get(digest, [])
        return [r for r in repos if r != exclude]

    def add(self, registry: str, digest: str, repository: str) -> None:
        repos = self.data.setdefault(registry, {}).setdefault(digest, [])
        if repository in repos:
            repos.remove(repository)
        repos.insert(0, repository)
        del repos[self.KEEP:]

    def save(self) -> None:
        if self.path is not None:
            # Hints are an optimization: a read-only cache must not fail a push.
            with contextlib.suppress(OSError):
                atomic_write(self.path, json.dumps(self.data, sort_keys=True).encode())


# --------------------------------------------------------------------------- push


def _unique(items: Iterable[Descriptor]) -> list[Descriptor]:
    seen: dict[str, Descriptor] = {}
    for d in items:
        seen.setdefault(d.digest, d)
    return list(seen.values())


def push(image: Path | str, refs: list[str], options: PushOptions,
         log: Callable[[str], None] = lambda _: None,
         progress: Callable[[str], None] = lambda _: None,
         attachments: Sequence[Attachment] = ()) -> PushResult:
    """Push the image layout at `image` to every reference; returns its digest.
    `attachments` (SBOMs) go up after the image, as OCI referrers of their manifests."""
    if not refs:
        raise SpecError("push needs at least one destination, e.g. registry.example/app:1.0.")
    parsed = [parse_reference(r) for r in refs]
    with open_layout(image) as layout:
        top = layout.top()
        # Read (and so verify) every document before the first byte goes out.
        documents = [(desc, layout.document(desc)[0], blobs) for desc, blobs in
                     layout.walk(top)]
        top = documents[-1][0]  # with its media type filled in
        blobs = _unique(b for _, _, bs in documents for b in bs)
        hints = MountHints(options.hints_path)
        result = PushResult(top.digest, parsed)
        by_registry: dict[str, list[Reference]] = {}
        for ref in parsed:
            by_registry.setdefault(ref.registry, []).append(ref)
        for registry, reg_refs in by_registry.items():
            client = Client(reg_refs[0], options)
            try:
                client.ping()
                repos: dict[str, list[str]] = {}
                for ref in reg_refs:
                    repos.setdefault(ref.repository, []).append(ref.tag)
                for repository, tags in repos.items():
                    _push_repository(client, layout, repository, tags, documents, blobs,
                                     hints, result.stats, log, progress)
                    log(f"pushed {registry}/{repository}:{','.join(tags)} ({top.digest})")
                    if attachments:
                        subjects = {d.digest: d for d, _, _ in documents}
                        for line in attach(client, repository, attachments, subjects,
                                           result.stats):
                            log(line)
            finally:
                client.close()
                hints.save()
    return result


def _push_repository(client: Client, layout: Layout, repository: str, tags: list[str],
                     documents: list[tuple[Descriptor, bytes, list[Descriptor]]],
                     blobs: list[Descriptor], hints: MountHints, stats: PushStats,
                     log: Callable[[str], None], progress: Callable[[str], None]) -> None:
    registry = client.registry
    for i, blob in enumerate(blobs):
        where = f"{registry}/{repository}"
        progress(f"{where}: blob {i + 1}/{len(blobs)} {blob.digest[7:19]}")
        if client.blob_exists(repository, blob.digest):
            stats.existing += 1
        elif any(client.mount(repository, blob.digest, source)
                 for source in hints.sources(registry, blob.digest, repository)):
            stats.mounted += 1
        else:
            sent = 0

            def tick(n: int, blob: Descriptor = blob, where: str = where) -> None:
                nonlocal sent
                sent += n
                progress(f"{where}: {blob.digest[7:19]} {sent * 100 // max(blob.size, 1)}%")

            stats.uploaded_bytes += client.upload(repository, blob, layout, tick)
            stats.uploaded += 1
        hints.add(registry, blob.digest, repository)
    top = documents[-1]
    for desc, data, _ in documents[:-1]:
        client.put_manifest(repository, desc.digest, desc, data)
        stats.manifests += 1
    for tag in tags:
        client.put_manifest(repository, tag, top[0], top[1])
        stats.manifests += 1

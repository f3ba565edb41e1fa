"""HTTP with retries and backoff, and hard bounds; every fault ends as one paragraph.

Every body is read piece by piece with its bound enforced while reading: a
file a signed index sizes is refused at the first byte past that size, any
other file (InRelease, APKINDEX) past a default cap; a transfer slower than a
minimum rate over a window, or longer than an overall deadline, is cut off.
So a hostile or broken mirror costs at most the bound in memory or disk and
the deadline in time (docs/security.md lists the limits and their variables).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import urllib3

from assembler.cache import atomic_writer
from assembler.errors import AssemblerError, IntegrityError, NetworkError
from assembler.untrusted import env_limit

_CHUNK = 1 << 16
_CARRY = 256   # bytes kept across pieces, so an end marker split between two is found
_CONNECT_TIMEOUT = 10

_session: requests.Session | None = None


@dataclass(frozen=True)
class Limits:
    """How long and how much one download may take; each one has its variable."""

    retries: int = 4              # ASSEMBLER_RETRIES
    backoff: float = 0.5          # ASSEMBLER_BACKOFF, seconds, doubled per retry
    deadline: float = 1800.0      # ASSEMBLER_DOWNLOAD_DEADLINE, seconds per attempt
    min_rate: float = 1024.0      # ASSEMBLER_MIN_RATE, bytes per second ...
    rate_window: float = 30.0     # ASSEMBLER_RATE_WINDOW ... over this many seconds
    max_unsized: int = 64 << 20   # ASSEMBLER_MAX_UNSIZED_DOWNLOAD, bytes

    @classmethod
    def from_env(cls) -> Limits:
        d = cls()
        return cls(
            retries=int(env_limit("ASSEMBLER_RETRIES", d.retries)),
            backoff=env_limit("ASSEMBLER_BACKOFF", d.backoff),
            deadline=env_limit("ASSEMBLER_DOWNLOAD_DEADLINE", d.deadline, 1),
            min_rate=env_limit("ASSEMBLER_MIN_RATE", d.min_rate),
            rate_window=env_limit("ASSEMBLER_RATE_WINDOW", d.rate_window, 1),
            max_unsized=int(env_limit("ASSEMBLER_MAX_UNSIZED_DOWNLOAD", d.max_unsized, 1)),
        )


def __getattr__(name: str) -> Any:
    # push/registry.py retries with these; they follow the environment like Limits
    if name == "RETRIES":
        return Limits.from_env().retries
    if name == "BACKOFF":
        return Limits.from_env().backoff
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def session() -> requests.Session:
    global _session
    if _session is None:
        s = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=16)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        s.headers["User-Agent"] = "assembler/0.1"
        # Bytes on the wire are the bytes hashed and counted: no transfer encoding.
        s.headers["Accept-Encoding"] = "identity"
        _session = s
    return _session


class NotFound(NetworkError):
    """The server answered 404/410: retrying will not help."""


class TooSlow(requests.RequestException):
    """The transfer missed the minimum rate or the deadline (retried like any network fault)."""


def _with_retries(url: str, attempt: Callable[[], bytes | None], limits: Limits) -> bytes | None:
    delay = limits.backoff
    last: Exception | None = None
    for i in range(limits.retries + 1):
        try:
            return attempt()
        except AssemblerError:
            raise   # not found, too big, wrong hash, disk full: retrying cannot help
        except (requests.RequestException, OSError) as e:
            last = e
        if i < limits.retries:
            time.sleep(delay)
            delay *= 2
    reason = last.__class__.__name__ + (f": {last}" if str(last) else "")
    raise NetworkError(
        f"could not download {url} after {limits.retries + 1} attempts ({reason}). "
        "Check the mirror URL and your network, then run again."
    )


def _check(url: str, r: requests.Response) -> None:
    if r.status_code in (404, 410):
        raise NotFound(f"{url} does not exist on the server (HTTP {r.status_code}).")
    r.raise_for_status()
    encoding = r.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise IntegrityError(f"{url}: the server sent Content-Encoding {encoding!r} although "
                             "asked for the bytes as they are; refusing the body.")


def _too_big(url: str, limit: int, sized: bool) -> IntegrityError:
    if sized:
        return IntegrityError(f"{url}: the server sent more than the {limit} bytes its signed "
                              "index gives, so it does not match the signed InRelease or "
                              "index; the download was stopped and discarded.")
    return IntegrityError(f"{url}: larger than {limit} bytes, the limit for a file no signed "
                          "index gives a size (raise ASSEMBLER_MAX_UNSIZED_DOWNLOAD if it is "
                          "genuine); the download was stopped and discarded.")


class _Pacer:
    """Cuts a transfer off at the deadline, or when a whole window is below the rate."""

    def __init__(self, url: str, limits: Limits) -> None:
        self.url = url
        self.limits = limits
        self.start = self.window_start = time.monotonic()
        self.window_bytes = 0

    def tick(self, n: int) -> None:
        now = time.monotonic()
        lim = self.limits
        if now - self.start > lim.deadline:
            raise TooSlow(f"not done after the {lim.deadline:g} s deadline "
                          "(ASSEMBLER_DOWNLOAD_DEADLINE)")
        self.window_bytes += n
        span = now - self.window_start
        if span >= lim.rate_window:
            if self.window_bytes < lim.min_rate * span:
                raise TooSlow(f"{self.window_bytes} bytes in {span:.0f} s, below the minimum "
                              f"of {lim.min_rate:g} bytes/s (ASSEMBLER_MIN_RATE)")
            self.window_start, self.window_bytes = now, 0


def _pieces(url: str, limit: int, sized: bool, limits: Limits,
            end: Callable[[bytes], int | None] | None = None) -> Iterator[bytes]:
    """The body of `url` in pieces, never reading past `limit` (+1 byte, to prove it)."""
    pacer = _Pacer(url, limits)
    if url.startswith("file://"):
        if not Path(url[7:]).is_file():
            raise NotFound(f"{url} does not exist.")
        src = open(url[7:], "rb")  # noqa: SIM115
        read: Callable[[int], bytes] = src.read
        close: Callable[[], None] = src.close
    else:
        # The read timeout is the rate window: a silent server is cut off as soon as
        # a slow one would be.
        r = session().get(url, stream=True, timeout=(_CONNECT_TIMEOUT, limits.rate_window))
        _check(url, r)
        length = r.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            r.close()
            raise _too_big(url, limit, sized)
        raw = r.raw
        read = getattr(raw, "read1", raw.read)   # returns what has arrived, not all of n
        close = r.close
    got = 0
    carry = b""
    ended = False
    try:
        while True:
            chunk = read(min(_CHUNK, limit - got + 1))
            if not chunk:
                return
            got += len(chunk)
            if end is not None:
                window = carry + chunk
                stop = end(window)
                if stop is not None:
                    limit, end, ended = min(limit, got - len(window) + stop), None, True
                carry = window[-_CARRY:]
            if got > limit:
                if ended:
                    raise IntegrityError(f"{url}: the body goes on past where the file ends; "
                                         "the download was stopped and discarded.")
                raise _too_big(url, limit, sized)
            pacer.tick(len(chunk))
            yield chunk
    except urllib3.exceptions.HTTPError as e:
        # a body cut short, a read timeout: the same network fault requests would report
        raise requests.ConnectionError(f"{e.__class__.__name__}: {e}") from None
    finally:
        close()


def fetch(url: str, size: int | None = None,
          end: Callable[[bytes], int | None] | None = None) -> bytes:
    """GET `url` into memory (indexes and small files): at most `size` bytes when a
    signed index gives it, else the unsized cap. `end(window)`, given the latest
    bytes read, may return where the body must end counted from the window's start:
    a byte past that is refused (nothing more is read)."""
    limits = Limits.from_env()
    limit = size if size is not None else limits.max_unsized

    def attempt() -> bytes:
        return b"".join(_pieces(url, limit, size is not None, limits, end))

    data = _with_retries(url, attempt, limits)
    assert data is not None
    return data


def download(url: str, dest: Path, sha256: str, size: int | None = None,
             progress: Callable[[int], None] | None = None) -> None:
    """Stream `url` to `dest` atomically; the file appears only if its sha256 matches.
    Never more than `size` bytes (the signed size) reach the disk."""
    limits = Limits.from_env()
    limit = size if size is not None else limits.max_unsized

    def attempt() -> None:
        h = hashlib.sha256()
        got = 0
        with atomic_writer(dest) as f:
            for chunk in _pieces(url, limit, size is not None, limits):
                f.write(chunk)
                h.update(chunk)
                got += len(chunk)
                if progress:
                    progress(len(chunk))
            if h.hexdigest() != sha256:
                raise IntegrityError(
                    f"{url}: downloaded {got} bytes with sha256 {h.hexdigest()}, but the signed "
                    f"index says {sha256}" + (f" ({size} bytes)" if size else "")
                    + "; the file was discarded."
                )
        return None

    _with_retries(url, attempt, limits)

"""HTTP with retries and backoff; every fault ends as one plain NetworkError."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import requests

from assembler.cache import atomic_writer
from assembler.errors import IntegrityError, NetworkError

RETRIES = int(os.environ.get("ASSEMBLER_RETRIES", "4"))
BACKOFF = float(os.environ.get("ASSEMBLER_BACKOFF", "0.5"))
TIMEOUT = (10, 60)

_session: requests.Session | None = None


def session() -> requests.Session:
    global _session
    if _session is None:
        s = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=16)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        s.headers["User-Agent"] = "assembler/0.1"
        _session = s
    return _session


class NotFound(NetworkError):
    """The server answered 404/410: retrying will not help."""


def _with_retries(url: str, attempt: Callable[[], bytes | None]) -> bytes | None:
    delay = BACKOFF
    last: Exception | None = None
    for i in range(RETRIES + 1):
        try:
            return attempt()
        except NotFound:
            raise
        except (requests.RequestException, OSError) as e:
            last = e
        if i < RETRIES:
            time.sleep(delay)
            delay *= 2
    reason = last.__class__.__name__ + (f": {last}" if str(last) else "")
    raise NetworkError(
        f"could not download {url} after {RETRIES + 1} attempts ({reason}). "
        "Check the mirror URL and your network, then run again."
    )


def _check(url: str, r: requests.Response) -> None:
    if r.status_code in (404, 410):
        raise NotFound(f"{url} does not exist on the server (HTTP {r.status_code}).")
    r.raise_for_status()


def fetch(url: str) -> bytes:
    """GET `url` into memory (indexes and small files)."""
    if url.startswith("file://"):
        try:
            return Path(url[7:]).read_bytes()
        except FileNotFoundError as e:
            raise NotFound(f"{url} does not exist.") from e

    def attempt() -> bytes:
        r = session().get(url, timeout=TIMEOUT)
        _check(url, r)
        return r.content

    data = _with_retries(url, attempt)
    assert data is not None
    return data


def download(url: str, dest: Path, sha256: str, size: int | None = None,
             progress: Callable[[int], None] | None = None) -> None:
    """Stream `url` to `dest` atomically; the file appears only if its sha256 matches."""

    def attempt() -> None:
        h = hashlib.sha256()
        got = 0
        with atomic_writer(dest) as f:
            if url.startswith("file://"):
                if not Path(url[7:]).is_file():
                    raise NotFound(f"{url} does not exist.")
                src = open(url[7:], "rb")  # noqa: SIM115
                chunks = iter(lambda: src.read(1 << 20), b"")
            else:
                r = session().get(url, stream=True, timeout=TIMEOUT)
                _check(url, r)
                chunks = r.iter_content(1 << 20)
            for chunk in chunks:
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

    _with_retries(url, attempt)

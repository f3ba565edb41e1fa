"""Signing keys named by URL: apko's `keyring` entries and a definition's `key-urls`.

A key is fetched the first time a URL is met, checked to be an RSA public key,
and kept in the cache under the URL; from then on that copy is used and the
URL is never fetched again (trust on first use, like a pinned package: a
server that later swaps the key cannot swap it here). The key keeps its file
name, because apk signatures name the key they were made with
(`.SIGN.RSA.<name>`). To trust a rotated key, delete the cached copy
(`<cache>/keyring/`) or give the key as a local file.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import urlsplit

from assembler.cache import Cache, atomic_write
from assembler.errors import IntegrityError, NetworkError, SpecError

MAX_KEY = 64 << 10  # an RSA-8192 PEM is under 2 KiB
_NAME = re.compile(r"[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*")


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://", "file://"))


def key_name(url: str) -> str:
    """The file name a key URL gives its key, or a SpecError if it gives none usable."""
    name = urlsplit(url).path.rpartition("/")[2]
    if not _NAME.fullmatch(name):
        raise SpecError(f"keyring URL {url} does not end in a usable key file name (such "
                        "as .../wolfi-signing.rsa.pub); apk matches signatures to keys by it.")
    return name


def cached_key(url: str, cache: Cache, offline: bool = False) -> Path:
    """The local copy of the key at `url`: the cached one, else fetched, checked, kept."""
    name = key_name(url)
    path = cache.derived_path("keyring", hashlib.sha256(url.encode()).hexdigest()) / name
    if path.is_file():
        return path
    if offline:
        raise NetworkError(f"--offline: the key {url} was never fetched; run once online.")
    # Imported here: a build from a lock never fetches a key, and these cost 0.1 s to load.
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from assembler.transport import fetch
    data = fetch(url)  # bounded by the transport's cap for unsized downloads
    if len(data) > MAX_KEY:
        raise IntegrityError(f"{url} is larger than {MAX_KEY} bytes, too large for a public "
                             "key; nothing was cached.")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise IntegrityError(f"{url} is not a public key in PEM form ({e}); nothing was "
                             "cached.") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise IntegrityError(f"{url} is not an RSA public key (apk signs with RSA); "
                             "nothing was cached.")
    atomic_write(path, data)
    return path

"""Values read from an index or a lock, checked against their grammar before any use.

An index is signed by whoever runs the repository, and a third-party
repository is not trusted with more than the packages it offers: a signature
proves who wrote a value, not that it is sane. So a hash is 64 lowercase hex
digits before it names a cache file, a size is a plain integer, and a file
name is a relative archive path of ordinary characters before it is put in a
URL, or it is refused.
"""

from __future__ import annotations

import os
import re

from assembler.errors import MalformedError, SpecError

_SHA256 = re.compile(r"[0-9a-f]{64}")
_SIZE = re.compile(r"[0-9]{1,18}")      # far above any file; keeps int() trivially cheap
_PATH_PART = re.compile(r"[A-Za-z0-9._+~=-]+")
MAX_PATH = 1024
# Decompressed bytes of one index (Packages, APKINDEX); real ones are under 64 MB.
MAX_INDEX_SIZE = ("ASSEMBLER_MAX_INDEX_SIZE", 256 << 20)


def env_limit(name: str, default: float, minimum: float = 0) -> float:
    """A limit's value: `default`, unless the environment variable `name` sets one."""
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        value = minimum - 1
    if not value >= minimum or value == float("inf"):
        raise SpecError(f"{name}={text!r} is not a number of at least {minimum:g}.")
    return value


def index_size_limit() -> int:
    return int(env_limit(*MAX_INDEX_SIZE, 1))


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def sha256_hex(value: str, what: str) -> str:
    """`value` if it is a sha256 as an index writes it, else MalformedError."""
    if not is_sha256(value):
        raise MalformedError(f"{what}: {_show(value)} is not a sha256 (64 lowercase hex "
                             "digits); refusing the index.")
    return value


def byte_count(value: str, what: str) -> int:
    """A size field: decimal digits only (Python's int() would also take '1_0' or ' 1')."""
    if not isinstance(value, str) or not _SIZE.fullmatch(value):
        raise MalformedError(f"{what}: {_show(value)} is not a size in bytes; refusing the "
                             "index.")
    return int(value)


def archive_path_problem(value: object) -> str | None:
    """Why `value` is not a relative archive path (pool/main/h/hello/hello_1.0_amd64.deb)."""
    if not isinstance(value, str) or not value:
        return "it is empty"
    if len(value) > MAX_PATH:
        return f"it is longer than {MAX_PATH} characters"
    if value.startswith("/"):
        return "it is absolute"
    for part in value.split("/"):
        if part in ("", ".", ".."):
            return f"it has a {part or 'empty'!r} component"
        if not _PATH_PART.fullmatch(part):
            return "it has characters other than letters, digits and ._+~=-"
    return None


def archive_path(value: str, what: str) -> str:
    problem = archive_path_problem(value)
    if problem:
        raise MalformedError(f"{what}: file name {_show(value)} is not a relative archive "
                             f"path ({problem}); refusing the index.")
    return value


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

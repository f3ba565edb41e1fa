"""The deflate implementation whose bytes the image digests promise.

A gzip layer's digest is a function of the deflate implementation as much as of the
tar: zlib, zlib-ng, ISA-L and libdeflate each choose other matches for the same input.
Python's own `zlib` module links whatever libz the host has (Fedora 40 and later ship
zlib-ng's compat libz, whose output differs from zlib's), so the layers are deflated by
one pinned zlib-ng, bundled in its wheel, instead. Its output was checked to be the same
on every x86-64 code path (AVX-512, AVX2, SSE4.2, the SSE2 baseline) and on arm64
(tests/test_deflate_determinism.py); ISA-L, three times faster again, was not: its
level 3 gives other bytes on AVX-512, AVX2 and SSE4.2 machines (docs/decisions.md).

Decompression stays with the standard library: inflating is defined by the format.
"""

from __future__ import annotations

from zlib_ng import zlib_ng

# In every content key that covers deflated bytes: a different zlib-ng may choose
# other matches, so nothing it made may answer for this one.
IDENTITY = f"zlib-ng {zlib_ng.ZLIBNG_VERSION}"


def deflate_block(data: bytes, dictionary: bytes, level: int) -> bytes:
    """Raw deflate of `data` primed with `dictionary`, ending on a sync flush: a block
    that can be concatenated after any other such block."""
    c = zlib_ng.compressobj(level, zlib_ng.DEFLATED, -15, 9, zlib_ng.Z_DEFAULT_STRATEGY,
                            zdict=dictionary) if dictionary else \
        zlib_ng.compressobj(level, zlib_ng.DEFLATED, -15, 9, zlib_ng.Z_DEFAULT_STRATEGY)
    return c.compress(data) + c.flush(zlib_ng.Z_SYNC_FLUSH)


def crc32(data: bytes, value: int = 0) -> int:
    """gzip's CRC-32 (the same number from any implementation; zlib-ng's is faster)."""
    return zlib_ng.crc32(data, value)

"""Deflates stdin as a gzip layer's blocks are deflated and prints what it ran on and the
digest: `python deflatedigest.py LEVEL BLOCK < data`.

Run by tests/test_deflate_determinism.py under other CPUs (qemu-user), also by a foreign
architecture's bare Debian python3.11: so the standard library and
assembler.image.deflate (which needs only zlib_ng) are all it imports.
"""

from __future__ import annotations

import hashlib
import platform
import sys

from zlib_ng import zlib_ng

from assembler.image.deflate import deflate_block

# Each block is primed with the 32 KiB before it, deflate's whole window (as
# ParallelGzipWriter does; the test checks this stream against the writer's).
WINDOW = 32 * 1024
# An empty final block ends the stream, as the writer ends it.
END = b"\x03\x00"


def stream(data: bytes, level: int, block: int) -> bytes:
    """The raw deflate stream of a gzip layer holding `data`, without its gzip header and
    trailer."""
    out = [deflate_block(data[off:off + block], data[max(0, off - WINDOW):off], level)
           for off in range(0, len(data), block)]
    return b"".join(out) + END


def main() -> None:
    level, block = int(sys.argv[1]), int(sys.argv[2])
    digest = hashlib.sha256(stream(sys.stdin.buffer.read(), level, block)).hexdigest()
    print(platform.machine(), zlib_ng.ZLIBNG_VERSION, zlib_ng.__file__, digest)


if __name__ == "__main__":
    main()

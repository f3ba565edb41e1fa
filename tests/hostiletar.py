"""Hostile package content for tests: tars that Python's tarfile would take at face value.

- `member(name, ...)`: a TarInfo with root names and the given size and PAX records;
- `tar(members)`: tar bytes (PAX format unless told otherwise);
- `zst_stream(prefix, fill, size)`: zstd of `prefix` then `size` bytes of `fill`, made in
  chunks, so a test can ship a real 1.5 GB header in a few hundred KB without holding it;
- `deb(data, control=...)`: the bytes of a .deb around given (already compressed) tars;
- `run_bounded(argv)`: `assemble` in a child under an address-space and file-size cap,
  returning its exit code, stderr and peak RSS (from wait4, that child alone).
"""

from __future__ import annotations

import io
import lzma
import os
import subprocess
import sys
import tarfile

import zstandard
from aptrepo import ar_archive, format_control

BLOCK = 512


def member(name: str, size: int = 0, type_: bytes = tarfile.REGTYPE,
           pax: dict[str, str] | None = None, **kw: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mode, info.mtime = size, type_, 0o644, 0
    info.uname = info.gname = "root"
    for k, v in kw.items():
        setattr(info, k, v)
    if pax:
        info.pax_headers = dict(pax)
    return info


def tar(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.PAX_FORMAT,
        end: bool = True) -> bytes:
    """The tar of `members`; without `end`, no end-of-archive blocks (more may follow)."""
    buf = io.BytesIO()
    tf = tarfile.open(fileobj=buf, mode="w", format=fmt)  # noqa: SIM115 - closed below
    for info, data in members:
        tf.addfile(info, io.BytesIO(data) if data else None)
    if end:
        tf.close()
    return buf.getvalue()


def header(name: str, size: int, type_: bytes) -> bytes:
    """One ustar header block declaring `size` bytes of type `type_` (data not included)."""
    info = member(name, size, type_)
    return info.tobuf(tarfile.USTAR_FORMAT) if size < 8 ** 11 else \
        info.tobuf(tarfile.GNU_FORMAT)[-BLOCK:]


def zst_stream(prefix: bytes, fill: bytes, size: int, suffix: bytes = b"") -> bytes:
    """zstd(prefix + fill * (size // len(fill)) + suffix), compressed chunk by chunk."""
    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False) as w:
        w.write(prefix)
        chunk = fill * ((1 << 20) // len(fill))
        left = size
        while left > 0:
            piece = chunk[:left]
            w.write(piece)
            left -= len(piece)
        w.write(suffix)
    return out.getvalue()


def control_tar(name: str = "evil", installed_kib: int = 4,
                extra: list[tuple[tarfile.TarInfo, bytes]] = ()) -> bytes:
    control = format_control({"Package": name, "Version": "1.0", "Architecture": "amd64",
                              "Maintainer": "Tests <t@example.invalid>",
                              "Installed-Size": str(installed_kib),
                              "Description": "hostile"}).encode()
    return lzma.compress(tar([(member("./control", len(control)), control), *extra]))


def deb(data: bytes, data_ext: str = ".xz", control: bytes | None = None,
        control_ext: str = ".xz") -> bytes:
    return ar_archive([("debian-binary", b"2.0\n"),
                       ("control.tar" + control_ext, control or control_tar()),
                       ("data.tar" + data_ext, data)])


# Runs in a small intermediate process: the kernel charges a child the peak RSS of the
# process it was forked from (pytest, 100+ MB) until it execs, so the build is forked
# from this launcher instead and measured with wait4.
_LAUNCHER = """
import os, resource, subprocess, sys
report, cap_as, cap_fsize = (int(a) for a in sys.argv[1:4])
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (cap_as, cap_as))
    resource.setrlimit(resource.RLIMIT_FSIZE, (cap_fsize, cap_fsize))
p = subprocess.Popen([sys.executable, "-m", "assembler.cli", *sys.argv[4:]],
                     stdout=subprocess.DEVNULL, preexec_fn=cap)
_, status, usage = os.wait4(p.pid, 0)
os.write(report, str(usage.ru_maxrss * 1024).encode())
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def run_bounded(argv: list[str], env: dict[str, str] | None = None, timeout: float = 120,
                address_space: int = 2 << 30, file_size: int = 1 << 20
                ) -> tuple[int, str, int]:
    """(exit code, stderr, peak RSS in bytes) of `assemble argv` in a capped child.

    The caps make a regression fail the test instead of the machine: a bomb that
    gets past the limits hits MemoryError or EFBIG (a traceback, exit 1), never swap.
    """
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(write_end), str(address_space),
             str(file_size), *argv],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout,
            env={**os.environ, **(env or {})}, pass_fds=(write_end,))
        os.close(write_end)
        write_end = -1
        rss = int(os.read(read_end, 64) or b"0")
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    return proc.returncode, proc.stderr.decode("utf-8", "replace"), rss

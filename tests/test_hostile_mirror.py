"""A mirror that misbehaves on purpose: endless bodies, a drip, a stall (issue 10, item 3).

Every download is bounded while it is read: a file a signed index sizes never
reads (or writes) more than one byte past that size, an InRelease no more than
one piece past its signature's end, and a transfer below the minimum rate or
past its deadline is cut off within the documented time.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
import tracemalloc

import pytest
import urllib3
from aptrepo import Pkg
from hermetic import cache_files, run, write_distro, write_spec

from assembler.transport import _CHUNK

pytestmark = pytest.mark.integration

GiB = 1 << 30
JUNK = b"\0" * (1 << 16)


def endless(real: bytes, headers: dict[str, str] | None = None):
    """The real file followed by 2 GiB of junk, sent as fast as the client takes it."""
    return headers or {}, itertools.chain([real], itertools.repeat(JUNK, 2 * GiB // len(JUNK)))


def drip(every: float):
    def body(real: bytes):
        def pieces():
            for i in range(len(real)):
                yield real[i:i + 1]
                time.sleep(every)
        return {"Content-Length": str(len(real))}, pieces()
    return body


@pytest.fixture
def mirror(tmp_path, apt_repo, apt_key, monkeypatch):
    repo = apt_repo({"stable": [Pkg("hello", "1.0-1",
                                    files={"usr/bin/hello": b"#!/bin/sh\n" * 4000})]})
    distro = write_distro(tmp_path, apt_key.public_path, ["stable"])
    spec = write_spec(tmp_path, f"distro: {distro}\narchs: [amd64]\n"
                      "contents:\n  packages: [hello]\n")
    cache = tmp_path / "cache"
    monkeypatch.setenv("ASSEMBLER_RETRIES", "0")
    read = [0]
    real_read1 = urllib3.response.HTTPResponse.read1

    def counting_read1(self, *a, **kw):   # what our client actually took off the wire
        data = real_read1(self, *a, **kw)
        read[0] += len(data)
        return data

    monkeypatch.setattr(urllib3.response.HTTPResponse, "read1", counting_read1)

    def argv(command: str) -> list[str]:
        extra = ["-o", str(tmp_path / "image.tar")] if command == "build" else []
        return [command, str(spec), "--cache-dir", str(cache), "--mirror",
                f"test={repo.url}", "-q", *extra]

    return repo, argv, cache, read


def _fails(argv, capsys, code, *words):
    got, _, err = run(argv, capsys)
    assert got == code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w.lower() in err.lower(), err
    return err


def test_endless_inrelease_stops_at_its_signature(mirror, capsys):
    repo, argv, cache, read = mirror
    size = len(repo.inrelease("stable"))
    repo.server.bodies["/dists/stable/InRelease"] = endless
    tracemalloc.start()
    try:
        _fails(argv("lock"), capsys, 1, "InRelease", "past where the file ends")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert read[0] <= size + _CHUNK, read[0]          # not 2 GiB
    assert peak < 16 << 20, peak
    assert cache_files(cache) == []


def test_inrelease_with_a_huge_content_length_is_not_read(mirror, capsys):
    repo, argv, cache, read = mirror
    repo.server.bodies["/dists/stable/InRelease"] = lambda real: endless(
        real, {"Content-Length": str(2 * GiB)})
    _fails(argv("lock"), capsys, 1, "InRelease", "larger than", "ASSEMBLER_MAX_UNSIZED_DOWNLOAD")
    assert read[0] == 0


def test_packages_index_never_read_past_its_signed_size(mirror, capsys):
    repo, argv, cache, read = mirror
    signed = (repo.root / repo.index_path("stable")).with_suffix(".xz").stat().st_size
    repo.server.bodies["/binary-amd64/"] = endless    # by-hash and plain paths alike
    _fails(argv("lock"), capsys, 1, "Packages.xz", f"more than the {signed} bytes")
    assert read[0] - len(repo.inrelease("stable")) <= signed + 1, read[0]
    assert cache_files(cache) == []


def test_deb_body_past_its_signed_size_never_reaches_the_disk(mirror, capsys):
    repo, argv, cache, read = mirror
    assert run(argv("lock"), capsys)[0] == 0
    deb = repo.deb("hello")
    repo.server.bodies[deb.filename] = endless
    before = read[0]
    tracemalloc.start()
    try:
        _fails(argv("build"), capsys, 1, deb.filename, f"more than the {deb.size} bytes")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert read[0] - before <= deb.size + 1
    assert peak < 16 << 20, peak
    # nothing of it cached, not even a temp file
    assert not [f for f in cache_files(cache) if f.startswith("blobs/") and deb.sha256 in f]
    assert not [f for f in cache_files(cache) if ".tmp-" in f]


def test_drip_feeding_mirror_fails_within_the_rate_window(mirror, capsys, monkeypatch):
    repo, argv, cache, _ = mirror
    assert run(argv("lock"), capsys)[0] == 0
    monkeypatch.setenv("ASSEMBLER_RATE_WINDOW", "2")
    monkeypatch.setenv("ASSEMBLER_RETRIES", "1")
    monkeypatch.setenv("ASSEMBLER_BACKOFF", "0")
    repo.server.bodies[repo.deb("hello").filename] = drip(1.0)   # 1 byte per second
    start = time.monotonic()
    _fails(argv("build"), capsys, 1, "after 2 attempts", "ASSEMBLER_MIN_RATE")
    # (retries + 1) x window, plus a second of slack for the process itself
    assert time.monotonic() - start < 2 * 2 + 3


def test_a_transfer_past_its_deadline_is_cut_off(mirror, capsys, monkeypatch):
    repo, argv, cache, _ = mirror
    assert run(argv("lock"), capsys)[0] == 0
    monkeypatch.setenv("ASSEMBLER_MIN_RATE", "0")
    monkeypatch.setenv("ASSEMBLER_DOWNLOAD_DEADLINE", "2")
    repo.server.bodies[repo.deb("hello").filename] = drip(0.2)
    start = time.monotonic()
    _fails(argv("build"), capsys, 1, "deadline", "ASSEMBLER_DOWNLOAD_DEADLINE")
    assert time.monotonic() - start < 2 + 3


def test_a_bad_limit_variable_is_one_paragraph(mirror, capsys, monkeypatch):
    _, argv, _, _ = mirror
    monkeypatch.setenv("ASSEMBLER_DOWNLOAD_DEADLINE", "soon")
    _fails(argv("lock"), capsys, 2, "ASSEMBLER_DOWNLOAD_DEADLINE")


# Linux keeps a process's peak RSS across exec, and a child forked from this big test
# process starts with its peak: so a small launcher forks the real child and reports it.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "assembler.cli", *sys.argv[1:]])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"\\nMAXRSS {usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _rss_run(argv: list[str]) -> tuple[int, str, int]:
    """Run `assemble argv` in a child; its exit code, stderr and peak RSS in bytes."""
    r = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], capture_output=True,
                       text=True, timeout=120)
    err, _, rss = r.stderr.rstrip().rpartition("\nMAXRSS ")
    return r.returncode, err, int(rss) * 1024


def test_endless_bodies_cost_no_memory_in_a_real_process(mirror, capsys):
    repo, argv, cache, _ = mirror
    assert run(argv("lock"), capsys)[0] == 0
    deb = repo.deb("hello")
    repo.server.bodies[deb.filename] = endless
    repo.server.bodies["/dists/stable/InRelease"] = endless
    for command, words in (("lock", "past where the file ends"),
                           ("build", f"more than the {deb.size} bytes")):
        code, err, rss = _rss_run([*argv(command), "--update"] if command == "lock"
                                  else argv(command))
        assert code == 1 and words in err and "Traceback" not in err, err
        assert rss < 100 << 20, rss
    assert repo.server.sent.get("/dists/stable/InRelease", 0) < 64 << 20   # not 2 GiB
    assert not [f for f in cache_files(cache) if ".tmp-" in f or deb.sha256 in f]

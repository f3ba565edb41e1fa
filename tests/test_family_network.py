"""Must-show (issue 13): the whole distroless family on bookworm and trixie.

Every spec in specs/bookworm and specs/trixie (static, base-nossl, base, cc,
python3, java, nodejs; plain, -nonroot, -debug) builds, with the test CA added
through the spec's `certificates:`, and its smoke test runs in a chroot as uid
65532 with /proc mounted and the image config's environment:

- static: a statically linked program; base-nossl: a dynamic one that looks up
  its user through NSS; base: a libssl client doing a verified TLS handshake
  with the local HTTPS server; cc: C++ exceptions and threads;
- python3: ssl (an HTTPS request with the default context), sqlite3, ctypes;
- java: `java -version`, and an HTTPS request with the default trust store;
- nodejs: an https request;
- every -debug variant also `sh -c 'id; ls /'` through busybox on PATH.

The link check knows run-time loading: JRE images pass the build and `assemble
check` without any ignore, while a JRE without zlib and a python3 without libssl
fail the build naming the library.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_build_network import ROOT
from tlsserver import BODY, LocalCA, TLSServer

pytestmark = [pytest.mark.network,
              pytest.mark.skipif(os.geteuid() != 0, reason="chroot and mount need root")]

CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"
RELEASES = ("bookworm", "trixie")
FLAVOURS = ("static", "base-nossl", "base", "cc", "python3", "java", "nodejs")
VARIANTS = ("", "-nonroot", "-debug")
SPECS = [(r, f + v) for r in RELEASES for f in FLAVOURS for v in VARIANTS]
CERTIFICATES = ("certificates:\n  additional:\n"
                "    - {name: assembler-test-ca, path: test-ca.pem}\n")

TLS_CLIENT = r'''
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_set_default_verify_paths(ctx) != 1) return 10;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return 11;
    SSL *ssl = SSL_new(ctx);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) { printf("handshake failed: %ld\n", SSL_get_verify_result(ssl));
                                 return 12; }
    const char req[] = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    SSL_write(ssl, req, sizeof req - 1);
    char buf[4096]; int n, total = 0;
    while ((n = SSL_read(ssl, buf + total, sizeof buf - 1 - total)) > 0) total += n;
    buf[total] = 0;
    printf("%s", strstr(buf, "\r\n\r\n") ? strstr(buf, "\r\n\r\n") + 4 : buf);
    return 0;
}
'''
NSS_PROGRAM = r'''
#include <pwd.h>
#include <stdio.h>
#include <unistd.h>
int main(void) { struct passwd *p = getpwuid(getuid()); printf("%s\n", p ? p->pw_name : "?");
                 return p == NULL; }
'''
STATIC_PROGRAM = '#include <stdio.h>\nint main(void) { puts("static ok"); return 0; }\n'
CC_PROGRAM = r'''
#include <iostream>
#include <stdexcept>
#include <thread>
#include <vector>
int main() {
    std::vector<std::thread> threads; std::vector<int> out(4);
    for (int i = 0; i < 4; i++) threads.emplace_back([&out, i] {
        try { throw std::runtime_error("e"); } catch (const std::exception &) { out[i] = i; } });
    for (auto &t : threads) t.join();
    std::cout << "caught " << out[0] + out[1] + out[2] + out[3] << std::endl;
}
'''
JAVA_FETCH = '''
public class Fetch {
    public static void main(String[] args) throws Exception {
        var client = java.net.http.HttpClient.newHttpClient();
        var request = java.net.http.HttpRequest.newBuilder(java.net.URI.create(args[0])).build();
        var response = client.send(request, java.net.http.HttpResponse.BodyHandlers.ofString());
        System.out.print(response.body());
    }
}
'''
PYTHON_SMOKE = '''
import ctypes, sqlite3, ssl, sys, urllib.request
body = urllib.request.urlopen(sys.argv[1], context=ssl.create_default_context()).read()
db = sqlite3.connect(":memory:")
assert db.execute("select 6 * 7").fetchone() == (42,)
assert ctypes.CDLL(None).strlen(b"abc") == 3
sys.stdout.write(body.decode())
'''
NODE_SMOKE = ("require('https').get(process.argv[1], r => r.pipe(process.stdout))"
              ".on('error', e => { console.error(e); process.exit(1); });")


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> Iterator[tuple[LocalCA, TLSServer]]:
    ca = LocalCA(tmp_path_factory.mktemp("ca"))
    server = TLSServer(ca)
    yield ca, server
    server.stop()


def _compile(out: Path, source: str, compiler: str, *flags: str) -> Path:
    src = out.with_suffix(".src")
    src.write_text(source)
    lang = "c++" if compiler == "g++" else "c"
    subprocess.run([compiler, "-x", lang, str(src), "-o", str(out), "-O1", *flags], check=True)
    return out


@pytest.fixture(scope="module")
def programs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("programs")
    return {"static": _compile(d / "static", STATIC_PROGRAM, "gcc", "-static"),
            "base-nossl": _compile(d / "nss", NSS_PROGRAM, "gcc"),
            "base": _compile(d / "tls", TLS_CLIENT, "gcc", "-lssl", "-lcrypto"),
            "cc": _compile(d / "cc", CC_PROGRAM, "g++", "-pthread")}


class Images:
    """Builds each spec once, on first use (uncompressed layers: the tests unpack them)."""

    def __init__(self, tmp: Path, cache: Path, ca: LocalCA) -> None:
        self.tmp, self.cache, self.ca = tmp, cache, ca
        self.built: dict[tuple[str, str], Path] = {}

    def spec_dir(self, release: str, name: str) -> Path:
        d = self.tmp / f"{release}-{name}"
        d.mkdir()
        spec = (ROOT / "specs" / release / f"{name}.yaml").read_text()
        (d / "image.yaml").write_text(spec + CERTIFICATES)
        shutil.copy(self.ca.ca_pem, d / "test-ca.pem")
        return d

    def __call__(self, release: str, name: str) -> Path:
        key = (release, name)
        if key not in self.built:
            d = self.spec_dir(release, name)
            r = subprocess.run([sys.executable, "-m", "assembler.cli", "build",
                                str(d / "image.yaml"), "-q", "--cache-dir", str(self.cache),
                                "--compression", "none"], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            self.built[key] = d / "image.tar"
        return self.built[key]


@pytest.fixture(scope="module")
def images(tmp_path_factory, shared_cache, tls) -> Images:
    return Images(tmp_path_factory.mktemp("family"), shared_cache, tls[0])


def _config(tar: Path) -> dict:
    with tarfile.open(tar) as t:
        manifest = json.load(t.extractfile("manifest.json"))[0]
        return json.load(t.extractfile(manifest["Config"]))["config"]


@contextlib.contextmanager
def _proc(rootfs: Path) -> Iterator[None]:
    (rootfs / "proc").mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "proc", "proc", str(rootfs / "proc")], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(rootfs / "proc")], check=True)


def _extract(tar: Path, dest: Path) -> Path:
    """The image's single layer, unpacked by GNU tar (numeric owners, modes kept)."""
    rootfs = dest / "rootfs"
    rootfs.mkdir(parents=True)
    with tarfile.open(tar) as t:
        layer = json.load(t.extractfile("manifest.json"))[0]["Layers"]
        assert len(layer) == 1
        t.extract(layer[0], dest, filter="data")
    subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-xpf", str(dest / layer[0])],
                   check=True)
    return rootfs


class Container:
    def __init__(self, tar: Path, dest: Path) -> None:
        self.rootfs = _extract(tar, dest)
        config = _config(tar)
        self.env = dict(e.split("=", 1) for e in config.get("Env", []))
        self.env["HOME"] = "/home/nonroot"
        self.config = config

    def run(self, *argv: str, timeout: int = 120) -> subprocess.CompletedProcess:
        with _proc(self.rootfs):
            return subprocess.run([CHROOT, "--userspec=65532:65532", str(self.rootfs), *argv],
                                  capture_output=True, text=True, env=self.env,
                                  timeout=timeout)


@pytest.fixture(scope="module")
def java_class(images, tmp_path_factory) -> Path:
    """Fetch.class, compiled once by the bookworm JRE's own jdk.compiler module."""
    c = Container(images("bookworm", "java"), tmp_path_factory.mktemp("javac"))
    (c.rootfs / "tmp/src").mkdir(mode=0o777)
    (c.rootfs / "tmp/src").chmod(0o777)  # the compiler runs as uid 65532 too
    (c.rootfs / "tmp/src/Fetch.java").write_text(JAVA_FETCH)
    # Class file version 61 (Java 17): the trixie JRE (21) runs it too.
    r = c.run("/usr/bin/java", "-m", "jdk.compiler/com.sun.tools.javac.Main", "-d", "/tmp/src",
              "/tmp/src/Fetch.java")
    assert r.returncode == 0, r.stdout + r.stderr
    return c.rootfs / "tmp/src/Fetch.class"


def _smoke(flavour: str, c: Container, url: str, port: int, programs: dict[str, Path],
           request: pytest.FixtureRequest) -> None:
    if flavour in programs:
        shutil.copy(programs[flavour], c.rootfs / "smoke")
        r = c.run("/smoke", str(port))
        expected = {"static": "static ok\n", "base-nossl": "nonroot\n", "base": BODY.decode(),
                    "cc": "caught 6\n"}[flavour]
        assert r.returncode == 0 and r.stdout == expected, r.stdout + r.stderr
    elif flavour == "python3":
        r = c.run("/usr/bin/python3", "-c", PYTHON_SMOKE, url)
        assert r.returncode == 0 and r.stdout == BODY.decode(), r.stderr
        version = next(c.rootfs.glob("usr/lib/python3.*/os.py")).parent.name
        # The standard library's bytecode, compiled by the image's own python3.X in
        # bubblewrap, on both releases, and the interpreter loads it as it is.
        assert len(list(c.rootfs.glob(f"usr/lib/{version}/**/__pycache__/*.pyc"))) > 400
        r = c.run("/usr/bin/python3", "-v", "-c", "import json")
        tag = "cpython-" + version.removeprefix("python").replace(".", "")
        assert f"code object from '/usr/lib/{version}/json/__pycache__/__init__.{tag}.pyc'" \
            in r.stderr, r.stderr[-2000:]
    elif flavour == "java":
        r = c.run("/usr/bin/java", "-version")
        assert r.returncode == 0 and "OpenJDK" in r.stderr, r.stderr
        shutil.copy(request.getfixturevalue("java_class"), c.rootfs / "tmp/Fetch.class")
        r = c.run("/usr/bin/java", "-cp", "/tmp", "Fetch", url)
        assert r.returncode == 0 and r.stdout == BODY.decode(), r.stdout + r.stderr
    elif flavour == "nodejs":
        r = c.run("/usr/bin/node", "-e", NODE_SMOKE, url)
        assert r.returncode == 0 and r.stdout == BODY.decode(), r.stderr


@pytest.mark.parametrize("release, name", SPECS, ids=[f"{r}-{n}" for r, n in SPECS])
def test_family_image_runs_its_smoke_test(release, name, images, tls, programs, tmp_path,
                                          request) -> None:
    tar = images(release, name)
    c = Container(tar, tmp_path)
    flavour = name.removesuffix("-nonroot").removesuffix("-debug")
    assert c.config.get("User") == ("65532:65532" if name.endswith("-nonroot") else "0:0")
    _smoke(flavour, c, tls[1].url, tls[1].port, programs, request)
    if name.endswith("-debug"):
        r = c.run("sh", "-c", "id; ls /")
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("uid=65532"), r.stdout
        assert "busybox" in r.stdout.split() and "usr" in r.stdout.split(), r.stdout
        assert c.config["Entrypoint"][0] in ("/busybox/sh", "/usr/bin/python3", "/usr/bin/java",
                                             "/usr/bin/node")


@pytest.mark.parametrize("release", RELEASES)
def test_jre_images_pass_assemble_check_without_ignore(release, images) -> None:
    tar = images(release, "java")
    spec = (ROOT / "specs" / release / "java.yaml").read_text()
    assert "link-check" not in spec
    r = subprocess.run([sys.executable, "-m", "assembler.cli", "check", str(tar)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _catalog_without(tmp: Path, release: str, essential: str) -> Path:
    """A copy of the release's definition and catalog whose slices lack `essential`."""
    repo = tmp / "repo"
    shutil.copytree(ROOT / "repos" / "debian" / release, repo / release)
    shutil.copytree(ROOT / "repos" / "debian" / "keys", repo / "keys")
    shutil.copy(ROOT / "repos" / "debian" / f"{release}.yaml", repo)
    for f in (repo / release / "slices").glob("*.yaml"):
        f.write_text(re.sub(rf"^\s+- {re.escape(essential)}\n", "", f.read_text(), flags=re.M))
    return repo / f"{release}.yaml"


@pytest.mark.parametrize("release, spec, essential, words", [
    ("bookworm", "java", "zlib1g_libs",
     ["libz.so.1 (needed by", "/usr/lib/jvm/java-17-openjdk-amd64/lib/libzip.so"]),
    ("bookworm", "python3", "libssl3_libs",
     ["libssl.so.3 (needed by /usr/lib/python3.11/lib-dynload/_ssl."]),
])
def test_genuinely_missing_libraries_still_fail(release, spec, essential, words, images,
                                                tmp_path, shared_cache) -> None:
    d = tmp_path
    text = (ROOT / "specs" / release / f"{spec}.yaml").read_text()
    text = text.replace(f"distro: debian/{release}",
                        f"distro: {_catalog_without(tmp_path, release, essential)}")
    text = re.sub(rf"^\s+- {re.escape(essential)}\n", "", text, flags=re.M)
    (d / "image.yaml").write_text(text)
    r = subprocess.run([sys.executable, "-m", "assembler.cli", "build", str(d / "image.yaml"),
                        "-q", "--cache-dir", str(shared_cache)], capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert "Link check of the amd64 image failed" in r.stderr
    for w in words:
        assert w in r.stderr, r.stderr
    assert not (d / "image.tar").exists()

"""Bounded fuzzing of the parsers of what a repository or a lock says (issue 10, must show 2).

Each target feeds hypothesis-made inputs (mutations of a valid document, and
arbitrary text) to a parser and to the code that uses what it returns, and
requires that every input ends in success or in one of our own errors, never
another exception. Derandomized and bounded by example count, so each target
takes about a second and every run tries the same inputs.
"""

from __future__ import annotations

import json
import tarfile

from fuzzing import examples as fuzz_examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_apk_support import file_info, gz, tar_bytes

from assembler.alpine.repository import _make, parse_verified
from assembler.build import source_date_epoch
from assembler.debian.archive import _Plain, decompressed_pieces
from assembler.debian.packages import make_package, parse_packages_pieces, parse_relation
from assembler.debian.release import check_release, parse_release
from assembler.debian.version import version_key
from assembler.errors import AssemblerError
from assembler.lock.lockfile import read_lock, why

BUDGET = settings(max_examples=fuzz_examples(400), derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))

# Characters the formats give meaning to, so mutations hit the interesting cases.
PUNCT = st.sampled_from(list(":=<>~!|,()[]/.-+_ \t\n\r\0%@0123456789abcdefQ"))
WORDS = st.sampled_from(["..", "../", "/", "12ab", "-1", "1_0", "x:1.0", "Q1", "=1", "x>"])
TEXT = st.lists(st.one_of(st.text(st.one_of(st.characters(), PUNCT), max_size=8), WORDS),
                max_size=6).map("".join)


def mutated(lines: list[str]) -> st.SearchStrategy[str]:
    """A valid document with some lines replaced, cut, doubled or with text appended."""
    def apply(edits: list[tuple[int, int, str]]) -> str:
        out = list(lines)
        for kind, at, text in edits:
            i = at % (len(out) or 1)
            if not out:
                out.append(text)
            elif kind == 0:
                key = out[i].partition(":")[0]
                out[i] = f"{key}:{text}"            # a field's value replaced
            elif kind == 1:
                out[i] = out[i][: len(text)]        # cut short
            elif kind == 2:
                out.insert(i, out[i])               # doubled
            else:
                out[i] += text
        return "\n".join(out) + "\n"
    return st.lists(st.tuples(st.integers(0, 3), st.integers(0, 999), TEXT),
                    max_size=6).map(apply)


PACKAGES = """Package: hello
Version: 1:2.10-3
Architecture: amd64
Multi-Arch: foreign
Pre-Depends: libc6 (>= 2.34)
Depends: libc6 (>= 2.34), libfoo:any | libbar (<< 3~)
Provides: hi (= 1.0), greeting
Conflicts: hallo
Breaks: hello-old (<= 1.0)
Essential: yes
Filename: pool/main/h/hello/hello_2.10-3_amd64.deb
Size: 53132
SHA256: 5a6c6b8e2e2bbb5e7b1f0c3c9d9b2e3a1f2d3c4b5a6978877665544332211000
Priority: optional
Source: hello (2.10-2)

Package: libfoo
Version: 1.0
Architecture: all
Filename: pool/main/libf/libfoo/libfoo_1.0_all.deb
Size: 1
SHA256: 0000000000000000000000000000000000000000000000000000000000000000""".splitlines()


@BUDGET
@given(st.one_of(mutated(PACKAGES), TEXT))
def test_packages_parser(text):
    src = {"archive": "test", "suite": "stable", "index": "http://m/dists/stable/Packages"}
    try:
        records = parse_packages_pieces(decompressed_pieces(text.encode("utf-8", "replace"),
                                                            _Plain))
        for _, provides, joined in records:
            pkg = make_package(joined, src)
            version_key(pkg.version)
            parse_relation(provides)
    except AssemblerError:
        pass


RELEASE = """Origin: Debian
Suite: stable
Codename: bookworm
Date: Sat, 07 Oct 2023 09:00:00 UTC
Valid-Until: Sat, 14 Oct 2099 09:00:00 UTC
Acquire-By-Hash: yes
No-Support-for-Architecture-all: Packages
Architectures: amd64 arm64 all
Components: main contrib
SHA256:
 5a6c6b8e2e2bbb5e7b1f0c3c9d9b2e3a1f2d3c4b5a6978877665544332211000  1234 main/binary-amd64/Packages
 %s 99 main/binary-amd64/Packages.xz""".replace("%s", "0" * 64).splitlines()


@BUDGET
@given(st.one_of(mutated(RELEASE), TEXT))
def test_release_parser(text):
    try:
        rel = parse_release(text, "http://m/dists/stable/InRelease")
        check_release(rel, "stable", "http://m/dists/stable/InRelease")
    except AssemblerError:
        pass


APKINDEX = """C:Q1hQ0LYFBuKTtFWvDrHcQw0vzvyJg=
P:busybox
V:1.36.1-r15
A:x86_64
S:518393
I:948776
T:Size optimized toolbox
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Someone <a@b.c>
t:1700000000
c:abcdef
k:100
D:so:libc.musl-x86_64.so.1 !busybox-suid musl>=1.2
p:/bin/sh cmd:busybox=1.36.1-r15 cmd:sh=1.36.1-r15
i:busybox-extras=1.36.1-r15 !foo
r:busybox-initscripts

C:Q2AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:1
""".splitlines()


def _index(text: str) -> bytes:
    return gz(tar_bytes([(file_info("DESCRIPTION"), b"fuzz"),
                         (file_info("APKINDEX"), text.encode("utf-8", "surrogateescape"))],
                        fmt=tarfile.USTAR_FORMAT))


@BUDGET
@given(st.one_of(mutated(APKINDEX), TEXT))
def test_apkindex_parser(text):
    source = {"archive": "alpine", "suite": "v3.21", "repository": "v3.21/main",
              "apk-arch": "x86_64", "rank": 0}
    try:
        _, _, items, _ = parse_verified(_index(text), "http://m/APKINDEX.tar.gz")
        for _, _, payload in items:
            _make((payload, 0), [source])
    except AssemblerError:
        pass


LOCK = {
    "lockfile-version": 1,
    "spec": {"file": "image.yaml", "inputs-digest": "sha256:" + "0" * 64},
    "distro": "debian/bookworm",
    "archs": {"amd64": {
        "indexes": [{"archive": "debian", "suite": "bookworm", "date": "2023-10-07T09:00:00Z",
                     "inrelease-sha256": "1" * 64}],
        "packages": [
            {"name": "hello", "version": "2.10-3", "arch": "amd64", "archive": "debian",
             "suite": "bookworm", "filename": "pool/main/h/hello/hello_2.10-3_amd64.deb",
             "size": 53132, "sha256": "5" * 64, "source": "hello", "reason": ["requested"],
             "slices": ["bins"]},
            {"name": "libc6", "version": "2.36-9", "arch": "amd64", "archive": "debian",
             "suite": "bookworm", "filename": "pool/main/g/glibc/libc6_2.36-9_amd64.deb",
             "size": 1, "sha256": "6" * 64, "source": "glibc", "reason": ["hello"]},
        ],
        "excluded": {"perl": ["hello"]},
    }},
}

JSON = st.recursive(st.none() | st.booleans() | st.integers(-2, 2**70) | st.floats() | TEXT,
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(TEXT, inner, max_size=3), max_leaves=6)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


PATHS = [p for p in _paths(LOCK) if p]


@st.composite
def locks(draw):
    doc = json.loads(json.dumps(LOCK))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent = doc
        try:
            for k in path[:-1]:
                parent = parent[k]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(JSON)
        except (KeyError, IndexError, TypeError):
            continue
    return json.dumps(doc)


@BUDGET
@given(st.one_of(locks(), TEXT))
def test_lockfile_reader(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("lock") / "image.lock.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        lock = read_lock(path)
        source_date_epoch(lock)
        for arch, entry in lock.archs.items():
            for p in entry.packages:
                why(lock, arch, p.name)
                # what show-packages prints
                "  ".join((p.name, p.version, p.arch, p.suite, str(p.size), ", ".join(p.reason)))
    except AssemblerError:
        pass

"""Must-show 4: resolving against the real Alpine 3.16 x86_64 index.

The closures come from the real pipeline (repos/alpine definition and keys,
loader over a file:// mirror, apk resolver). They are then judged by a checker
written here from the apk rules, reading the index with its own few lines of
parsing: every dependency met, no conflict, no name provided twice with a
version, install_if complete, and provider choices following provider_priority.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest
from test_apk_support import FIXTURES

from assembler.alpine import version as apkver
from assembler.alpine.repository import AlpineIndexLoader
from assembler.alpine.solver import ApkResolver, apk_want
from assembler.cache import Cache
from assembler.distro.definition import load_distro
from assembler.errors import ResolveError

pytestmark = pytest.mark.needs_shared

INDEX = FIXTURES / "alpine-3.16-x86_64" / "APKINDEX.tar.gz"
REQUESTS = ["python3", "curl", "nginx", "busybox", "ca-certificates"]
# names with several providers that differ in provider_priority
PRIORITY_REQUESTS = {"postgresql-client": "postgresql14-client",
                     "dhcp-server": "dhcp-server-vanilla",
                     "icu-data": "icu-data-en",
                     "cmd:dnsmasq": "dnsmasq"}


# -- the independent checker ---------------------------------------------------------

def read_index(path: Path) -> list[dict]:
    with tarfile.open(path) as t:  # the signature and index tars read as one stream
        text = t.extractfile("APKINDEX").read().decode()
    pkgs = []
    for block in text.strip("\n").split("\n\n"):
        f: dict[str, str] = {}
        for line in block.splitlines():
            f[line[0]] = line[2:]
        pkgs.append({
            "name": f["P"], "version": f["V"], "k": int(f.get("k", "0")),
            "D": f.get("D", "").split(), "p": f.get("p", "").split(), "i": f.get("i", "").split(),
        })
    return pkgs


def split(atom: str) -> tuple[bool, str, str, str]:
    neg = atom.startswith("!")
    atom = atom.lstrip("!")
    for op in ("><", ">=", "<=", "<~", ">~", "=", "<", ">", "~"):
        i = atom.find(op)
        if i > 0:
            return neg, atom[:i], op, atom[i + len(op):]
    return neg, atom, "", ""


def provisions(pkg: dict) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = [(pkg["name"], pkg["version"])]
    for p in pkg["p"]:
        _, name, _, ver = split(p)
        out.append((name, ver or None))
    return out


def meets(op: str, want: str, have: str | None) -> bool:
    if not op:
        return True
    if have is None:  # a bare provision only meets an unversioned atom
        return False
    return apkver.satisfies(have, op, want)


def check_closure(chosen: list[dict], index: list[dict], requests: list[str]) -> None:
    names = [p["name"] for p in chosen]
    assert len(names) == len(set(names)), "two versions of one package"
    provided: dict[str, list[tuple[str, str | None]]] = {}
    for p in chosen:
        for n, v in provisions(p):
            provided.setdefault(n, []).append((p["name"], v))
    for n, claims in provided.items():
        versioned = [c for c in claims if c[1] is not None]
        assert len(claims) == 1 or not versioned, f"{n} provided twice: {claims}"
    for p in chosen:
        for atom in p["D"]:
            neg, n, op, ver = split(atom)
            hits = [c for c in provided.get(n, []) if c[0] != p["name"] and
                    (meets(op, ver, c[1]) if op else True)]
            if neg:
                assert not hits, f"{p['name']} conflicts with {atom}, but {hits} is installed"
            else:
                ok = [c for c in provided.get(n, []) if meets(op, ver, c[1])]
                assert ok, f"{p['name']}-{p['version']} needs {atom}: unmet"
    for r in requests:
        _, n, op, ver = split(r)
        assert any(meets(op, ver, v) for _, v in provided.get(n, [])), f"request {r} unmet"
    # install_if: nothing whose conditions the closure meets is left out
    for q in index:
        if q["i"] and q["name"] not in names:
            met = all(any(meets(op, ver, v) for _, v in provided.get(n, []))
                      for _, n, op, ver in map(split, q["i"]))
            assert not met, f"{q['name']} should have been installed (install_if {q['i']})"


# -- the pipeline under test ----------------------------------------------------------

@pytest.fixture(scope="module")
def universe(tmp_path_factory):
    mirror = tmp_path_factory.mktemp("mirror")
    dest = mirror / "v3.16" / "main" / "x86_64"
    dest.mkdir(parents=True)
    shutil.copy(INDEX, dest / "APKINDEX.tar.gz")
    distro = load_distro("alpine/v3.21")  # the shipped definition and keys
    distro.archives[0].suites, distro.archives[0].components = ["v3.16"], ["main"]
    cache = Cache(tmp_path_factory.mktemp("cache"))
    return AlpineIndexLoader(distro, {"alpine": mirror.as_uri()}, cache).load("x86_64")


@pytest.fixture(scope="module")
def index() -> list[dict]:
    return read_index(INDEX)


def resolve(universe, requests: list[str]) -> list[dict]:
    res = ApkResolver(universe, [apk_want(r, "test") for r in requests]).resolve()
    return [{"name": p.name, "version": p.version} for p in res.ordered()]


def with_fields(chosen: list[dict], index: list[dict]) -> list[dict]:
    by_key = {(p["name"], p["version"]): p for p in index}
    return [by_key[p["name"], p["version"]] for p in chosen]


@pytest.mark.parametrize("request_", [*REQUESTS, ",".join(REQUESTS)])
def test_closure_is_consistent(universe, index, request_):
    requests = request_.split(",")
    chosen = with_fields(resolve(universe, requests), index)
    check_closure(chosen, index, requests)
    assert len(chosen) >= len(requests)


def test_known_closures(universe):
    """Spot checks against what apk itself installs on 3.16 (ssl_client comes in
    through install_if: busybox + libssl1.1)."""
    got = {p["name"] for p in resolve(universe, ["curl"])}
    assert {"curl", "libcurl", "ca-certificates", "busybox", "ssl_client", "musl"} <= got
    assert {p["name"] for p in resolve(universe, ["busybox"])} == {"busybox", "musl"}


@pytest.mark.parametrize("virtual", sorted(PRIORITY_REQUESTS))
def test_provider_priority(universe, index, virtual):
    chosen = with_fields(resolve(universe, [virtual]), index)
    check_closure(chosen, index, [virtual])
    # the checker's own expectation: among the providers of the name with the
    # best provided version, the highest provider_priority wins
    cands = [(q, dict(provisions(q)).get(virtual, "")) for q in index
             if virtual in dict(provisions(q))]
    assert len({q["name"] for q, _ in cands}) > 1
    picked = next(q for q in chosen if virtual in dict(provisions(q)))
    best_k = max(q["k"] for q, _ in cands)
    assert picked["k"] == best_k
    assert picked["name"] == PRIORITY_REQUESTS[virtual]


def test_checker_catches_a_broken_closure(universe, index):
    """The checker must be able to fail: drop a dependency, add a clash."""
    chosen = with_fields(resolve(universe, ["curl"]), index)
    with pytest.raises(AssertionError, match="unmet"):
        check_closure([p for p in chosen if p["name"] != "musl"], index, ["curl"])
    fake = {"name": "fake", "version": "1-r0", "k": 0, "D": ["!curl"], "p": [], "i": []}
    with pytest.raises(AssertionError, match="fake conflicts with !curl"):
        check_closure([*chosen, fake], index, ["curl"])
    twin = {**fake, "D": [], "p": ["so:libz.so.1=1.2.12"]}
    with pytest.raises(AssertionError, match="so:libz.so.1 provided twice"):
        check_closure([*chosen, twin], index, ["curl"])
    ssl_client = [p for p in chosen if p["name"] != "ssl_client"]
    with pytest.raises(AssertionError, match="ssl_client should have been installed"):
        check_closure(ssl_client, index, ["curl"])


def test_pins(universe):
    got = {p["name"]: p["version"] for p in resolve(universe, ["python3~3.10", "zlib<1.3"])}
    assert got["python3"].startswith("3.10.") and apkver.compare(got["zlib"], "1.3") < 0
    with pytest.raises(ResolveError, match=r"test: python3=2\.7 cannot be met: available: "
                       r"python3=3\.10\.8-r0\.$"):
        resolve(universe, ["python3=2.7"])

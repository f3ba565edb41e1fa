"""Must-show: our lock for real bookworm equals apt's own resolution.

apt runs with an empty dpkg status and Recommends off over the same three
suites (main, -updates, -security); see tests/aptsim.py. Both sides read the
archive at the same moment, through the mirror in the host's apt sources.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aptsim import apt_simulate

from assembler.cache import Cache
from assembler.debian.resolver import AptResolver as Resolver
from assembler.options import Options
from assembler.packages.resolution import Want
from assembler.packages.universes import Universes
from assembler.spec.document import load_spec

pytestmark = pytest.mark.network

CASES = [
    ["python3"], ["ca-certificates"], ["curl"], ["nginx-light"], ["openjdk-17-jre-headless"],
    ["nodejs"], ["git"], ["postgresql-15"], ["libssl3", "libc6"],
]
# Deliberate differences from apt: none. (If one is ever needed, list it here
# with the reason, and the test subtracts it explicitly.)
KNOWN_DIFFERENCES: dict[str, set[str]] = {}


@pytest.fixture(scope="module")
def universe(tmp_path_factory, shared_cache: Path):
    spec_file = tmp_path_factory.mktemp("spec") / "image.yaml"
    spec_file.write_text("distro: debian/bookworm\narchs: [amd64]\n"
                         "contents: {packages: [libc6]}\n")
    return Universes(load_spec(spec_file), Options(cache=Cache(shared_cache))).universe("amd64")


@pytest.mark.parametrize("request_names", CASES, ids=lambda c: "+".join(c))
def test_same_closure_as_apt(universe, request_names):
    ours = Resolver(universe, [Want(n) for n in request_names]).resolve()
    mine = {p.name: p.version for p in ours.packages.values()}
    theirs = apt_simulate(request_names)
    for name in KNOWN_DIFFERENCES.get("+".join(request_names), set()):
        mine.pop(name, None)
        theirs.pop(name, None)
    only_ours = sorted(set(mine.items()) - set(theirs.items()))
    only_apt = sorted(set(theirs.items()) - set(mine.items()))
    assert not only_ours and not only_apt, f"only ours: {only_ours}; only apt: {only_apt}"
    assert len(mine) >= len(request_names)

"""apk resolution semantics on small hand-written indexes (one rule per test)."""

from __future__ import annotations

import pytest

from assembler.alpine.record import iter_stanzas, record_from_fields
from assembler.alpine.repository import make_package
from assembler.alpine.solver import ApkResolver, apk_want
from assembler.alpine.version import version_key
from assembler.errors import ResolveError, SpecError
from assembler.packages.universe import Universe


def universe(*repos: str, tags: tuple[str, ...] = ()) -> Universe:
    """Each argument is one repository's APKINDEX text (earlier = preferred); `tags`
    gives the repositories' tags in the same order ("" for none)."""
    u = Universe("x86_64", version_key, lambda r: r[0])
    for rank, text in enumerate(repos):
        source = {"archive": "test", "suite": "v3.99", "repository": f"v3.99/r{rank}",
                  "apk-arch": "x86_64", "rank": rank,
                  "tag": tags[rank] if rank < len(tags) else ""}
        for stanza in iter_stanzas(text.strip() + "\n"):
            fields = [("C", "Q1" + "A" * 27 + "="), ("A", "x86_64"), *stanza]
            u.add(make_package(record_from_fields(fields), source))
    return u


def solve(u: Universe, *requests: str, exclude: set[str] | None = None) -> dict[str, str]:
    res = ApkResolver(u, [apk_want(r, "spec.yaml:7") for r in requests], exclude).resolve()
    return {p.name: p.version for p in res.ordered()}


def test_so_and_cmd_provides_with_versions():
    u = universe("""
P:app
V:1-r0
D:so:libz.so.1 cmd:sh

P:zlib
V:1.3-r0
p:so:libz.so.1=1.3

P:busybox
V:1.36-r0
p:cmd:sh=1.36-r0 /bin/sh
""")
    assert solve(u, "app") == {"app": "1-r0", "zlib": "1.3-r0", "busybox": "1.36-r0"}


def test_versioned_dependency_not_met_by_a_bare_provision():
    u = universe("""
P:app
V:1-r0
D:libfoo>=2

P:foo-compat
V:9-r0
p:libfoo
""")
    with pytest.raises(ResolveError, match=r"app=1-r0 needs libfoo>=2, but libfoo is provided "
                       r"only without a version \(by foo-compat\), which cannot meet"):
        solve(u, "app")


BARE = """
P:app
V:1-r0
D:/bin/sh

P:dash-binsh
V:0.5-r0
p:/bin/sh

P:yash-binsh
V:2.5-r0
p:/bin/sh
"""


def test_bare_provides_need_a_choice():
    with pytest.raises(ResolveError, match="provided only without a version, by dash-binsh, "
                       "yash-binsh, and none has a provider_priority; name the one you want"):
        solve(universe(BARE), "app")
    # naming a provider makes it required, hence selectable
    assert solve(universe(BARE), "app", "yash-binsh") == {"app": "1-r0", "yash-binsh": "2.5-r0"}


def test_provider_priority_decides_between_bare_providers():
    u = universe(BARE.replace("P:dash-binsh\nV:0.5-r0\n", "P:dash-binsh\nV:0.5-r0\nk:100\n")
                 .replace("P:yash-binsh\nV:2.5-r0\n", "P:yash-binsh\nV:2.5-r0\nk:10\n"))
    assert solve(u, "app") == {"app": "1-r0", "dash-binsh": "0.5-r0"}


def test_provided_version_outranks_provider_priority():
    """apk compares the provided versions before provider_priority."""
    u = universe("""
P:app
V:1-r0
D:so:libssl.so.3

P:libssl-old
V:3.0-r0
k:100
p:so:libssl.so.3=3.0

P:libssl-new
V:3.1-r0
p:so:libssl.so.3=3.1
""")
    assert "libssl-new" in solve(u, "app")


def test_install_if():
    u = universe("""
P:app
V:1-r0
D:busybox

P:busybox
V:1-r0

P:app-busybox
V:1-r0
i:app busybox

P:app-doc
V:1-r0
i:docs app

P:app-old-plugin
V:1-r0
i:app<1
""")
    got = solve(u, "app")
    assert got == {"app": "1-r0", "busybox": "1-r0", "app-busybox": "1-r0"}


def test_install_if_chains():
    u = universe("""
P:a
V:1-r0

P:b
V:1-r0
i:a

P:c
V:1-r0
i:b
""")
    assert set(solve(u, "a")) == {"a", "b", "c"}


def test_conflict_makes_the_resolver_pick_another_version():
    u = universe("""
P:app
V:1-r0
D:lib !tool<2

P:lib
V:2-r0
D:tool

P:tool
V:1-r0

P:tool
V:2-r0
""")
    assert solve(u, "app")["tool"] == "2-r0"
    with pytest.raises(ResolveError, match=r"tool=1-r0.*!tool<2"):
        solve(u, "app", "tool=1-r0")


def test_same_name_provided_twice_with_versions_is_a_conflict():
    u = universe("""
P:a
V:1-r0
p:cmd:x=1

P:b
V:1-r0
p:cmd:x=1
""")
    with pytest.raises(ResolveError, match="already provides cmd:x"):
        solve(u, "a", "b")
    # bare provisions of one name may coexist
    v = universe("P:a\nV:1-r0\np:virt\n\nP:b\nV:1-r0\np:virt\n")
    assert solve(v, "a", "b") == {"a": "1-r0", "b": "1-r0"}


@pytest.mark.parametrize("request_, version", [
    ("py", "3.12.1-r0"), ("py=3.10.5-r0", "3.10.5-r0"), ("py~3.11", "3.11.9-r2"),
    ("py>=3.11", "3.12.1-r0"), ("py<3.11", "3.10.5-r0"), ("py<3.12.1-r0", "3.11.9-r2"),
    ("py<=3.11.9-r2", "3.11.9-r2"),
])
def test_pins(request_, version):
    u = universe("P:py\nV:3.10.5-r0\n\nP:py\nV:3.11.9-r2\n\nP:py\nV:3.12.1-r0\n")
    assert solve(u, request_) == {"py": version}


def test_pin_narrows_a_choice_made_for_a_dependency():
    """The constraint is known before busybox is chosen for /bin/sh, as in apk."""
    u = universe("""
P:app
V:1-r0
D:/bin/sh

P:busybox
V:1.35-r0
p:/bin/sh

P:busybox
V:1.36-r0
p:/bin/sh
""")
    assert solve(u, "app", "busybox<1.36") == {"app": "1-r0", "busybox": "1.35-r0"}


def test_several_repositories():
    main = "P:a\nV:1-r0\nD:b\n\nP:b\nV:1-r0\n"
    community = "P:b\nV:1-r0\n\nP:c\nV:1-r0\nD:a\n"
    u = universe(main, community)
    res = ApkResolver(u, [apk_want("c", "x")]).resolve()
    repos = {p.name: p.extra["lock"]["repository"] for p in res.ordered()}
    assert repos == {"a": "v3.99/r0", "b": "v3.99/r0", "c": "v3.99/r1"}  # tie: earlier repo
    newer = universe(main, "P:b\nV:2-r0\n")
    assert solve(newer, "a")["b"] == "2-r0"  # the higher version wins across repositories


def test_exclude_drops_the_dependency():
    u = universe("P:app\nV:1-r0\nD:so:libfoo.so.1 busybox\n\nP:libfoo\nV:1-r0\n"
                 "p:so:libfoo.so.1=1\n\nP:busybox\nV:1-r0\n")
    res = ApkResolver(u, [apk_want("app", "x")], {"busybox", "libfoo"}).resolve()
    assert set(res.packages) == {"app"}
    assert res.excluded == {"busybox": ["app"], "libfoo": ["app"]}


@pytest.mark.parametrize("text, words", [
    ("!foo", "contents.exclude"),
    ("foo=", "not an apk package atom"), ("foo=1.0-r0-bad", "not an apk package atom"),
])
def test_bad_requests(text, words):
    with pytest.raises(SpecError, match=words):
        apk_want(text, "spec.yaml:3")


def test_unknown_request_suggests():
    u = universe("P:python3\nV:3.12-r0\n")
    with pytest.raises(ResolveError, match="spec.yaml:7: no package named 'pyhton3'.*'python3'"):
        solve(u, "pyhton3")


def test_spec_keeps_apk_atoms(tmp_path):
    """spec.py accepts what Debian's grammar refuses; the apk reading is exact."""
    from assembler.spec.document import load_spec

    spec = tmp_path / "image.yaml"
    spec.write_text("distro: alpine/v3.21\ncontents:\n  packages:\n"
                    "    - libnetfilter_acct\n    - so:libz.so.1\n    - python3~3.12\n"
                    "    - py3-foo=1.0_rc1-r0\n    - freeswitch-sounds-ru-RU-elena-8000\n")
    wants = [apk_want(r.text, "x") for r in load_spec(spec).packages]
    assert [(w.name, w.op, w.version) for w in wants] == [
        ("libnetfilter_acct", None, None), ("so:libz.so.1", None, None),
        ("python3", "~", "3.12"), ("py3-foo", "=", "1.0_rc1-r0"),
        ("freeswitch-sounds-ru-RU-elena-8000", None, None)]


def test_repository_tags():
    """apk's pinning: a tagged repository serves only names asked for with its tag and
    what those need; untagged names never come from it, even at a higher version."""
    main = "P:app\nV:1-r0\nD:lib\n\nP:lib\nV:1-r0\n\nP:other\nV:1-r0\nD:lib\n"
    edge = "P:app\nV:2-r0\nD:lib\n\nP:lib\nV:2-r0\n\nP:tool\nV:1-r0\nD:lib\n"
    u = universe(main, edge, tags=("", "edge"))
    assert solve(u, "app") == {"app": "1-r0", "lib": "1-r0"}
    assert solve(u, "app@edge") == {"app": "2-r0", "lib": "2-r0"}  # inherited by lib
    assert solve(u, "tool@edge", "other")["lib"] == "2-r0"
    with pytest.raises(ResolveError, match="only in repositories tagged @edge; ask for tool@edge"):
        solve(u, "tool")
    with pytest.raises(ResolveError, match="no repository tagged @testing has 'app'"):
        solve(u, "app@testing")

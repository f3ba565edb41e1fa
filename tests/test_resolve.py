"""Resolver semantics on a small in-memory universe (Debian rules)."""

from __future__ import annotations

import pytest

from assembler.debian.packages import parse_provides, parse_relation
from assembler.debian.resolver import AptResolver as Resolver
from assembler.debian.version import version_key
from assembler.errors import ResolveError
from assembler.packages.resolution import Want
from assembler.packages.universe import Package, Universe


def pkg(name, version="1.0", depends="", provides="", conflicts="", essential=False,
        multi_arch="", priority="optional"):
    deps = [list(g) for g in parse_relation(depends)] if depends else []
    confl = [d for g in parse_relation(conflicts) for d in g] if conflicts else []
    return Package(name=name, version=version, arch="amd64", depends=deps,
                   provides=parse_provides(provides) if provides else [], conflicts=confl,
                   essential=essential, multi_arch=multi_arch, priority=priority)


def universe(*pkgs):
    u = Universe("amd64", version_key, lambda r: r[0])
    for p in pkgs:
        u.add(p)
    return u


def names(u, *wants, **kw):
    res = Resolver(u, [Want(w) if isinstance(w, str) else w for w in wants], **kw).resolve()
    return {p.name: p.version for p in res.packages.values()}


def test_highest_version_wins_and_versioned_deps():
    u = universe(pkg("a", depends="b (>= 2)"), pkg("b", "1.0"), pkg("b", "2.1"), pkg("b", "2.0"))
    assert names(u, "a") == {"a": "1.0", "b": "2.1"}


def test_alternatives_first_satisfiable_and_prefer_selected():
    u = universe(pkg("a", depends="x | y"), pkg("y"), pkg("x"), pkg("c", depends="y"))
    assert set(names(u, "a")) == {"a", "x"}
    # y is already marked when a's "x | y" is looked at: apt keeps it
    assert set(names(u, "c", "a")) == {"a", "c", "y"}
    u2 = universe(pkg("a", depends="missing | y"), pkg("y"))
    assert set(names(u2, "a")) == {"a", "y"}


def test_virtual_provider_choice_deterministic_and_overridable():
    u = universe(pkg("app", depends="awk"), pkg("mawk", provides="awk", priority="required"),
                 pkg("gawk", provides="awk"), pkg("original-awk", provides="awk"))
    assert set(names(u, "app")) == {"app", "mawk"}
    assert set(names(u, "app", "gawk")) == {"app", "gawk"}


def test_versioned_provides():
    u = universe(pkg("app", depends="foo-abi (>= 2)"), pkg("old", provides="foo-abi (= 1)"),
                 pkg("new", provides="foo-abi (= 3)"), pkg("unversioned", provides="foo-abi"))
    assert set(names(u, "app")) == {"app", "new"}


def test_conflict_backtracks_to_next_alternative():
    u = universe(pkg("app", depends="b1 | b2"), pkg("b1", conflicts="c"), pkg("b2"), pkg("c"))
    assert set(names(u, "c", "app")) == {"app", "b2", "c"}


def test_breaks_and_conflicts_between_requests_fail_clearly():
    u = universe(pkg("a", conflicts="b"), pkg("b"))
    with pytest.raises(ResolveError, match="a=1.0 conflicts with b=1.0|b=1.0 conflicts with a"):
        Resolver(u, [Want("b"), Want("a")]).resolve()


def test_exclude_drops_dependency_and_records_it():
    u = universe(pkg("app", depends="perl-base, libc"), pkg("perl-base"), pkg("libc"))
    res = Resolver(u, [Want("app")], exclude={"perl-base"}).resolve()
    assert set(res.packages) == {"app", "libc"}
    assert res.excluded == {"perl-base": ["app"]}


def test_essential_only_when_asked():
    u = universe(pkg("app"), pkg("bash", essential=True, depends="base-files"),
                 pkg("base-files", essential=True))
    assert set(names(u, "app")) == {"app"}
    assert set(names(u, "app", include_essential=True)) == {"app", "bash", "base-files"}


def test_pins():
    u = universe(pkg("a", "1.0"), pkg("a", "2.0"), pkg("b", depends="a (>= 1.5)"))
    assert names(u, Want("a", "=", "1.0")) == {"a": "1.0"}
    with pytest.raises(ResolveError, match=r"b=1.0 needs a \(>= 1.5\), but only a 1.0 "
                                           r"\(pinned by the spec\)"):
        Resolver(u, [Want("a", "=", "1.0"), Want("b")]).resolve()
    with pytest.raises(ResolveError, match="available versions of a are 2.0, 1.0"):
        Resolver(u, [Want("a", ">=", "3")]).resolve()


def test_any_needs_multi_arch_allowed():
    u = universe(pkg("app", depends="python3:any"), pkg("python3", multi_arch="allowed"))
    assert set(names(u, "app")) == {"app", "python3"}
    u2 = universe(pkg("app", depends="perl:any"), pkg("perl"))
    with pytest.raises(ResolveError, match="not Multi-Arch: allowed"):
        Resolver(u2, [Want("app")]).resolve()


def test_virtual_request_names_providers():
    u = universe(pkg("mawk", provides="awk"), pkg("gawk", provides="awk"))
    with pytest.raises(ResolveError, match="virtual package provided by gawk, mawk"):
        Resolver(u, [Want("awk")]).resolve()


def test_deterministic_and_reasons():
    u = universe(pkg("a", depends="c"), pkg("b", depends="c"), pkg("c", depends="d"), pkg("d"))
    r1 = Resolver(u, [Want("a"), Want("b")]).resolve()
    r2 = Resolver(u, [Want("a"), Want("b")]).resolve()
    assert r1.reasons == r2.reasons
    assert r1.reasons["c"] == ["a", "b"] and r1.reasons["a"] == ["requested"]

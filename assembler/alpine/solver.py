"""Which packages an Alpine image contains: apk's resolution rules on an empty root.

The Debian resolver follows apt (alternatives, Priority, `<` meaning `<=`);
apk differs in enough places that it has its own resolver behind the same
interface (`resolve()` -> `Resolution`), working on the same Universe. What it
reproduces of apk-tools' solver (src/solver.c) for a fresh install:

* a name is met by the package of that name or by one that provides it; a
  dependency with a version is met only by a provision with a version
  (``so:libc.musl-x86_64.so.1=1``), never by a bare one (``/bin/sh``);
* candidates are ranked as apk's compare_providers ranks them: highest
  provided version, then highest version of the same package, then highest
  ``provider_priority``, then the earlier repository;
* a bare provision is chosen automatically only when it is the name's only
  provider, carries a provider_priority, or its package is itself required;
* a name may be claimed by one selected package only, unless every claim is
  bare (``conflict: same name provided``); one version per package name;
* ``!name[op version]`` forbids any selected provision it matches (a bare one
  only when the atom has no version);
* constraints are gathered before choices: names with a single candidate are
  settled first and names with options later, as apk's queue does, so a pin
  (``python3~3.10``) or a dependency's bound narrows a choice before it is made;
* install_if: a package whose every install_if atom is met by the selection
  joins it, repeatedly until nothing changes;
* repository tags: a package of a tagged repository (``@edge URL``) is a
  candidate only for a name requested with that tag (``pkg@edge``) or needed
  by a package chosen under it (apk's inherited pinning); untagged
  repositories serve every name.

A conflict or an unmet dependency forbids the most recent choice that led to
it and resolution restarts (deterministic and bounded), like the Debian one.
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass, field

from assembler.alpine import version as apkver
from assembler.alpine.dependency import Dependency
from assembler.errors import ResolveError, SpecError
from assembler.packages.resolution import Resolution, Want
from assembler.packages.universe import Dep, Package, Universe
from assembler.spec.document import did_you_mean

MAX_RESTARTS = 200
REQUESTED = "requested"

Claim = tuple[Package, str | None]  # a package and the version it provides a name at


@dataclass
class ApkWant(Want):
    """A request with apk's repository tag (``pkg@edge``; "" for none)."""

    tag: str = ""


def provides(atom: Dep, pkg: Package, version: str | None) -> bool:
    """apk_dep_is_provided for a positive atom and one provision."""
    if not atom.op:
        return True
    if atom.op == "><":
        return pkg.extra.get("checksum") == atom.version
    if version is None:
        return False
    return apkver.satisfies(version, atom.op, atom.version or "")


def conflict_hits(atom: Dep, pkg: Package, version: str | None) -> bool:
    """Does the conflict atom ``!name[op ver]`` forbid this provision? (apk matches the
    atom the same way as a dependency; only the verdict's meaning is inverted.)"""
    return provides(atom, pkg, version)


def claims_of(pkg: Package) -> list[tuple[str, str | None]]:
    return [(pkg.name, pkg.version), *pkg.provides]


def _vcmp(a: str | None, b: str | None) -> int:
    if a is None or b is None:
        return 0  # apk: a bare provision is neither older nor newer
    return apkver.compare(a, b)


def compare_providers(a: Claim, b: Claim) -> int:
    """> 0 when `a` is the better provider (apk's compare_providers, fresh root)."""
    (pa, va), (pb, vb) = a, b
    r = _vcmp(va, vb)
    if r:
        return r
    if pa.name == pb.name:
        r = apkver.compare(pa.version, pb.version)
        if r:
            return r
    r = pa.provider_priority - pb.provider_priority
    if r:
        return r
    r = pb.extra.get("repo_rank", 0) - pa.extra.get("repo_rank", 0)
    if r:
        return r
    # apk keeps whichever its provider array lists first; we need a stable rule
    return (pa.name < pb.name) - (pa.name > pb.name)


_provider_key = functools.cmp_to_key(compare_providers)


class _Fail(Exception):
    def __init__(self, culprit: tuple[str, str] | None, message: str) -> None:
        super().__init__(message)
        self.culprit = culprit
        self.message = message


@dataclass
class _State:
    selected: dict[str, Package] = field(default_factory=dict)
    claims: dict[str, list[Claim]] = field(default_factory=dict)
    cons: dict[str, list[tuple[Dep, str]]] = field(default_factory=dict)
    against: dict[str, list[tuple[Dep, Package]]] = field(default_factory=dict)  # conflicts
    reasons: dict[str, list[str]] = field(default_factory=dict)
    parent: dict[str, str] = field(default_factory=dict)
    excluded: dict[str, list[str]] = field(default_factory=dict)
    queue: deque[str] = field(default_factory=deque)
    deferred: deque[str] = field(default_factory=deque)
    tags: dict[str, set[str]] = field(default_factory=dict)  # name -> repository tags allowed


class ApkResolver:
    def __init__(self, universe: Universe, wants: list[Want], exclude: set[str] | None = None,
                 include_essential: bool = False, prefer: dict[str, str] | None = None) -> None:
        # include_essential has no meaning for apk: Alpine packages have no Essential flag
        self.u = universe
        # name -> version every arch offers (multi-arch locks): taken when it fits
        self.prefer = dict(prefer or {})
        self.wants = wants
        self.exclude = set(exclude or ())
        self.requested = {w.name for w in wants}
        self.forbidden: set[tuple[str, str]] = set()

    def resolve(self) -> Resolution:
        first: _Fail | None = None
        for _ in range(MAX_RESTARTS):
            try:
                return self._attempt()
            except _Fail as f:
                first = first or f
                if f.culprit is None or f.culprit in self.forbidden:
                    raise ResolveError(self._final(f, first)) from None
                self.forbidden.add(f.culprit)
        raise ResolveError(f"dependency resolution did not settle after {MAX_RESTARTS} "
                           f"attempts; first problem: {first.message if first else ''}")

    @staticmethod
    def _final(last: _Fail, first: _Fail) -> str:
        # The first problem is the cause; later ones are what avoiding it ran into.
        if first is last or first.message == last.message:
            return first.message
        return f"{first.message} (no other choice of packages avoids it)"

    # -- one attempt ------------------------------------------------------------------
    def _attempt(self) -> Resolution:
        st = _State()
        for w in self.wants:
            if w.name in self.exclude:
                raise _Fail(None, f"{self._where(w)}{w.name} is both requested and excluded.")
            st.cons.setdefault(w.name, []).append((Dep(w.name, w.op, w.version), REQUESTED))
            if isinstance(w, ApkWant) and w.tag:
                st.tags.setdefault(w.name, set()).add(w.tag)
        for w in self.wants:
            self._check_request(w)
            st.queue.append(w.name)
        while True:
            self._drain(st)
            if not self._install_if(st):
                break
        return Resolution(self.u.arch, dict(st.selected), st.reasons, st.excluded)

    def _drain(self, st: _State) -> None:
        while st.queue or st.deferred:
            from_queue = bool(st.queue)
            name = st.queue.popleft() if from_queue else st.deferred.popleft()
            if name in st.claims:
                self._check_claimed(name, st)
                continue
            cands = self._candidates(name, st)
            if from_queue and len({p.key for p, _ in cands}) > 1:
                if name not in st.deferred:
                    st.deferred.append(name)  # decide once every forced choice is known
                continue
            if not cands:
                if self._drop_excluded(name, st):
                    continue
                raise self._unmet(name, st)
            preferred = [c for c in cands if self.prefer.get(c[0].name) == c[0].version]
            pkg, _ = max(preferred or cands, key=_provider_key)
            self._select(pkg, [r for a, r in st.cons[name] if provides(a, pkg, dict(
                claims_of(pkg)).get(name))], st, st.tags.get(name, set()))

    def _check_request(self, w: Want) -> None:
        tag = w.tag if isinstance(w, ApkWant) else ""
        if tag:
            provs = [p for p, _ in self._provisions(w.name)]
            if not any(p.extra.get("tag") == tag for p in provs):
                raise _Fail(None, f"{self._where(w)}no repository tagged @{tag} has "
                            f"{w.name!r} for {self.u.arch}"
                            + (" (only untagged ones do)." if provs else "."))
            return
        tags = {p.extra.get("tag", "") for p, _ in self._provisions(w.name)}
        if tags and "" not in tags:
            raise _Fail(None, f"{self._where(w)}{w.name!r} is only in repositories tagged "
                        + ", ".join(f"@{t}" for t in sorted(tags))
                        + f"; ask for {w.name}@{min(tags)}.")
        if tags:
            return
        raise _Fail(None, f"{self._where(w)}no package named {w.name!r} in the Alpine "
                    f"repositories for {self.u.arch}." + did_you_mean(w.name, self.u.names()))

    def _where(self, w: Want) -> str:
        return f"{w.where}: " if w.where else ""

    # -- candidates -------------------------------------------------------------------
    def _provisions(self, name: str) -> list[Claim]:
        out: list[Claim] = [(p, p.version) for p in self.u.versions(name)]
        for p in self.u.providers(name):
            ver = next((v for n, v in p.provides if n == name), None)
            out.append((p, ver))
        return out

    def _candidates(self, name: str, st: _State) -> list[Claim]:
        provs = self._provisions(name)
        out = []
        for pkg, ver in provs:
            if pkg.key[:2] in self.forbidden or pkg.name in self.exclude:
                continue
            if pkg.extra.get("tag") and pkg.extra["tag"] not in st.tags.get(name, ()):
                continue
            if ver is None and not self._bare_ok(pkg, len(provs), st):
                continue
            if not all(provides(a, pkg, ver) for a, _ in st.cons.get(name, ())):
                continue
            if self._clash(pkg, st) is not None:
                continue
            out.append((pkg, ver))
        return out

    def _bare_ok(self, pkg: Package, n_providers: int, st: _State) -> bool:
        # "Virtual packages without provider_priority cannot be autoselected,
        # unless there is only one provider" (apk), or the provider is itself required.
        return n_providers == 1 or pkg.provider_priority > 0 or pkg.name in st.cons

    def _clash(self, pkg: Package, st: _State) -> str | None:
        """Why `pkg` cannot join the selection, or None."""
        have = st.selected.get(pkg.name)
        if have is not None:
            return None if have is pkg else f"{have} is already selected"
        for n, v in claims_of(pkg):
            for q, qv in st.claims.get(n, ()):
                if not (v is None and qv is None):
                    return f"{q} already provides {n}"
            for atom, req in st.cons.get(n, ()):
                if not provides(atom, pkg, v):
                    return f"{req} needs {_atom(atom)}"
            for atom, q in st.against.get(n, ()):
                if conflict_hits(atom, pkg, v):
                    return f"{q} conflicts with {_atom(atom, True)}"
        for atom in pkg.conflicts:
            for q, qv in st.claims.get(atom.name, ()):
                if q is not pkg and conflict_hits(atom, q, qv):
                    return f"it conflicts with {q} ({_atom(atom, True)})"
        return None

    # -- selecting --------------------------------------------------------------------
    def _select(self, pkg: Package, reasons: list[str], st: _State,
                tags: set[str] | None = None) -> None:
        why = self._clash(pkg, st)
        if why is not None:
            raise _Fail(pkg.key[:2], f"{self._chain(reasons, st)} -> {pkg} cannot be installed: "
                        f"{why}.")
        st.selected[pkg.name] = pkg
        st.reasons[pkg.name] = list(dict.fromkeys(reasons))
        st.parent[pkg.name] = reasons[0] if reasons else REQUESTED
        for n, v in claims_of(pkg):
            st.claims.setdefault(n, []).append((pkg, v))
        for atom in pkg.conflicts:
            if atom.name != pkg.name:
                st.against.setdefault(atom.name, []).append((atom, pkg))
        for group in pkg.depends:
            atom = group[0]
            if atom.name in self.exclude:
                st.excluded.setdefault(atom.name, []).append(pkg.name)
                continue
            st.cons.setdefault(atom.name, []).append((atom, pkg.name))
            if tags:
                st.tags.setdefault(atom.name, set()).update(tags)
            st.queue.append(atom.name)

    def _check_claimed(self, name: str, st: _State) -> None:
        claims = st.claims[name]
        for atom, req in st.cons.get(name, ()):
            match = next(((q, v) for q, v in claims if provides(atom, q, v)), None)
            if match is None:
                q = claims[0][0]
                raise _Fail(q.key[:2], f"{self._chain([req], st)} needs {_atom(atom)}, but "
                            f"{q} ({self._chain([st.parent.get(q.name, REQUESTED)], st)}) "
                            f"provides {name} {claims[0][1] or 'without a version'}.")
            q = match[0]
            if req not in st.reasons[q.name] and req != q.name:
                st.reasons[q.name].append(req)

    def _drop_excluded(self, name: str, st: _State) -> bool:
        """A dependency only excluded packages could meet is dropped (and recorded)."""
        excluded = {p.name for p, _ in self._provisions(name) if p.name in self.exclude}
        if not excluded:
            return False
        for ex in sorted(excluded):
            st.excluded.setdefault(ex, []).extend(r for _, r in st.cons.get(name, ()))
        return True

    def _unmet(self, name: str, st: _State) -> _Fail:
        atom, req = st.cons[name][-1]
        if req == REQUESTED:
            w = next((w for w in self.wants if w.name == name), None)
            where = self._where(w) if w else ""
            return _Fail(None, f"{where}{_atom(atom)} cannot be met: "
                         f"{self._explain(name, atom, st)}")
        return _Fail(st.selected[req].key[:2], f"{self._chain([req], st)} needs {_atom(atom)}, "
                     f"but {self._explain(name, atom, st)}")

    def _explain(self, name: str, atom: Dep, st: _State) -> str:
        provs = self._provisions(name)
        if not provs:
            return f"no package is or provides {name}." + did_you_mean(name, self.u.names())
        bare = [p for p, v in provs if v is None]
        names = ", ".join(sorted({p.name for p in bare}))
        if bare and len(bare) == len(provs) and atom.op:
            return (f"{name} is provided only without a version (by {names}), which cannot "
                    "meet a dependency on a version.")
        if bare and len(bare) == len(provs) and not any(p.provider_priority for p in bare):
            return (f"{name} is provided only without a version, by {names}, and none has a "
                    "provider_priority; name the one you want in contents.packages.")
        parts = []
        for pkg, ver in provs[:6]:
            at = f" (as {name}={ver})" if ver and pkg.name != name else ""
            if pkg.key[:2] in self.forbidden:
                why = "ruled out by an earlier conflict"
            elif pkg.name in self.exclude:
                why = "excluded by the spec"
            else:
                why = "; ".join(f"{r} needs {_atom(a)}" for a, r in st.cons.get(name, ())
                                if a != atom and not provides(a, pkg, ver))
                if not why and provides(atom, pkg, ver):  # fits, yet something else is in the way
                    why = self._clash(pkg, st) or ""
            parts.append(f"{pkg}{at}" + (f" ({why})" if why else ""))
        more = f" and {len(provs) - 6} more" if len(provs) > 6 else ""
        return "available: " + ", ".join(parts) + more + "."

    def _chain(self, reasons: list[str], st: _State) -> str:
        if not reasons or reasons[0] == REQUESTED:
            return "(requested)"
        out: list[str] = []
        name = reasons[0]
        while name != REQUESTED and name not in out and len(out) < 12:
            out.append(name)
            name = st.parent.get(name, REQUESTED)
        return " -> ".join(["(requested)", *(str(st.selected[n]) for n in reversed(out))])

    # -- install_if -------------------------------------------------------------------
    def _install_if(self, st: _State) -> bool:
        """Add every package whose install_if the selection meets; True if any was."""
        names = sorted({m for n in st.claims for m in self.u.triggers.get(n, ())}
                       - set(st.selected) - self.exclude)
        added = False
        for name in names:
            if name in st.selected:
                continue
            cands = []
            for pkg in self.u.versions(name):
                if not pkg.install_if or pkg.key[:2] in self.forbidden or pkg.extra.get("tag"):
                    continue
                if all(any(provides(a, q, v) for q, v in st.claims.get(a.name, ()))
                       for a in pkg.install_if) and self._clash(pkg, st) is None:
                    cands.append((pkg, pkg.version))
            if not cands:
                continue
            pkg, _ = max(cands, key=_provider_key)
            triggers = [q.name for a in pkg.install_if for q, _ in st.claims.get(a.name, ())]
            self._select(pkg, list(dict.fromkeys(triggers)), st)
            self._drain(st)
            added = True
        return added


def _atom(d: Dep, conflict: bool = False) -> str:
    return ("!" if conflict else "") + d.name + (f"{d.op}{d.version}" if d.op else "")


def apk_want(text: str, where: str) -> Want:
    """A contents.packages entry read as an apk world atom (``name``, ``name=1.2-r0``,
    ``name~1.2``, ``name>=1.2``, ``name<2``, ``so:libz.so.1``)."""
    try:
        d = Dependency.parse("".join(text.split()), strict=True)
    except ValueError as e:
        raise SpecError(f"{where}: {text!r} is not an apk package atom ({e}); write name, "
                        "name=VERSION, name~VERSION, name>=VERSION or name<VERSION.") from None
    if d.conflict:
        raise SpecError(f"{where}: {text!r} forbids a package; list it under "
                        "contents.exclude instead.")
    if d.op == "><":
        raise SpecError(f"{where}: {text!r} pins a checksum; pin a version with '=' instead.")
    return ApkWant(d.name, d.op or None, d.version or None, where, tag=d.tag)

"""Which package versions a Debian image contains: apt's dependency resolution.

The algorithm follows apt's (so a lock matches what apt would install on an
empty system, Recommends off): packages are marked depth first in the order
requested; for each dependency group already satisfied by a marked package
nothing happens, otherwise the first alternative that can be satisfied is
marked, real packages before providers of a virtual name. Unlike apt, a
conflict is not left to a separate problem resolver: the choice that led to
it is forbidden and resolution restarts, which is deterministic and, for the
small closures of container images, cheap.
"""

from __future__ import annotations

from assembler.errors import ResolveError
from assembler.packages.resolution import Resolution, Want
from assembler.packages.universe import Dep, Package, Universe, relation_holds
from assembler.spec.document import did_you_mean

PRIORITY_RANK = {"required": 0, "important": 1, "standard": 2, "optional": 3, "extra": 4}
MAX_RESTARTS = 200


class _Conflict(Exception):
    def __init__(self, culprit: tuple[int, str], message: str) -> None:
        super().__init__(message)
        self.culprit = culprit
        self.message = message


class _Unsatisfiable(Exception):
    def __init__(self, chain: list[str], message: str) -> None:
        super().__init__(message)
        self.chain = chain
        self.message = message


class AptResolver:
    def __init__(self, universe: Universe, wants: list[Want], exclude: set[str] | None = None,
                 include_essential: bool = False, prefer: dict[str, str] | None = None) -> None:
        self.u = universe
        # name -> version to take when available (the lock aligns architectures with it).
        self.prefer = prefer or {}
        self.wants = wants
        self.exclude = set(exclude or ())
        self.include_essential = include_essential
        self.requested = {w.name for w in wants}
        self.pins: dict[str, Want] = {w.name: w for w in wants if w.op}

    # -- candidates ------------------------------------------------------------------
    def _ok_version(self, pkg: Package, op: str | None, version: str | None) -> bool:
        if not op or version is None:
            return True
        return _satisfies(self.u, pkg.version, op, version)

    def candidate(self, name: str) -> Package | None:
        """The version apt would pick: the highest, unless the spec pins this package."""
        versions = self.u.versions(name)
        pin = self.pins.get(name)
        preferred = self.prefer.get(name)
        if preferred is not None:
            for p in versions:
                if p.version == preferred and (pin is None or
                                               self._ok_version(p, pin.op, pin.version)):
                    return p
        for p in versions:
            if pin is None or self._ok_version(p, pin.op, pin.version):
                return p
        return None

    def _satisfiers(self, dep: Dep) -> list[Package]:
        """Packages that would satisfy one alternative, in preference order."""
        out: list[Package] = []
        cand = self.candidate(dep.name)
        if cand is not None and self._ok_version(cand, dep.op, dep.version) and \
                self._arch_ok(cand, dep):
            out.append(cand)
        providers = []
        for p in self.u.providers(dep.name):
            if p is not self.candidate(p.name):
                continue  # like apt, only a package's candidate version provides
            for vname, vver in p.provides:
                if vname != dep.name:
                    continue
                if dep.op and (vver is None or not _satisfies(self.u, vver, dep.op,
                                                             dep.version or "")):
                    continue
                providers.append(p)
                break
        providers.sort(key=self._provider_rank)
        for p in providers:
            if p not in out:
                out.append(p)
        return out

    def _arch_ok(self, pkg: Package, dep: Dep) -> bool:
        if dep.arch == "any":
            return pkg.multi_arch == "allowed"
        return True

    def _provider_rank(self, p: Package) -> tuple:
        return (0 if p.name in self.requested else 1,
                PRIORITY_RANK.get(p.priority, 5), -p.provider_priority, p.name)

    def _satisfied_by(self, dep: Dep, pkg: Package) -> bool:
        if pkg.name == dep.name:
            return self._ok_version(pkg, dep.op, dep.version) and self._arch_ok(pkg, dep)
        for vname, vver in pkg.provides:
            if vname == dep.name:
                if not dep.op:
                    return True
                if vver is not None and _satisfies(self.u, vver, dep.op, dep.version or ""):
                    return True
        return False

    def _conflicts(self, a: Package, b: Package) -> bool:
        return any(self._satisfied_by(d, b) for d in a.conflicts if b.name != a.name)

    # -- the search ------------------------------------------------------------------
    def resolve(self) -> Resolution:
        forbidden: set[tuple[int, str]] = set()
        last: _Conflict | None = None
        for _ in range(MAX_RESTARTS):
            try:
                return self._attempt(forbidden)
            except _Conflict as c:
                if c.culprit in forbidden or c.culprit[0] < 0:
                    raise ResolveError(c.message) from None
                forbidden.add(c.culprit)
                last = c
            except _Unsatisfiable as e:
                if last is not None:
                    raise ResolveError(f"{e.message} (after avoiding: {last.message})") from None
                raise ResolveError(e.message) from None
        raise ResolveError("dependency resolution did not settle after "
                           f"{MAX_RESTARTS} attempts; last problem: {last.message if last else ''}")

    def _attempt(self, forbidden: set[tuple[int, str]]) -> Resolution:
        selected: dict[str, Package] = {}
        reasons: dict[str, list[str]] = {}
        excluded: dict[str, list[str]] = {}
        choice_counter = [0]

        def mark(pkg: Package, reason: str, chain: list[str], choice: tuple[int, str]) -> None:
            if pkg.name in selected:
                if reason not in reasons[pkg.name]:
                    reasons[pkg.name].append(reason)
                return
            for other in selected.values():
                if self._conflicts(pkg, other) or self._conflicts(other, pkg):
                    raise _Conflict(choice, f"{' -> '.join([*chain, str(pkg)])} conflicts with "
                                    f"{other} (needed by "
                                    f"{', '.join(reasons[other.name])})")
            selected[pkg.name] = pkg
            reasons[pkg.name] = [reason]
            for group in pkg.depends:
                if any(self._satisfied_by(d, s) for d in group
                       for s in self._selected_for(d, selected)):
                    for d in group:
                        for s in self._selected_for(d, selected):
                            if self._satisfied_by(d, s) and pkg.name not in reasons[s.name]:
                                reasons[s.name].append(pkg.name)
                                break
                    continue
                options: list[Package] = []
                skipped_excluded = []
                for d in group:
                    if d.name in self.exclude:  # excluding a virtual name drops it whole
                        skipped_excluded.append(d.name)
                        continue
                    for cand in self._satisfiers(d):
                        if cand.name in self.exclude:
                            skipped_excluded.append(cand.name)
                        elif cand not in options:
                            options.append(cand)
                choice_counter[0] += 1
                point = choice_counter[0]
                options = [o for o in options if (point, o.name) not in forbidden]
                if not options:
                    if skipped_excluded:
                        for name in skipped_excluded:
                            excluded.setdefault(name, []).append(pkg.name)
                        continue
                    alts = " | ".join(str(d) for d in group)
                    raise _Unsatisfiable(chain, f"{' -> '.join([*chain, str(pkg)])} needs "
                                         f"{alts}, but {self._explain(group)}")
                mark(options[0], pkg.name, [*chain, str(pkg)], (point, options[0].name))

        wants = list(self.wants)
        if self.include_essential:
            names = [n for n in self.u.essential_names()
                     if (c := self.candidate(n)) is not None and c.essential]
            wants += [Want(n, where="include-essential") for n in names
                      if n not in self.requested and n not in self.exclude]
        for w in wants:
            pkg = self._request(w)
            mark(pkg, "essential" if w.where == "include-essential" else "requested",
                 [], (-1, w.name))
        return Resolution(self.u.arch, selected, reasons, excluded)

    def _selected_for(self, dep: Dep, selected: dict[str, Package]) -> list[Package]:
        out = []
        s = selected.get(dep.name)
        if s is not None:
            out.append(s)
        for p in self.u.providers(dep.name):
            s = selected.get(p.name)
            if s is not None and s not in out:
                out.append(s)
        return out

    def _request(self, w: Want) -> Package:
        where = f"{w.where}: " if w.where else ""
        if w.name in self.exclude:
            raise _Unsatisfiable([], f"{where}{w.name} is both requested and excluded.")
        versions = self.u.versions(w.name)
        if not versions:
            providers = sorted({p.name for p in self.u.providers(w.name)})
            if providers:
                raise _Unsatisfiable([], f"{where}{w.name!r} is a virtual package provided by "
                                     + ", ".join(providers) + "; name the one you want.")
            raise _Unsatisfiable([], f"{where}no package named {w.name!r} in the archive for "
                                 f"{self.u.arch}." + did_you_mean(w.name, self.u.names()))
        pkg = self.candidate(w.name)
        if pkg is None:
            avail = ", ".join(p.version for p in versions)
            raise _Unsatisfiable([], f"{where}{w} cannot be met: available versions of "
                                 f"{w.name} are {avail}.")
        return pkg

    def _explain(self, group: list[Dep]) -> str:
        parts = []
        for d in group:
            versions = self.u.versions(d.name)
            if d.name in self.exclude:
                parts.append(f"{d.name} is excluded by the spec")
            elif not versions and not self.u.providers(d.name):
                parts.append(f"no package {d.name} exists")
            elif d.arch == "any" and versions and versions[0].multi_arch != "allowed":
                parts.append(f"{d.name} is not Multi-Arch: allowed")
            elif versions:
                cand = self.candidate(d.name)
                have = cand.version if cand else "none"
                pin = " (pinned by the spec)" if d.name in self.pins else ""
                parts.append(f"only {d.name} {have}{pin} is available")
            else:
                parts.append(f"no provider of {d.name} satisfies it")
        return "; ".join(parts) + "."


def _satisfies(u: Universe, have: str, op: str, want: str) -> bool:
    a, b = u.version_key(have), u.version_key(want)
    return relation_holds((a > b) - (a < b), op)

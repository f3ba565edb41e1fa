"""The lockfile: exactly which package files an image is built from.

It names archives, never mirrors (archive-relative `pool/...` paths plus
sha256), so a lock works against any mirror. Output is stable: sorted keys
in a fixed order, one package per block, so diffs read well in review.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from assembler.cache import atomic_write
from assembler.distro.apko import resolve as resolve_apko
from assembler.distro.definition import Distro
from assembler.errors import MalformedError, ResolveError, SpecError
from assembler.lock.apkolock import (
    apk_arch,
    check_same,
    looks_like_apko_lock,
    preferences,
    read_pins,
)
from assembler.lock.model import (
    LOCK_VERSION,
    ArchLock,
    Lock,
    LockedIndex,
    LockedPackage,
    LockProblem,
)
from assembler.options import Options
from assembler.packages.resolution import Resolution, Want
from assembler.packages.universe import Universe
from assembler.packages.universes import Universes
from assembler.progress import info
from assembler.slices.catalog import Catalog
from assembler.spec.document import Spec, did_you_mean

# Only what changes the package set makes a lock stale: editing cmd or env does not.
INPUT_KEYS = ("distro", "archs", "contents")
# Lists under contents that are sets: their order means nothing, so it must not stale a lock.
UNORDERED = ("packages", "exclude", "strip")


def lock_path(spec_path: Path) -> Path:
    return spec_path.with_name(spec_path.stem + ".lock.json")


def inputs_digest(spec: Spec, ordered: bool = False) -> str:
    """What the lock depends on, hashed. `ordered`: the digest as earlier versions wrote
    it (list order counted), which locks committed then still carry."""
    raw = spec.raw or {}
    inputs = {k: raw.get(k) for k in INPUT_KEYS}
    inputs["archs"] = spec.archs if ordered else sorted(spec.archs)
    contents = inputs["contents"]
    if isinstance(contents, dict) and not ordered:
        inputs["contents"] = {
            k: sorted(v, key=lambda x: json.dumps(x, sort_keys=True, default=str))
            if k in UNORDERED and isinstance(v, list) else v
            for k, v in contents.items()}
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def build_lock(spec: Spec, resolutions: dict[str, Resolution],
               indexes: dict[str, list[dict]]) -> Lock:
    archs: dict[str, ArchLock] = {}
    for arch in sorted(resolutions):
        res = resolutions[arch]
        packages = [LockedPackage(
            name=p.name, version=p.version, arch=p.arch, archive=p.archive, suite=p.suite,
            filename=p.filename, size=p.size, sha256=p.sha256, source=p.source,
            reason=sorted(res.reasons.get(p.name, [])),
            slices=sorted(res.slices[p.name]) if p.name in res.slices else None,
            # format-specific identity (apk: repository, checksum, datahash)
            extra=dict(p.extra.get("lock", {}))) for p in res.ordered()]
        archs[arch] = ArchLock(
            indexes=[LockedIndex(dict(i)) for i in indexes[arch]], packages=packages,
            excluded={k: sorted(set(v)) for k, v in sorted(res.excluded.items())})
    return Lock(spec_file=spec.path.name, inputs_digest=inputs_digest(spec),
                distro=spec.distro, archs=archs)


def write_lock(path: Path, lock: Lock) -> bool:
    """Write atomically; returns False (and leaves the file alone) if nothing changed."""
    text = lock.dumps()
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    atomic_write(path, text.encode())
    return True


def read_lock(path: Path) -> Lock:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: no lockfile; run 'assemble lock' first.") from None
    except json.JSONDecodeError as e:
        raise SpecError(f"{path}:{e.lineno}: the lockfile is not valid JSON ({e.msg}); "
                        "restore it from git or run 'assemble lock --update'.") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path}: the lockfile is not UTF-8 text; restore it from git or run "
                        "'assemble lock --update'.") from None
    except OSError as e:
        raise SpecError(f"{path}: cannot read the lockfile ({e.strerror}).") from None
    if not isinstance(data, dict) or data.get("lockfile-version") != LOCK_VERSION:
        raise SpecError(f"{path}: unsupported lockfile version "
                        f"{data.get('lockfile-version') if isinstance(data, dict) else '?'}; "
                        f"this assembler writes version {LOCK_VERSION}. Run "
                        "'assemble lock --update'.")
    try:
        return Lock.from_json(data)
    except LockProblem as e:
        raise SpecError(f"{path}: the lockfile is damaged ({e}); restore it from git "
                        "or run 'assemble lock --update'.") from None


def staleness(lock: Lock, spec: Spec) -> str | None:
    """Why the lock no longer matches the spec, or None if it does."""
    if lock.inputs_digest not in (inputs_digest(spec), inputs_digest(spec, ordered=True)):
        return "the spec's distro, archs or contents changed since it was locked"
    if sorted(lock.archs) != sorted(spec.archs):
        return "the spec's archs differ from the lock's"
    return None


def why(lock: Lock, arch: str, name: str) -> list[list[str]]:
    """Chains of package names from a request down to `name`, shortest first."""
    reasons = {p.name: p.reason for p in lock.archs[arch].packages}
    chains: list[list[str]] = []

    def walk(n: str, path: list[str]) -> None:
        if n in path or len(chains) >= 10:
            return
        for r in reasons.get(n, []):
            if r in ("requested", "essential"):
                chains.append([f"({r})", *reversed([*path, n])])
            else:
                # A slice name (pkg_slice) stands for its package in the chain.
                walk(r.partition("_")[0], [*path, n])

    walk(name, [])
    return sorted(chains, key=len)


def load_catalog(spec: Spec, distro: Distro) -> Catalog:
    if distro.slices_dir is None or not distro.slices_dir.is_dir():
        line = next(r.line for r in spec.packages if r.slice)
        raise SpecError(f"{spec.where(line)}: {spec.distro} has no slice catalog; name whole "
                        "packages instead.")
    return Catalog.open(distro.slices_dir)


def _add_slices(spec: Spec, universes: Universes, catalog: Catalog, universe: Universe,
                arch: str, prefer: dict[str, str], res: Resolution) -> None:
    """Slices bring their essential slices, never their package's Depends; a package
    the whole-package closure already has is taken whole."""
    requests = [r for r in spec.packages if r.slice]
    for r in requests:
        catalog.get(f"{r.name}_{r.slice}", spec.where(r.line))
    requested = {f"{r.name}_{r.slice}" for r in requests}
    chosen = catalog.closure(sorted(requested), arch)
    needed_by: dict[str, set[str]] = {}
    for s in chosen:
        for e in s.essentials(arch):
            if not e.startswith(s.package + "_"):   # a package's own slices are no reason
                needed_by.setdefault(e, set()).add(s.full)
    pins = [Want(r.name, r.op, r.version, spec.where(r.line), r.arch) for r in requests if r.op]
    candidate = universes.slice_picker(universe, pins, prefer, spec.where(requests[0].line))
    for s in chosen:
        if s.package in res.packages and s.package not in res.slices:
            continue
        pkg = res.packages.get(s.package) or candidate(s.package)
        if pkg is None:
            raise ResolveError(f"cannot resolve {spec.path} for {arch}: slice {s.full} "
                               f"({s.where()}) is of package {s.package}, which the archive "
                               f"does not have in a version the spec allows for {arch}.")
        res.packages[s.package] = pkg
        res.slices.setdefault(s.package, []).append(s.name)
        why = {"requested"} if s.full in requested else set()
        res.reasons[s.package] = sorted(set(res.reasons.get(s.package, [])) | why
                                        | needed_by.get(s.full, set()))


def _resolve_arch(spec: Spec, universes: Universes, universe: Universe, arch: str,
                  prefer: dict[str, str], catalog: Catalog | None = None) -> Resolution:
    wants = universes.wants()
    exclude = {e.value for e in spec.exclude}
    for e in spec.exclude:
        if e.value not in universe:
            raise SpecError(f"{spec.where(e.line)}: excluded package {e.value!r} does not "
                            "exist in the archive." + did_you_mean(e.value, universe.names()))
    try:
        res = universes.resolver(universe, wants, exclude, spec.include_essential,
                                prefer).resolve()
    except ResolveError as e:
        raise ResolveError(f"cannot resolve {spec.path} for {arch}: {e.message}") from None
    if catalog is not None:
        _add_slices(spec, universes, catalog, universe, arch, prefer, res)
    return res


def _common_versions(resolutions: dict[str, Resolution],
                     universes: dict[str, Universe]) -> dict[str, str]:
    """For packages locked at different versions per arch: the highest version every one
    of those archs offers (none when the archive has no common version, e.g. binNMUs)."""
    out: dict[str, str] = {}
    names = {n for r in resolutions.values() for n in r.packages}
    for name in sorted(names):
        archs = [a for a, r in resolutions.items() if name in r.packages]
        if len({resolutions[a].packages[name].version for a in archs}) < 2:
            continue
        offered = [{p.version for p in universes[a].versions(name)} for a in archs]
        common = set.intersection(*offered)
        if common:
            key = universes[archs[0]].version_key
            out[name] = max(common, key=key)
    return out


# Each round can only add preferences, and a closure is small; this bounds odd archives.
ALIGN_ROUNDS = 5


def resolve_spec(spec: Spec, universes: Universes,
                 pins: dict[str, dict[str, str]] | None = None) -> Lock:
    """Resolve every arch of `spec` and return the lock document.

    Like apko, architectures get the same package versions where the archive
    allows: when the highest versions differ (one arch built a new upload
    first), every arch takes the highest version they all offer. `pins` (arch ->
    name -> version, an imported lock's) are preferred over that.
    """
    catalog = load_catalog(spec, universes.distro) if any(r.slice for r in spec.packages) \
        else None
    if catalog is not None:   # a slice typo needs no index: say so before fetching any
        requests = [r for r in spec.packages if r.slice]
        for r in requests:
            catalog.get(f"{r.name}_{r.slice}", spec.where(r.line))
        for arch in spec.archs:
            catalog.closure(sorted({f"{r.name}_{r.slice}" for r in requests}), arch)
    per_arch = {arch: universes.universe(arch) for arch in spec.archs}
    prefer: dict[str, str] = {}

    def preferred(arch: str) -> dict[str, str]:
        return {**prefer, **(pins or {}).get(arch, {})}

    resolutions = {arch: _resolve_arch(spec, universes, u, arch, preferred(arch), catalog)
                   for arch, u in per_arch.items()}
    for _ in range(ALIGN_ROUNDS if len(per_arch) > 1 else 0):
        common = _common_versions(resolutions, per_arch)
        if all(prefer.get(k) == v for k, v in common.items()):
            break
        prefer.update(common)
        resolutions = {arch: _resolve_arch(spec, universes, u, arch, preferred(arch), catalog)
                       for arch, u in per_arch.items()}
    for arch, res in resolutions.items():
        universes.complete(arch, res)
    indexes = {arch: u.sources for arch, u in per_arch.items()}
    lock = build_lock(spec, resolutions, indexes)
    # The same checks as a lock read from disk: a fresh one goes straight to fetch.
    try:
        Lock.from_json(lock.to_json())
    except LockProblem as e:
        raise MalformedError(f"resolving {spec.path} gave an unusable lock ({e}); an index "
                             "of its archives holds a malformed value. Nothing was written.") \
            from None
    return lock


def load_or_lock(spec: Spec, options: Options, update: bool = False,
                 locked: bool = False, apko_lock: Path | None = None) -> tuple[Lock, bool]:
    """The lock for `spec`: the file when fresh, else a new resolution (written). apko's
    lock (`apko_lock`, or found where ours goes: apko.yaml's is apko.lock.json too)
    is the starting point instead: its packages, verified again."""
    resolve_apko(spec)
    path = lock_path(spec.path)
    if apko_lock is None and not update and path.exists() and looks_like_apko_lock(path):
        apko_lock = path
    if apko_lock is not None:
        if locked:
            raise SpecError(f"{apko_lock} is apko's lock; run 'assemble lock' (without "
                            "--locked) to import it.")
        return import_apko_lock(spec, options, apko_lock), True
    if not update and path.exists():
        lock = read_lock(path)
        reason = staleness(lock, spec)
        if reason is None:
            return lock, False
        if locked:
            raise SpecError(f"{path} is stale: {reason}. Run 'assemble lock' (without "
                            "--locked) to update it.")
        info(f"{path} is stale ({reason}); re-resolving.", options.quiet)
    elif locked:
        raise SpecError(f"{path} does not exist and --locked was given; run 'assemble lock'.")
    lock = resolve_spec(spec, Universes(spec, options))
    changed = write_lock(path, lock)
    return lock, changed


def import_apko_lock(spec: Spec, options: Options, source: Path) -> Lock:
    """Resolve with apko's pins, check the result is apko's package set, write our lock."""
    if not source.is_file():
        raise SpecError(f"{source}: no such apko lock file.")
    pins = read_pins(source)
    archs = {a: apk_arch(a, source) for a in spec.archs}
    lock = resolve_spec(spec, Universes(spec, options), preferences(pins, archs, source))
    check_same(lock, pins, archs, source)
    path = lock_path(spec.path)
    write_lock(path, lock)
    n = sum(len(v) for v in pins.values())
    info(f"imported apko's lock {source}: the same {n} packages, verified again; "
         f"{path} is now assembler's lock" + (" (apko's is in your version control)."
                                                if source.resolve() == path.resolve() else "."),
         options.quiet)
    return lock

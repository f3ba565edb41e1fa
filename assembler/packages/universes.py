"""From a spec to package universes: its distro, its extra repositories, its mirrors.

The distro's package format (packages/format.py) does the loading, request
parsing and resolution; every stage after this works on the format-neutral
Universe and Resolution.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from assembler.distro import snapshot
from assembler.distro.apko import resolve as resolve_apko
from assembler.distro.apko import trust as trust_apko_keyring
from assembler.distro.definition import Archive, Distro, load_distro, with_components
from assembler.distro.keyring import cached_key
from assembler.distro.mirror import resolve_mirrors
from assembler.errors import SpecError
from assembler.options import Options
from assembler.packages.format import format_for
from assembler.packages.resolution import Resolution, Resolver, Want
from assembler.packages.universe import IndexLoader, Universe
from assembler.progress import Progress, info
from assembler.spec.document import Spec


def distro_for(spec: Spec, options: Options | None = None, quiet: bool = False) -> Distro:
    """The spec's distro with its own repositories added; keys named by URL are fetched
    (once: distro/keyring.py) into `options.cache`. Its notes are printed unless `quiet`
    (or `options.quiet`)."""
    resolve_apko(spec)
    try:
        distro = load_distro(spec.distro, spec.path.parent)
    except SpecError as e:
        raise SpecError(f"{spec.where(spec.distro_line)}: {e.message}") from None
    distro = with_components(distro, spec.components)
    # An archive for other architectures only (Ubuntu's ports) needs no mirror here.
    distro.archives = [a for a in distro.archives if any(a.serves(x) for x in spec.archs)]
    for note in distro.extra.get("notes", []):
        info(f"note: {distro.path}: {note}", quiet or (options is not None and options.quiet))
    for repo in spec.repositories:
        distro.archives.append(Archive(
            name=repo.name, suites=repo.suites, components=repo.components,
            available_components=repo.components, keys=[Path(k) for k in repo.keys],
            url=repo.url, host_suite="(?!)", tag=repo.tag, key_urls=list(repo.key_urls)))
    trust_apko_keyring(spec, distro)
    for archive in distro.archives:
        if archive.key_urls:
            if options is None:
                raise SpecError(f"{spec.path}: keys given by URL need the cache; this command "
                                "cannot fetch them.")
            archive.keys += [cached_key(u, options.cache, options.offline)
                             for u in archive.key_urls]
    return distro


# Loaders and their universes, shared inside `shared_indexes()` by every spec that reads
# the same indexes (`assemble build A.yaml B.yaml ...`): an index is verified and parsed
# once, not once per spec. Only there: a long-lived process (a test run) must see an
# archive that changed.
_SHARED: dict[str, tuple[IndexLoader, dict[str, Universe]]] | None = None


@contextmanager
def shared_indexes() -> Iterator[None]:
    """Within the block, specs with the same distro, mirrors and cache share their indexes."""
    global _SHARED
    outer, _SHARED = _SHARED, _SHARED if _SHARED is not None else {}
    try:
        yield
    finally:
        _SHARED = outer


class Universes:
    """Loads and remembers one Universe per architecture, in the distro's format."""

    def __init__(self, spec: Spec, options: Options) -> None:
        self.spec = spec
        self.options = options
        self.distro = distro_for(spec, options)
        self.format = format_for(self.distro)
        self.mirrors = resolve_mirrors(self.distro.archives, options.mirrors, spec.mirrors,
                                       str(spec.path))
        self.snapshots = self._snapshot_archives()
        self.progress = Progress(options.quiet)
        # Everything the loader is made from (the distro's repr has every archive, key
        # and component the spec added): equal keys read equal indexes.
        key = repr((self.distro, sorted(self.mirrors.items()), sorted(self.snapshots.items()),
                    str(options.cache.root), options.offline, options.quiet))
        shared = _SHARED if _SHARED is not None else {}
        if key not in shared:
            loader = self.format.index_loader(self.distro, self.mirrors, options.cache,
                                              options.offline, self.progress, self.snapshots)
            shared[key] = (loader, {})
        self._loader, self._universes = shared[key]

    def _snapshot_archives(self) -> dict[str, str]:
        """lock --snapshot: the distro's archives are read from that snapshot, not the
        mirrors (extra repositories have no snapshots and keep theirs)."""
        ts = self.options.snapshot
        if ts is None:
            return {}
        if not self.format.has_snapshots:
            raise SpecError(f"--snapshot: {self.spec.distro}'s {self.format.name} archives "
                            "have no snapshot archives; only Debian's do.")
        base = snapshot.require_base(snapshot.snapshot_base(
            self.options.snapshot_mirror, self.spec.snapshot_mirror, str(self.spec.path)))
        out = {}
        for a in self.distro.archives:
            if a.url is None:
                out[a.name] = ts
                self.mirrors[a.name] = snapshot.archive_url(base, a.name, ts)
        return out

    @property
    def timings(self):
        return self._loader.timings

    def universe(self, arch: str) -> Universe:
        if arch not in self._universes:
            self._universes[arch] = self._loader.load(arch)
        return self._universes[arch]

    def wants(self) -> list[Want]:
        """The spec's contents.packages as requests, read in the distro's own syntax."""
        return self.format.wants(self.spec)

    def resolver(self, universe: Universe, wants: list[Want], exclude: set[str],
                 include_essential: bool, prefer: dict[str, str] | None = None) -> Resolver:
        """The resolver with the distro's semantics (apt's or apk's)."""
        return self.format.resolver(universe, wants, exclude, include_essential, prefer)

    def slice_picker(self, universe: Universe, pins: list[Want], prefer: dict[str, str],
                     where: str):
        return self.format.slice_picker(universe, pins, prefer, where)

    def complete(self, arch: str, resolution: Resolution) -> None:
        """Fill in what the lock needs but the index does not say."""
        self.format.complete(self._loader, arch, resolution)

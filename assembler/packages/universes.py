"""From a spec to package universes: its distro, its extra repositories, its mirrors.

This is the one place that knows which package format a distro uses; every
stage after it works on the format-neutral Universe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from assembler.cache import Cache
from assembler.distro.definition import Archive, Distro, load_distro, with_components
from assembler.distro.mirror import resolve_mirrors
from assembler.errors import SpecError
from assembler.packages.resolve import Resolution, Resolver, Want
from assembler.packages.universe import Universe
from assembler.progress import Progress
from assembler.spec.document import Spec

if TYPE_CHECKING:
    from assembler.alpine.solver import ApkResolver

DEBIAN_OPS = (">=", "<=", "<<", ">>", "=", "<", ">")


@dataclass
class Options:
    cache: Cache
    mirrors: dict[str, str] = field(default_factory=dict)   # from --mirror
    offline: bool = False
    quiet: bool = False


def distro_for(spec: Spec) -> Distro:
    try:
        distro = load_distro(spec.distro, spec.path.parent)
    except SpecError as e:
        raise SpecError(f"{spec.where(spec.distro_line)}: {e.message}") from None
    distro = with_components(distro, spec.components)
    for repo in spec.repositories:
        distro.archives.append(Archive(
            name=repo.name, suites=repo.suites, components=repo.components,
            available_components=repo.components, keys=[Path(k) for k in repo.keys],
            url=repo.url, host_suite="(?!)"))
    return distro


class Archives:
    """Loads and remembers one Universe per architecture."""

    def __init__(self, spec: Spec, options: Options) -> None:
        self.spec = spec
        self.options = options
        self.distro = distro_for(spec)
        self.mirrors = resolve_mirrors(self.distro.archives, options.mirrors, spec.mirrors,
                                       str(spec.path))
        self.progress = Progress(options.quiet)
        self._loader = self._make_loader()
        self._universes: dict[str, Universe] = {}

    def _make_loader(self):  # noqa: ANN202 - one of the format loaders
        if self.distro.family == "debian":
            from assembler.debian.archive import DebianIndexLoader

            return DebianIndexLoader(self.distro, self.mirrors, self.options.cache,
                                     offline=self.options.offline, progress=self.progress)
        if self.distro.family == "alpine":
            from assembler.alpine.repository import AlpineIndexLoader

            return AlpineIndexLoader(self.distro, self.mirrors, self.options.cache,
                                     offline=self.options.offline, progress=self.progress)
        raise SpecError(f"{self.distro.path}: distro family {self.distro.family!r} is not "
                        "supported yet.")

    @property
    def timings(self):  # noqa: ANN201
        return self._loader.timings

    def universe(self, arch: str) -> Universe:
        if arch not in self._universes:
            self._universes[arch] = self._loader.load(arch)
        return self._universes[arch]

    def wants(self) -> list[Want]:
        """The spec's contents.packages as requests, read in the distro's own syntax."""
        out = []
        for r in self.spec.packages:
            where = self.spec.where(r.line)
            if self.distro.family == "alpine":
                from assembler.alpine.solver import apk_want

                out.append(apk_want(r.text or r.name, where))
                continue
            if r.slice:
                continue  # slices are chosen from the catalog (lock._add_slices)
            if r.op and r.op not in DEBIAN_OPS:
                raise SpecError(f"{where}: {r.op!r} is not a Debian version relation; use one "
                                "of " + ", ".join(DEBIAN_OPS) + ".")
            out.append(Want(r.name, r.op, r.version, where, r.arch))
        return out

    def resolver(self, universe: Universe, wants: list[Want], exclude: set[str],
                 include_essential: bool, prefer: dict[str, str] | None = None,
                 ) -> Resolver | ApkResolver:
        """The resolver with the distro's semantics (apt's or apk's)."""
        if self.distro.family == "alpine":
            from assembler.alpine.solver import ApkResolver

            return ApkResolver(universe, wants, exclude, include_essential, prefer)
        return Resolver(universe, wants, exclude, include_essential, prefer)

    def complete(self, arch: str, resolution: Resolution) -> None:
        """Fill in what the lock needs but the index does not say (apk: the file's
        sha256 and datahash, learnt by downloading and verifying the package)."""
        if self.distro.family == "alpine":
            self._loader.complete(arch, resolution.ordered())

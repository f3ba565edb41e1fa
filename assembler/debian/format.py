"""The deb format (Debian, Ubuntu) behind packages/format.PackageFormat."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from assembler.cache import Cache
from assembler.debian import dpkgdb
from assembler.debian.archive import DebianIndexLoader
from assembler.debian.resolver import AptResolver
from assembler.debian.version import version_key
from assembler.distro.definition import Distro
from assembler.errors import SpecError
from assembler.lock.model import LockedIndex, LockedPackage
from assembler.packages.installed import Installed
from assembler.packages.resolution import Resolution, Want
from assembler.packages.universe import IndexLoader, Package, Universe
from assembler.progress import Progress
from assembler.rootfs.tree import Tree
from assembler.spec.document import Spec

if TYPE_CHECKING:
    from assembler.debian.packagedb import StatusD

DEBIAN_OPS = (">=", "<=", "<<", ">>", "=", "<", ">")


class DebFormat:
    name = "deb"
    file_noun = ".debs"
    has_snapshots = True

    def index_loader(self, distro: Distro, mirrors: dict[str, str], cache: Cache,
                     offline: bool, progress: Progress,
                     snapshots: dict[str, str] | None = None) -> IndexLoader:
        return DebianIndexLoader(distro, mirrors, cache, offline=offline, progress=progress,
                                 snapshots=snapshots)

    def wants(self, spec: Spec) -> list[Want]:
        out = []
        for r in spec.packages:
            if r.slice:
                continue  # slices are chosen from the catalog (lock/lockfile.py)
            where = spec.where(r.line)
            if r.op and r.op not in DEBIAN_OPS:
                raise SpecError(f"{where}: {r.op!r} is not a Debian version relation; use one "
                                "of " + ", ".join(DEBIAN_OPS) + ".")
            if r.version:
                try:
                    version_key(r.version)
                except ValueError:
                    raise SpecError(f"{where}: {r.version!r} is not a Debian version: an epoch "
                                    "(before ':') is a whole number, as in 1:2.3-4.") from None
            out.append(Want(r.name, r.op, r.version, where, r.arch))
        return out

    def resolver(self, universe: Universe, wants: list[Want], exclude: set[str],
                 include_essential: bool, prefer: dict[str, str] | None) -> AptResolver:
        return AptResolver(universe, wants, exclude, include_essential, prefer)

    def slice_picker(self, universe: Universe, pins: list[Want], prefer: dict[str, str],
                     where: str) -> Callable[[str], Package | None]:
        return AptResolver(universe, pins, set(), False, prefer).candidate

    def complete(self, loader: IndexLoader, arch: str, resolution: Resolution) -> None:
        """The Packages index already says everything the lock needs."""

    def reads_package_file(self, cache: Cache, sha256: str) -> bool:
        # only to fill its unpacked entry: a warm build reads that instead
        from assembler.fetch.unpacked import is_unpacked

        return not is_unpacked(cache, sha256)

    def install(self, spec: Spec, packages: list[LockedPackage], files: Mapping[str, Path],
                distro: Distro, arch: str, cache: Cache, progress: Progress,
                lock_file: str) -> tuple[Tree, list[str]]:
        from assembler.debian.install import build_tree

        return build_tree(spec, packages, files, distro.merged_usr, cache, progress, arch,
                          distro.slices_dir, lock_file, distro)

    def is_database(self, path: str) -> bool:
        return dpkgdb.is_database(path)

    def read_installed(self, files: dict[str, bytes]) -> tuple[list[Installed], list[str]]:
        return dpkgdb.read_installed(files)

    def providers(self, distro: Distro, mirrors: dict[str, str], cache: Cache, arch: str,
                  offline: bool) -> Callable[[str], str | None]:
        from assembler.debian.contents import LibraryIndex

        return LibraryIndex(distro, mirrors, cache, arch, offline)

    version_file = "etc/debian_version"

    def release_version(self, distro: Distro, indexes: list[LockedIndex]) -> str:
        from assembler.debian.packagedb import release_version

        # Ubuntu's ports archive (arm64 and the rest) serves the same release under the
        # same suite: an arch's lock has its Release, not the primary archive's.
        suite = distro.archives[0].suites[0]
        for archive in distro.archives:
            if archive.suites and archive.suites[0] == suite:
                found = release_version(archive.name, suite, indexes)
                if found:
                    return found
        return ""

    def distro_qualifier(self, os_id: str, version_id: str) -> str:
        return f"{os_id}-{version_id}" if os_id and version_id else ""

    def package_db(self, tree: Tree) -> StatusD:
        from assembler.debian.packagedb import StatusD

        return StatusD(tree)



FORMAT = DebFormat()

"""The apk format (Alpine, Wolfi) behind packages/format.PackageFormat."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from assembler.alpine import install, installed
from assembler.alpine.repository import (
    AlpineIndexLoader,
    apk_arch,
    repository_path,
    repository_url,
    trust_for,
)
from assembler.alpine.solver import ApkResolver, apk_want
from assembler.cache import Cache
from assembler.distro.definition import Distro
from assembler.errors import SpecError
from assembler.fetch.boundedtar import Limits
from assembler.lock.model import LockedIndex, LockedPackage
from assembler.packages.installed import Installed
from assembler.packages.resolution import Resolution, Want
from assembler.packages.universe import IndexLoader, Package, Universe
from assembler.progress import Progress
from assembler.rootfs.finish import finish_tree
from assembler.rootfs.strip import strip_patterns, stripped
from assembler.rootfs.tree import Tree
from assembler.spec.document import Spec

if TYPE_CHECKING:
    from assembler.alpine.packagedb import InstalledDb


class ApkFormat:
    name = "apk"
    file_noun = ".apks"
    has_snapshots = False

    def index_loader(self, distro: Distro, mirrors: dict[str, str], cache: Cache,
                     offline: bool, progress: Progress,
                     snapshots: dict[str, str] | None = None) -> IndexLoader:
        # No snapshot archives for apk (has_snapshots): universes never passes any.
        return AlpineIndexLoader(distro, mirrors, cache, offline=offline, progress=progress)

    def wants(self, spec: Spec) -> list[Want]:
        return [apk_want(r.text or r.name, spec.where(r.line)) for r in spec.packages]

    def resolver(self, universe: Universe, wants: list[Want], exclude: set[str],
                 include_essential: bool, prefer: dict[str, str] | None) -> ApkResolver:
        return ApkResolver(universe, wants, exclude, include_essential, prefer)

    def slice_picker(self, universe: Universe, pins: list[Want], prefer: dict[str, str],
                     where: str) -> Callable[[str], Package | None]:
        raise SpecError(f"{where}: slices are a Debian-format feature; apk distros take "
                        "whole packages.")

    def complete(self, loader: IndexLoader, arch: str, resolution: Resolution) -> None:
        """The file's sha256 and datahash, learnt by downloading and verifying it."""
        assert isinstance(loader, AlpineIndexLoader)
        loader.complete(arch, resolution.ordered())

    def reads_package_file(self, cache: Cache, sha256: str) -> bool:
        return True   # every build verifies and reads each .apk

    def install(self, spec: Spec, packages: list[LockedPackage], files: Mapping[str, Path],
                distro: Distro, arch: str, cache: Cache, progress: Progress,
                lock_file: str) -> tuple[Tree, list[str]]:
        """.apk data, then apk's database and /etc/apk."""
        patterns = strip_patterns(spec.strip)
        tree = Tree(merged_usr=distro.merged_usr, allow_setuid=spec.allow_setuid,
                    max_bytes=Limits.from_env().image)
        setup = install.ApkSetup(
            arch=apk_arch(arch),
            trusts={a.name: trust_for(distro, a, arch) for a in distro.archives},
            world=install.world_atoms([r.text or r.name for r in spec.packages]),
            # The spec's mirror or the definition's default, never a --mirror/env one:
            # those are this machine's business and must not change the image digest.
            repositories=apk_repositories(distro, spec))
        warnings = install.install_packages(
            tree, packages, files, setup, lambda n: bool(patterns) and stripped(n, patterns),
            progress)
        if spec.alternatives:
            raise SpecError(f"{spec.path}: alternatives: update-alternatives is Debian's; "
                            "apk images get their links from packages or the spec's paths.")
        if "python-bytecode" in spec.raw:
            raise SpecError(f"{spec.path}: python-bytecode: apk images take their bytecode "
                            "from the packages (py3-*, python3 ship .pyc); remove the key.")
        warnings += finish_tree(tree, spec, packages, progress)
        return tree, warnings

    def is_database(self, path: str) -> bool:
        return path == installed.DATABASE

    def read_installed(self, files: dict[str, bytes]) -> tuple[list[Installed], list[str]]:
        return installed.read_database(files)

    def providers(self, distro: Distro, mirrors: dict[str, str], cache: Cache, arch: str,
                  offline: bool) -> None:
        return None

    version_file = "etc/alpine-release"

    def release_version(self, distro: Distro, indexes: list[LockedIndex]) -> str:
        from assembler.alpine.packagedb import release_version

        main = distro.archives[0]
        # A numbered branch's tags are its releases; edge's are not (definition "edge").
        numbered = str(distro.extra.get("version", ""))[:1].isdigit()
        return release_version(main.name, main.suites[0], indexes, numbered)

    def distro_qualifier(self, os_id: str, version_id: str) -> str:
        return version_id

    def package_db(self, tree: Tree) -> InstalledDb:
        from assembler.alpine.packagedb import InstalledDb

        return InstalledDb(tree)


def apk_repositories(distro: Distro, spec: Spec) -> list[str]:
    out = []
    for a in distro.archives:
        base = spec.mirrors.get(a.name) or a.url
        if base:
            tag = f"@{a.tag} " if a.tag else ""
            out += [tag + repository_url(base, repository_path(s, c))
                    for s in a.suites for c in a.components]
    return out


FORMAT = ApkFormat()

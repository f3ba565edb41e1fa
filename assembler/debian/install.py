"""Debian packages into the image tree: whole or cut into slices, then status.d.

What dpkg would do, declaratively: members unpacked (each package once into the
cache, fetch/unpacked.py), slices' own paths and generators, the package
database; nothing from a package runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from assembler.cache import Cache
from assembler.debian import deb
from assembler.debian.scripts import run_scripts
from assembler.debian.statusd import write_status
from assembler.distro.definition import Distro
from assembler.errors import MalformedError
from assembler.fetch.boundedtar import Limits
from assembler.fetch.unpacked import SYMLINK, Unpacked, unpacked
from assembler.lock.model import LockedPackage
from assembler.progress import Progress
from assembler.rootfs.certs import write_ca_bundle
from assembler.rootfs.finish import finish_tree
from assembler.rootfs.strip import strip_patterns, stripped
from assembler.rootfs.tree import Tree
from assembler.slices.applets import write_applet_links
from assembler.slices.catalog import PathSpec, Slice
from assembler.slices.cut import cut, member_path
from assembler.slices.make import catalog_slices, make_paths, masters
from assembler.slices.manifest import write_manifest
from assembler.spec.document import Spec

# Two cores is the common CI box; more workers only queue behind the tree.
UNPACK_WORKERS = min(4, os.cpu_count() or 1)

def _unpack(cache: Cache, package: LockedPackage, files: Mapping[str, Path]) -> Unpacked:
    path = files[package.sha256]   # waits here, on a worker, while the file downloads
    control: list[bytes] = []   # read once: unpacked() asks for the extras first

    def extras() -> dict[str, bytes]:
        control.append(deb.read_control(path))
        return {"control": control[0]}

    try:
        return unpacked(cache, package.sha256,
                        lambda: deb.iter_data(path, control[0] if control else None), extras)
    except MalformedError as e:
        raise MalformedError(f"{package.name} {package.version} "
                             f"({package.filename}): {e.message}") from None


def build_tree(spec: Spec, packages: list[LockedPackage], files: Mapping[str, Path],
               merged_usr: bool,
               cache: Cache, progress: Progress, arch: str = "",
               catalog_dir: Path | None = None,
               lock_file: str = "the lockfile",
               distro: Distro | None = None) -> tuple[Tree, list[str]]:
    patterns = strip_patterns(spec.strip)
    tree = Tree(merged_usr=merged_usr, allow_setuid=spec.allow_setuid,
                max_bytes=Limits.from_env().image)
    warnings: list[str] = []
    controls: dict[str, bytes] = {}
    by_package = catalog_slices(packages, catalog_dir, lock_file)
    chosen = [s for slices in by_package.values() for s in slices]
    # prefer: a path two packages' slices both claim comes from the preferred one only.
    preferred = {spec_.path: spec_.prefer for s in chosen for spec_ in s.contents.values()
                 if spec_.prefer}
    owners: dict[str, set[str]] = {}
    transient: set[str] = set()
    made: list[tuple[Slice, PathSpec]] = []
    # Unpacking the next packages (decompression and hashing release the GIL)
    # overlaps with adding this one to the tree; the tree sees them in lock order.
    with ThreadPoolExecutor(UNPACK_WORKERS) as pool:
        jobs = [pool.submit(_unpack, cache, p, files) for p in packages]
        for i, (p, job) in enumerate(zip(packages, jobs, strict=True)):
            name = p.name
            progress.status(f"unpacking {i + 1}/{len(packages)} {name}")
            got = job.result()
            controls[name] = got.extras["control"]
            store = tree.attach(got.path)
            before = len(tree.warnings)
            if name in by_package:
                c = cut(name, p.version, by_package[name], got.members, arch)
                for member in c.members:
                    path = member_path(member)
                    if preferred.get(path, name) != name:
                        continue
                    tree.add_member(member, store, name)
                    if path in c.owners:
                        owners[path] = c.owners[path]
                transient |= c.transient
                made += c.made
            else:
                for member in got.members:
                    if patterns and stripped(member[0].lstrip("./").rstrip("/"), patterns,
                                             member[1] == SYMLINK):
                        continue
                    tree.add_member(member, store, name)
            warnings += tree.warnings[before:]
    generated = make_paths(tree, made, owners)
    for path, slice_ in generated.get("ca-bundle", []):
        write_ca_bundle(tree, path, slice_.package)
    for path, slice_ in generated.get("applets", []):
        write_applet_links(tree, path, slice_.package, slice_.where())
    master_files = masters(tree, generated)   # read before until: mutate paths leave
    for path in sorted(transient):
        entry = tree.get(path)
        # Directories stay: something that is kept may live in them.
        if entry is not None and entry.kind != "dir":
            tree.remove(path, missing_ok=True)
    write_status(tree, controls)
    warnings += finish_tree(tree, spec, packages, progress, master_files,
                            lambda t: run_scripts(t, spec, distro, cache))
    # Owners are in package spelling; the manifest speaks the image's (merged /usr).
    image_owners: dict[str, set[str]] = {}
    for path, names in owners.items():
        entry = tree.get(path)
        if entry is not None:
            image_owners.setdefault(entry.path, set()).update(names)
    for path, _ in generated.get("manifest", []):
        write_manifest(tree, path.removesuffix("**"), packages, image_owners)
    return tree, warnings

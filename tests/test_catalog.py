"""The curated slice catalog against the real archive (repos/debian/<release>/slices).

For bookworm and trixie, on amd64 and arm64, with the current version of
every package the catalog names:

- every plain path and glob of every slice matches a file of the package
  (checked with the engine's own cut, so this is what a build would do);
- every slice is link-complete through its essentials: the image a spec
  naming only that slice would get (the build's own tree: its cut, merged
  /usr, generators) passes the build's link check, so every ELF file in it
  finds its interpreter and every DT_NEEDED library.

The package files come through the shared test cache, so a second run needs
the network only for the signed indexes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from debfiles import Deb, PackageFiles

from assembler.cache import Cache
from assembler.debian.install import build_tree
from assembler.distro.definition import load_distro
from assembler.errors import AssemblerError, SpecError
from assembler.linkcheck.check import explain, scan_tree
from assembler.linkcheck.elf import read_elf
from assembler.lock.model import LockedPackage
from assembler.progress import Progress
from assembler.rootfs.tree import Tree
from assembler.slices.catalog import Catalog
from assembler.spec.document import Spec, load_spec

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.network

RELEASES = ("bookworm", "trixie")
ARCHS = ("amd64", "arm64")


def catalog_dir(release: str) -> Path:
    return ROOT / "repos" / "debian" / release / "slices"


@dataclass
class Release:
    """One release on one arch: its catalog and the current files of every package it names."""

    name: str
    arch: str
    catalog: Catalog
    debs: dict[str, Deb]
    merged_usr: bool
    spec: Spec          # a spec of this release and arch, for build_tree's options
    cache: Cache


_loaded: dict[tuple[str, str], Release] = {}


@pytest.fixture(params=[(r, a) for r in RELEASES for a in ARCHS], ids=lambda p: f"{p[0]}-{p[1]}")
def release(request, shared_cache, tmp_path_factory) -> Release:
    name, arch = request.param
    if (name, arch) not in _loaded:
        cat = Catalog.load(catalog_dir(name))
        cache = Cache(shared_cache)
        debs = PackageFiles.load(name, arch, sorted(cat.packages), cache)
        spec_file = tmp_path_factory.mktemp("spec") / "image.yaml"
        spec_file.write_text(f"distro: debian/{name}\narchs: [{arch}]\n"
                             "contents:\n  packages: [base-files_base]\n"
                             # Links are the point here; an arm64 python3.X cannot run
                             # on an amd64 machine to compile its bytecode (bytecode.py).
                             "python-bytecode: false\n")
        _loaded[name, arch] = Release(name, arch, cat, debs,
                                      load_distro(f"debian/{name}").merged_usr,
                                      load_spec(spec_file), cache)
    return _loaded[name, arch]


def test_catalogs_load_with_a_copyright_slice_per_package():
    """The load-time checks (conflicts, overlapping globs, cycles, unknown essentials) pass."""
    for name in RELEASES:
        cat = Catalog.load(catalog_dir(name))
        assert len(cat.packages) >= 35
        for package, slices in cat.packages.items():
            assert slices[0].file.stem == package
            assert f"{package}_copyright" in cat.slices, f"{package} has no copyright slice"


def test_every_path_matches(release):
    from assembler.slices.cut import cut

    problems = []
    for package, slices in sorted(release.catalog.packages.items()):
        deb = release.debs[package]
        for s in slices:
            try:
                cut(package, deb.version, [s], deb.unpacked.members, release.arch)
            except SpecError as e:
                problems.append(e.message)
    assert not problems, "\n".join(problems)


def test_every_slice_is_link_complete(release):
    problems = []
    checked = 0
    for full in sorted(release.catalog.slices):
        closure = release.catalog.closure([full], release.arch)
        names: dict[str, list[str]] = {}
        for s in closure:
            names.setdefault(s.package, []).append(s.name)
        packages = [LockedPackage(name=p, version=release.debs[p].version,
                                  arch=release.debs[p].arch, archive="debian", filename="",
                                  size=0, sha256=release.debs[p].sha256, reason=[],
                                  slices=sorted(n))
                    for p, n in sorted(names.items())]
        files = {release.debs[p].sha256: release.debs[p].blob for p in names}
        try:
            tree, _ = build_tree(release.spec, packages, files, release.merged_usr,
                                 release.cache, Progress(quiet=True), release.arch,
                                 catalog_dir(release.name))
        except AssemblerError as e:
            problems.append(f"{full}: its closure does not build: {e.message}")
            continue
        try:
            report = scan_tree(tree)
            problems += [f"{full}: {p}" for p in _interpreter_dirs(tree)]
        finally:
            tree.close()
        checked += report.checked
        if report.missing:
            problems.append(f"{full}: " + explain(report.missing, what=full))
        for path, why in report.unreadable:
            problems.append(f"{full}: {path} is not readable ELF: {why}")
    assert checked > 100
    assert not problems, f"{release.name}/{release.arch}:\n" + "\n".join(problems)


def _interpreter_dirs(tree: Tree) -> list[str]:
    """The top directory of every ELF interpreter is really in the image.

    Under merged /usr the tree resolves /lib64/... as /usr/lib64/... whether or
    not the image has the /lib64 link (it makes only /bin, /sbin and /lib
    unasked), so the link check alone would pass an amd64 image whose programs
    cannot start; this is why trixie's libc6_libs needs base-files_lib.
    """
    tops = {e.path for e in tree.entries() if "/" not in e.path}
    out = set()
    for e in tree.entries():
        if e.kind != "file" or e.size < 64:
            continue
        with tree.open_entry(e) as f:
            try:
                info = read_elf(getattr(f, "raw", f))
            except ValueError:
                continue
        if info is not None and info.interpreter:
            top = info.interpreter.strip("/").split("/")[0]
            if top not in tops:
                out.add(f"/{e.path}: the interpreter {info.interpreter} is under /{top}, "
                        "which is not in the image")
    return sorted(out)

"""The curated slice catalog against the real archive (repos/debian/<release>/slices).

For bookworm and trixie, on amd64 and arm64, with the current version of
every package the catalog names:

- every plain path and glob of every slice matches a file of the package
  (checked with the engine's own cut, so this is what a build would do);
- every slice is link-complete through its essentials: each ELF file it takes
  has its interpreter and every DT_NEEDED soname in the image that slice and
  its essential closure make (merged /usr as the release has it, symlinks
  followed, the loader's default search path).

The package files come through the shared test cache, so a second run needs
the network only for the signed indexes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from debfiles import Deb, PackageFiles, elf_info

from assembler.cut import cut, member_path
from assembler.distro import load_distro
from assembler.errors import SpecError
from assembler.slices import Catalog, Slice
from assembler.unpacked import DIR, FILE, SYMLINK

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.network

RELEASES = ("bookworm", "trixie")
ARCHS = ("amd64", "arm64")
TRIPLET = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}
MERGED_USR_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
MERGED_USR_ALWAYS = ("bin", "sbin", "lib")   # what the rootfs tree creates up front
ELF_MAGIC = b"\x7fELF"


def catalog(release: str) -> Catalog:
    return Catalog.load(ROOT / "repos" / "debian" / release / "slices")


@dataclass
class Release:
    """One release on one arch: its catalog and the current files of every package it names."""

    name: str
    arch: str
    catalog: Catalog
    debs: dict[str, Deb]
    merged_usr: bool
    _elf: dict[tuple[str, str], tuple | None] = field(default_factory=dict)

    def cut(self, package: str, slices: list[Slice]):
        deb = self.debs[package]
        return cut(package, deb.version, slices, deb.unpacked.members, self.arch)

    def elf(self, package: str, member) -> tuple | None:
        key = (package, member[0])
        if key not in self._elf:
            info = None
            with open(self.debs[package].unpacked.path, "rb") as f:
                f.seek(member[8])
                if f.read(4) == ELF_MAGIC:
                    f.seek(member[8])
                    info = elf_info(f.read(member[5]))
            self._elf[key] = info
        return self._elf[key]


_loaded: dict[tuple[str, str], Release] = {}


@pytest.fixture(params=[(r, a) for r in RELEASES for a in ARCHS], ids=lambda p: f"{p[0]}-{p[1]}")
def release(request, shared_cache) -> Release:
    name, arch = request.param
    if (name, arch) not in _loaded:
        cat = catalog(name)
        debs = PackageFiles.load(name, arch, sorted(cat.packages), shared_cache)
        _loaded[name, arch] = Release(name, arch, cat, debs,
                                      load_distro(f"debian/{name}").merged_usr)
    return _loaded[name, arch]


# ------------------------------------------------------------------------- the image model

class Image:
    """The paths a set of slices puts in an image, enough to resolve a path like ld.so does."""

    def __init__(self, merged_usr: bool) -> None:
        self.merged_usr = merged_usr
        self.entries: dict[str, tuple[str, str]] = {}   # "usr/lib/x" -> (kind, link)
        self.dirs: set[str] = {""}
        self.tops = set(MERGED_USR_ALWAYS) if merged_usr else set()

    def add(self, path: str, kind: str, link: str = "") -> None:
        norm = path.strip("/")
        if not norm:
            return
        top = norm.split("/")[0]
        if self.merged_usr and top in MERGED_USR_DIRS:
            self.tops.add(top)
            if norm == top:
                return          # the tree makes it the link into /usr itself
            norm = "usr/" + norm
        self.entries.setdefault(norm, (kind, link))
        parent = norm
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            self.dirs.add(parent)

    def resolve(self, path: str) -> str | None:
        """The regular file `path` leads to, or None."""
        todo = [p for p in path.strip("/").split("/") if p]
        done: list[str] = []
        hops = 0
        while todo:
            part = todo.pop(0)
            if part == ".":
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            here = "/".join([*done, part])
            if self.merged_usr and not done and part in MERGED_USR_DIRS:
                if part not in self.tops:
                    return None
                kind, link = "symlink", "usr/" + part
            elif here in self.entries:
                kind, link = self.entries[here]
            elif here in self.dirs:
                kind, link = "dir", ""
            else:
                return None
            if kind == "symlink":
                hops += 1
                if hops > 40:
                    return None
                todo = [p for p in link.split("/") if p] + todo
                if link.startswith("/"):
                    done = []
                continue
            if kind != "dir" and todo:
                return None
            done.append(part)
        final = "/".join(done)
        return final if self.entries.get(final, ("",))[0] == "file" else None


def image_of(rel: Release, slices: list[Slice]) -> Image:
    img = Image(rel.merged_usr)
    by_package: dict[str, list[Slice]] = {}
    for s in slices:
        by_package.setdefault(s.package, []).append(s)
    for package, group in by_package.items():
        c = rel.cut(package, group)
        for m in c.members:
            if member_path(m) in c.transient:
                continue
            kind = {FILE: "file", DIR: "dir", SYMLINK: "symlink"}.get(m[1], "file")
            img.add(member_path(m), kind, m[6] if m[1] == SYMLINK else "")
        for _s, spec in c.made:
            if spec.kind == "symlink":
                img.add(spec.path, "symlink", spec.link or "")
            elif spec.kind == "dir":
                img.add(spec.path, "dir")
            elif spec.kind in ("text", "generate") and not spec.path.endswith("/**"):
                img.add(spec.path, "file")
    return img


# ------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("name", RELEASES)
def test_catalog_loads_and_names_real_packages(name):
    """Static checks (conflicts, cycles, unknown essentials) pass; one file per package."""
    cat = catalog(name)
    assert len(cat.packages) >= 35
    for package, slices in cat.packages.items():
        assert slices[0].file.stem == package
        assert f"{package}_copyright" in cat.slices, f"{package} has no copyright slice"


def test_every_path_matches(release):
    problems = []
    for package, slices in sorted(release.catalog.packages.items()):
        for s in slices:
            try:
                release.cut(package, [s])
            except SpecError as e:
                problems.append(e.message if hasattr(e, "message") else str(e))
    assert not problems, "\n".join(problems)


def test_every_slice_is_link_complete(release):
    search = [f"lib/{TRIPLET[release.arch]}", f"usr/lib/{TRIPLET[release.arch]}", "lib", "usr/lib"]
    problems = []
    checked = 0
    for full, s in sorted(release.catalog.slices.items()):
        try:
            own = release.cut(s.package, [s])
        except SpecError:
            continue        # test_every_path_matches reports it
        elves = []
        for m in own.members:
            if m[1] == FILE and member_path(m) not in own.transient:
                info = release.elf(s.package, m)
                if info is not None:
                    elves.append((member_path(m), info))
        if not elves:
            continue
        try:
            img = image_of(release, release.catalog.closure([full], release.arch))
        except SpecError as e:
            problems.append(f"{full}: its closure does not cut: {e}")
            continue
        for path, (interp, _soname, needed) in elves:
            checked += 1
            if interp and img.resolve(interp) is None:
                problems.append(f"{full}: {path}: interpreter {interp} is not in its closure")
            for so in needed:
                if not any(img.resolve(f"{d}/{so}") for d in search):
                    problems.append(f"{full}: {path} needs {so}, which no essential slice "
                                    "provides")
    assert checked > 30
    assert not problems, f"{release.name}/{release.arch}:\n" + "\n".join(problems)

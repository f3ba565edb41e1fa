"""The link check: every dynamically linked ELF file in the image can be loaded.

For each ELF file that names an interpreter (PT_INTERP) or libraries
(DT_NEEDED), the interpreter must exist in the image and every needed
library must be found the way glibc's ld.so would look for it, inside the
image, never on the host:

1. DT_RPATH, but only when the file has no DT_RUNPATH;
2. (LD_LIBRARY_PATH: an environment matter, ignored);
3. DT_RUNPATH;
4. the directories of /etc/ld.so.conf and its `include`s - but only when the
   image has /etc/ld.so.cache: ld.so never reads ld.so.conf, it reads the
   cache ldconfig builds from it, and an image nobody ran ldconfig for has
   none (ours don't), so there those directories are not searched at all;
5. the loader's built-in directories: the multiarch ones Debian's ld.so
   searches (/lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu), then /lib,
   /usr/lib, and for 64-bit /lib64, /usr/lib64 (other distributions' ld.so).

A candidate only counts if it is an ELF file of the same class, byte order
and machine, as the loader skips others. $ORIGIN, $LIB and $PLATFORM are
expanded in RPATH/RUNPATH ($LIB and $PLATFORM to every value they can take
for the file's machine). Each file is checked on its own: RPATH inherited
from the executable that loads a library is not modelled (Debian policy
forbids RPATH to system directories, so libraries do not rely on it), and
neither are glibc-hwcaps subdirectories (they only hold faster copies of
libraries that also exist in the base directory).
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from assembler.errors import LinkError
from assembler.linkcheck.elf import ElfError, ElfInfo, read_elf
from assembler.rootfs.tree import Entry, Tree

Kind = Literal["interpreter", "library"]
# The caller's answer to "what would put this file in the image", e.g.
# "package libssl3" or "slice libssl3_libs"; None when it does not know.
Providers = Callable[[str], str | None]

LD_SO_CONF = "etc/ld.so.conf"
LD_SO_CACHE = "etc/ld.so.cache"
_MIN_ELF = 52  # the smallest ELF header
_INCLUDE_DEPTH = 8

# (bits, little endian, e_machine) -> Debian multiarch tuples, the loader's first defaults.
_MULTIARCH: dict[tuple[int, bool, int], tuple[str, ...]] = {
    (64, True, 62): ("x86_64-linux-gnu",),
    (32, True, 62): ("x86_64-linux-gnux32",),
    (32, True, 3): ("i386-linux-gnu",),
    (64, True, 183): ("aarch64-linux-gnu",),
    (32, True, 40): ("arm-linux-gnueabihf", "arm-linux-gnueabi"),
    (64, True, 21): ("powerpc64le-linux-gnu",),
    (64, False, 22): ("s390x-linux-gnu",),
    (64, True, 243): ("riscv64-linux-gnu",),
    (64, True, 8): ("mips64el-linux-gnuabi64",),
    (32, True, 8): ("mipsel-linux-gnu",),
}
# What ld.so substitutes for $PLATFORM (AT_PLATFORM) on each machine.
_PLATFORMS: dict[int, tuple[str, ...]] = {
    62: ("x86_64", "haswell", "xeon_phi"), 3: ("i686", "i586", "i486", "i386"),
    183: ("aarch64",), 40: ("v7l", "v6l", "v5l"), 21: ("power8", "power9", "power10"),
    22: ("z13", "z14", "z15"), 243: ("riscv64",),
}


@dataclass(frozen=True, slots=True)
class Missing:
    """One thing an ELF file needs at load time that the image lacks."""

    path: str  # the ELF file needing it, absolute ("/usr/bin/app")
    kind: Kind
    name: str  # the soname, or the interpreter's path
    note: str = ""  # why a near miss does not count (wrong class, ld.so.conf without a cache)


@dataclass
class Report:
    missing: list[Missing] = field(default_factory=list)
    checked: int = 0  # ELF files with an interpreter or needed libraries
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): not checked


def check_tree(tree: Tree, ignore: Sequence[str] = ()) -> list[Missing]:
    """Everything the image's dynamically linked files need and do not find, sorted."""
    return scan_tree(tree, ignore).missing


def scan_tree(tree: Tree, ignore: Sequence[str] = ()) -> Report:
    """Check every ELF file of `tree`; `ignore` are globs over absolute paths not to check."""
    return _Checker(tree).scan(ignore)


def require_links(tree: Tree, ignore: Sequence[str] = (), providers: Providers | None = None,
                  what: str = "the image") -> None:
    """The build's gate: raise LinkError explaining what is missing, if anything is."""
    missing = check_tree(tree, ignore)
    if missing:
        raise LinkError(explain(missing, providers, what),
                        hint="Add what provides them to contents.packages, or, for files "
                        "that are never loaded, list them under link-check.ignore.")


def explain(missing: Sequence[Missing], providers: Providers | None = None,
            what: str = "the image", limit: int = 10, files_each: int = 3) -> str:
    """One paragraph: each missing name, the files needing it and what would provide it."""
    by_name: dict[tuple[Kind, str], list[Missing]] = defaultdict(list)
    for m in missing:
        by_name[(m.kind, m.name)].append(m)
    parts = []
    for (kind, name), items in sorted(by_name.items(), key=lambda kv: kv[0][1])[:limit]:
        paths = sorted({m.path for m in items})
        users = ", ".join(paths[:files_each])
        if len(paths) > files_each:
            users += f" and {len(paths) - files_each} more"
        text = f"{'interpreter ' if kind == 'interpreter' else ''}{name} (needed by {users}"
        provider = providers(name) if providers is not None else None
        if provider:
            text += f"; provided by {provider}"
        notes = sorted({m.note for m in items if m.note})
        if notes:
            text += "; " + "; ".join(notes)
        parts.append(text + ")")
    more = len(by_name) - limit
    tail = f", and {more} more" if more > 0 else ""
    count = len(by_name)
    return (f"Link check of {what} failed: {count} needed "
            f"{'file is' if count == 1 else 'files are'} not in it: "
            + "; ".join(parts) + tail + ".")


class _Checker:
    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self._elf: dict[str, ElfInfo | None] = {}
        self._bad: dict[str, str] = {}
        self._found: dict[tuple, tuple[str | None, str]] = {}
        self._children: dict[str, list[str]] | None = None
        self._by_name: dict[str, list[str]] | None = None
        self._all = tree.entries()  # sorting is the costly part: once per check
        self.has_cache = tree.resolve(LD_SO_CACHE) is not None
        self.conf_dirs, self.conf_origin = self._ld_so_conf()

    # -- reading ---------------------------------------------------------------
    def elf(self, entry: Entry) -> ElfInfo | None:
        """The entry's ELF headers, or None if it is not (well-formed) ELF; cached per path."""
        key = entry.path
        if key in self._elf:
            return self._elf[key]
        info = None
        if entry.kind in ("file", "hardlink") and entry.size >= _MIN_ELF:
            with self.tree.open_entry(entry) as f:
                # Unbuffered: each header read is one pread of what it needs,
                # instead of a buffer's worth of every file in the image.
                raw = getattr(f, "raw", f)
                try:
                    info = read_elf(raw)
                except ElfError as e:
                    self._bad[key] = str(e)
        self._elf[key] = info
        return info

    def _lines(self, path: str) -> list[str]:
        entry = self.tree.resolve(path)
        if entry is None or entry.kind not in ("file", "hardlink"):
            return []
        with self.tree.open_entry(entry) as f:
            return f.read(1 << 20).decode("utf-8", "replace").splitlines()

    def _listdir(self, directory: str) -> list[str]:
        if self._children is None:
            self._children = defaultdict(list)
            for e in self._all:
                parent, _, name = e.path.rpartition("/")
                self._children[parent].append(name)
        entry = self.tree.resolve(directory)
        return self._children.get(entry.path, []) if entry and entry.kind == "dir" else []

    def _ld_so_conf(self) -> tuple[list[str], dict[str, str]]:
        """ld.so.conf's directories in order, and which file named each."""
        dirs: list[str] = []
        origin: dict[str, str] = {}

        def read(path: str, depth: int) -> None:
            if depth > _INCLUDE_DEPTH:
                return
            for line in self._lines(path):
                line = line.split("#", 1)[0].strip()
                if not line or line.startswith("hwcap "):
                    continue
                if line.startswith("include") and line[7:8] in (" ", "\t"):
                    for pattern in line[8:].split():
                        if not pattern.startswith("/"):
                            pattern = posixpath.join("/" + posixpath.dirname(path), pattern)
                        # Globs in the last component only: what ld.so.conf files use.
                        parent, _, glob = pattern.rpartition("/")
                        for name in sorted(self._listdir(parent)):
                            if fnmatch.fnmatchcase(name, glob):
                                read(f"{parent}/{name}".lstrip("/"), depth + 1)
                    continue
                for d in line.replace(",", " ").replace(":", " ").split():
                    d = d.split("=", 1)[0].strip("/")  # "dir=libc6" is a libc5-era type tag
                    if d and d not in origin:
                        dirs.append(d)
                        origin[d] = "/" + path
        read(LD_SO_CONF, 0)
        return dirs, origin

    # -- checking --------------------------------------------------------------
    def scan(self, ignore: Sequence[str]) -> Report:
        report = Report()
        users: list[tuple[str, ElfInfo]] = []
        for entry in self._all:
            if entry.kind not in ("file", "hardlink") or entry.size < _MIN_ELF:
                continue
            if any(fnmatch.fnmatchcase("/" + entry.path, g) for g in ignore):
                continue
            info = self.elf(entry)
            if info is not None and (info.interpreter or info.needed):
                users.append((entry.path, info))
        report.checked = len(users)
        misses: dict[str, list[Missing]] = {}
        for path, info in users:
            found = []
            if info.interpreter:
                note = self._interpreter_problem(info)
                if note is not None:
                    found.append(Missing("/" + path, "interpreter", info.interpreter, note))
            dirs = self._search_dirs(info, path, ())
            for name in info.needed:
                ok, note = self._find(info, dirs, name)
                if not ok:
                    found.append(Missing("/" + path, "library", name, note))
            if found:
                misses[path] = found
        # A library may rely on what the program loading it has loaded already
        # (ld.so matches a needed name against loaded sonames before searching)
        # or on that program's RPATH: systemd's libsystemd-core needs
        # libsystemd-shared, which only systemd's RUNPATH finds. Such a
        # library is fine if some program in the image loads it successfully.
        suspects = {p for p, found in misses.items()
                    if all(m.kind == "library" for m in found)
                    and not self._elf_by_path(p).interpreter}
        if suspects:
            reached: set[str] = set()
            fine = self._loaded_fine([(p, i) for p, i in users if i.interpreter], suspects,
                                     reached)
            for path in fine:
                del misses[path]
            for path in self._hosted(suspects - fine, misses, reached):
                del misses[path]
        report.missing = sorted((m for found in misses.values() for m in found),
                                key=lambda m: (m.path, m.kind, m.name))
        report.unreadable = sorted(("/" + p, why) for p, why in self._bad.items()
                                   if not any(fnmatch.fnmatchcase("/" + p, g) for g in ignore))
        return report

    def _elf_by_path(self, path: str) -> ElfInfo:
        info = self._elf[path]
        assert info is not None  # only called for files scan() parsed
        return info

    def _hosted(self, plugins: set[str], misses: dict[str, list[Missing]],
                reached: set[str]) -> set[str]:
        """The plugins a host application in the image loads with what they need.

        A library no program's load graph reaches is dlopen()ed (a JRE's lib/libnet.so,
        a Python extension). It runs inside the process that opened it, whose loaded
        objects count: a name it needs is satisfied by a library of that soname
        under the plugin's own directory (lib/server/libjvm.so for lib/libjava.so)
        when some program's load graph has code in that directory too (java's
        RUNPATH brings lib/libjli.so, which opens libjvm.so and the JVM opens the rest)
        and that library itself loads. Anything else still fails: a library the
        image does not have at all, or one no program in the image could have loaded.
        """
        hosts = {posixpath.dirname(p) for p in reached}
        ok: set[str] = set()
        candidates: dict[str, list[tuple[Missing, list[str]]]] = {}
        for path in sorted(plugins):
            root = posixpath.dirname(path)
            if root not in hosts:
                continue
            info = self._elf_by_path(path)
            needs = []
            for m in misses[path]:
                libs = [p for p in self._named(m.name) if p.startswith(root + "/")
                        and (lib := self._lib(p)) is not None and lib.abi == info.abi]
                if not libs:
                    break
                needs.append((m, libs))
            else:
                candidates[path] = needs
        changed = True
        while changed:  # a provider must load too, possibly through this same rule
            changed = False
            for path, needs in candidates.items():
                if path not in ok and all(any(lib not in misses or lib in ok for lib in libs)
                                          for _, libs in needs):
                    ok.add(path)
                    changed = True
        return ok

    def _lib(self, path: str) -> ElfInfo | None:
        entry = self.tree.get(path)
        return self.elf(entry) if entry is not None else None

    def _loaded_fine(self, programs: list[tuple[str, ElfInfo]], suspects: set[str],
                     reached: set[str]) -> set[str]:
        """The suspects whose needs all resolve inside some program's load, as ld.so does it;
        `reached` collects every object those loads bring in (complete unless all are fine)."""
        fine: set[str] = set()
        for program, info in programs:
            loaded: set[str] = set()
            interp = self.tree.resolve(info.interpreter or "")
            if interp is not None:
                loaded.add(posixpath.basename(info.interpreter or ""))
                ld = self.elf(interp) if interp.kind in ("file", "hardlink") else None
                if ld is not None and ld.soname:
                    loaded.add(ld.soname)
            # Breadth first, like ld.so; each object carries its loaders' RPATHs.
            queue: deque[tuple[str, ElfInfo, tuple[str, ...]]] = deque([(program, info, ())])
            seen = {program}
            reached.add(program)
            while queue:
                path, obj, inherited = queue.popleft()
                # Own RPATH first, then the loaders' (none of it when RUNPATH is set).
                chain = inherited if obj.runpath else \
                    self._expand(obj.rpath, obj, path) + inherited
                dirs = self._search_dirs(obj, path, () if obj.runpath else inherited)
                resolved = True
                for name in obj.needed:
                    if name in loaded:
                        continue
                    target = self._locate(obj, dirs, name)
                    if target is None:
                        resolved = False
                        continue
                    lib = self._elf_by_path(target)
                    loaded.add(name)
                    if lib.soname:
                        loaded.add(lib.soname)
                    if target not in seen:
                        seen.add(target)
                        reached.add(target)
                        queue.append((target, lib, chain))
                if resolved and path in suspects:
                    fine.add(path)
            if fine == suspects:
                break
        return fine

    def _interpreter_problem(self, info: ElfInfo) -> str | None:
        """None if the interpreter loads, else a note ('' when it is simply absent)."""
        entry = self.tree.resolve(info.interpreter or "")
        if entry is None or entry.kind not in ("file", "hardlink"):
            return ""
        target = self.elf(entry)
        if target is None:
            return f"/{entry.path} is not a readable ELF file"
        if target.abi != info.abi:
            return f"/{entry.path} is {target.describe()}, the file is {info.describe()}"
        return None

    def _search_dirs(self, info: ElfInfo, path: str,
                     loader_rpath: tuple[str, ...]) -> tuple[str, ...]:
        """Where ld.so looks for the libraries `info` needs; `loader_rpath`: loaders' RPATHs."""
        dirs: list[str] = []
        if not info.runpath:
            dirs += self._expand(info.rpath, info, path)
            dirs += loader_rpath
        dirs += self._expand(info.runpath, info, path)
        if self.has_cache:
            dirs += self.conf_dirs
        dirs += _default_dirs(info)
        return tuple(dict.fromkeys(dirs))  # first occurrence wins, as in a search

    @staticmethod
    def _expand(elements: Iterable[str], info: ElfInfo, path: str) -> tuple[str, ...]:
        origin = posixpath.dirname(path)
        libs = [f"lib/{t}" for t in _MULTIARCH.get(info.abi, ())] + \
            (["lib64", "lib"] if info.bits == 64 else ["lib", "lib32"])
        platforms = _PLATFORMS.get(info.machine, ())
        out: list[str] = []
        for element in elements:
            candidates = [element.replace("${", "$").replace("}", "")
                          if "${" in element else element]
            for token, values in (("$ORIGIN", ["/" + origin]), ("$LIB", libs),
                                  ("$PLATFORM", platforms)):
                candidates = [c.replace(token, v) for c in candidates for v in values] \
                    if any(token in c for c in candidates) else candidates
            # A relative element is relative to the process's working directory,
            # which the image does not fix: it cannot be checked, so it adds nothing.
            out += [posixpath.normpath(c).lstrip("/") for c in candidates
                    if c.startswith("/") and "$" not in c]
        return tuple(out)

    def _find(self, info: ElfInfo, dirs: tuple[str, ...], name: str) -> tuple[bool, str]:
        """Whether `name` is found from `dirs`, else a note on near misses ('' if none)."""
        target, note = self._lookup(info, dirs, name)
        return target is not None, note

    def _locate(self, info: ElfInfo, dirs: tuple[str, ...], name: str) -> str | None:
        """The tree path of the library `name` as ld.so would find it, or None."""
        return self._lookup(info, dirs, name)[0]

    def _lookup(self, info: ElfInfo, dirs: tuple[str, ...], name: str) -> tuple[str | None, str]:
        key = (info.abi, dirs, name)
        if key not in self._found:
            self._found[key] = self._search(info, dirs, name)
        return self._found[key]

    def _search(self, info: ElfInfo, dirs: tuple[str, ...], name: str) -> tuple[str | None, str]:
        # A name with a slash is a path, used as is without a search.
        candidates = [name.lstrip("/")] if "/" in name else [f"{d}/{name}" for d in dirs]
        wrong = []
        for candidate in candidates:
            entry = self.tree.resolve(candidate)
            if entry is None or entry.kind not in ("file", "hardlink"):
                continue
            lib = self.elf(entry)
            if lib is not None and lib.abi == info.abi:
                return entry.path, ""
            what = lib.describe() if lib is not None else "not a readable ELF file"
            wrong.append(f"/{candidate} is {what}")
        if wrong:
            return None, ", ".join(wrong) + f", the file is {info.describe()}"
        if "/" not in name and not self.has_cache:
            for d in self.conf_dirs:
                entry = self.tree.resolve(f"{d}/{name}")
                if entry is not None and entry.kind in ("file", "hardlink"):
                    return None, (f"/{d}/{name} exists and {self.conf_origin[d]} lists /{d}, "
                                   "but the image has no /etc/ld.so.cache, so the loader "
                                   "does not search there")
        if "/" not in name:
            # Typical when a maintainer script was meant to link it into place
            # (update-alternatives for libblas.so.3): say where it is.
            for path in self._named(name):
                entry = self.tree.resolve(path)
                lib = self.elf(entry) if entry is not None else None
                if lib is not None and lib.abi == info.abi:
                    return None, f"/{path} is in the image, but not where the loader looks"
        return None, ""

    def _named(self, name: str) -> list[str]:
        """Paths in the image whose last component is `name` (index built on first use)."""
        if self._by_name is None:
            self._by_name = defaultdict(list)
            for e in self._all:
                self._by_name[e.path.rpartition("/")[2]].append(e.path)
        return self._by_name.get(name, [])


def _default_dirs(info: ElfInfo) -> list[str]:
    dirs = []
    for triplet in _MULTIARCH.get(info.abi, ()):
        dirs += [f"lib/{triplet}", f"usr/lib/{triplet}"]
    dirs += ["lib", "usr/lib"]
    dirs += ["lib64", "usr/lib64"] if info.bits == 64 else ["lib32", "usr/lib32"]
    return dirs

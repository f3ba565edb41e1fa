"""The standard library's bytecode, as Debian's py3compile would leave it after install.

Debian ships no .pyc files; python3.X's postinst compiles the standard library in
place, and python3's compiles its own modules in /usr/share/python3 (py3versions,
debpython) with the default interpreter. We compile both at build time with the
image's own interpreter, run only inside a bubblewrap sandbox (rootfs/sandbox.py) that
holds just what it needs: the interpreter, the shared libraries where the loader looks,
the standard library and the other sources. The bytes then
depend on the image alone, never on the host's Python. The .pyc files are
"unchecked-hash" (PEP 552) at optimization level 0, as py3compile writes them: valid
without any file times; PYTHONHASHSEED is fixed, for frozenset constants.

Compiling is the costliest step of a warm python3 build (about 1 s of a 2 s rebuild), and
its output is a function of what the sandbox holds, so it is cached under a digest of
exactly that: every materialised entry's path, kind, mode, size, link and content hash,
the list of sources, and this module's own code.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

from assembler.cache import Cache
from assembler.errors import DiskError, SandboxError
from assembler.rootfs.sandbox import OUT, materialised
from assembler.rootfs.tree import Entry, Tree

_STDLIB = re.compile(r"usr/lib/python(3\.\d+)/os\.py")
_DEFAULT_MODULES = "usr/share/python3"
# Where the loader looks by default (and the merged-/usr top-level links to it).
_LIBRARY = re.compile(r"(usr/)?lib(32|64|x32)?(/[^/]+-linux-[^/]+)?(/[^/]+\.so[^/]*)?")
# Bounds for what goes to the compiler: the standard library is about 30 MB of source.
MAX_SOURCE = 8 << 20
TIMEOUT = 600
COMPILERS = min(4, os.cpu_count() or 1)
# Runs in the sandbox, with the image's interpreter and standard library.
_COMPILER = r"""
import py_compile, sys
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
for line in sys.stdin.read().splitlines():
    i, _, source = line.partition(" ")
    try:
        py_compile.compile(source, cfile=f"{out}/{i}.pyc", dfile=source, doraise=True,
                           optimize=0, invalidation_mode=mode)
    except Exception:
        pass  # a source the compiler refuses (Python 2 test data) stays uncompiled
"""
_ENV = {"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0", "PYTHONUTF8": "1", "LANG": "C"}
# Bump with anything that changes the compiled bytes but is not in this file.
_FORMAT = 1
_CODE_DIGEST = hashlib.sha256(Path(__file__).read_bytes() + bytes([_FORMAT])).hexdigest()


def compile_stdlib(tree: Tree, cache: Cache | None = None) -> list[str]:
    """Add __pycache__/*.pyc for every Python standard library whose interpreter is in
    the image; returns warnings. With a `cache`, a compilation already done for the same
    sandbox contents is reused."""
    for entry in [e for e in tree.entries() if _STDLIB.fullmatch(e.path)]:
        libdir = posixpath.dirname(entry.path)
        version = _STDLIB.fullmatch(entry.path).group(1)  # type: ignore[union-attr]
        python = tree.resolve(f"usr/bin/python{version}")
        if python is None or python.kind not in ("file", "hardlink"):
            continue  # a standard library without its interpreter: nothing to compile with
        # python3's postinst: `py3compile -p python3 /usr/share/python3/`, by the
        # interpreter /usr/bin/python3 names.
        default = tree.resolve("usr/bin/python3")
        also = (_DEFAULT_MODULES,) if default is not None and default.path == python.path \
            else ()
        _compile_dir(tree, libdir, python, f"cpython-{version.replace('.', '')}", cache, also)
    return []


def _machine(header: bytes) -> bytes:
    """An ELF header's e_machine (with its byte order), or b"" if it is not ELF."""
    return header[5:6] + header[18:20] if header[:4] == b"\x7fELF" else b""


def _host_header() -> bytes:
    with open("/proc/self/exe", "rb") as f:
        return f.read(20)


def _key(tree: Tree, wanted: Callable[[Entry], bool], targets: list[tuple[Entry, str]]) -> str:
    """The digest of everything the compiler's output depends on."""
    rows = [[e.path, e.kind, e.mode, e.size, e.link, e.sha256]
            for e in tree.entries() if wanted(e)]
    doc = {"code": _CODE_DIGEST, "entries": rows, "sources": [e.path for e, _ in targets]}
    data = json.dumps(doc, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(data.encode()).hexdigest()


def _cached(cache: Cache, key: str, n: int) -> list[tuple[int, bytes]] | None:
    found = cache.load_parsed(_cache_path(cache, key))
    if not isinstance(found, list) or not all(
            isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], int)
            and 0 <= x[0] < n and isinstance(x[1], bytes) for x in found):
        return None
    return found


def _cache_path(cache: Cache, key: str) -> Path:
    return cache.derived_path("bytecode", f"{key[:2]}/{key}")


def _compile_dir(tree: Tree, libdir: str, python: Entry, tag: str,
                 cache: Cache | None = None, also: tuple[str, ...] = ()) -> int:
    """Compile the sources under `libdir` and the `also` directories, with `python` and
    the standard library in `libdir`, in one sandbox."""
    dirs = tuple(d + "/" for d in (libdir, *also))
    targets, linked = [], {python.path}
    for e in tree.entries():
        if not (e.path.startswith(dirs) and e.path.endswith(".py")) \
                or "/__pycache__/" in e.path or "\n" in e.path:
            continue
        # A link (sitecustomize.py -> /etc/python3.X/) is compiled as its target's source.
        source = tree.resolve(e.path) if e.kind == "symlink" else e
        if source is None or source.kind not in ("file", "hardlink") \
                or source.size > MAX_SOURCE:
            continue
        linked.add(source.path)
        d, name = posixpath.split(e.path)
        pyc = f"{d}/__pycache__/{name[:-3]}.{tag}.pyc"
        if tree.get(pyc) is None:
            targets.append((e, pyc))
    if not targets:
        return 0

    def wanted(e: Entry) -> bool:
        return e.path in linked or e.path.startswith(dirs) \
            or e.path.startswith("etc/ld.so.") or bool(_LIBRARY.fullmatch(e.path))

    key = _key(tree, wanted, targets) if cache is not None else ""
    found = _cached(cache, key, len(targets)) if cache is not None else None
    if found is None:
        found = _run_compiler(tree, libdir, python, targets, wanted)
        if cache is not None:
            with suppress(OSError, DiskError):   # uncached, the result is still this build's
                cache.store_parsed(_cache_path(cache, key), found)
    for index, data in found:
        entry, pyc = targets[index]
        tree.add_dir(posixpath.dirname(pyc), 0o755, origin=entry.origin)
        tree.add_file(pyc, data, 0o644, origin=entry.origin)
    return len(found)


def _run_compiler(tree: Tree, libdir: str, python: Entry, targets: list[tuple[Entry, str]],
                  wanted: Callable[[Entry], bool]) -> list[tuple[int, bytes]]:
    """(index into targets, .pyc bytes) for each source the image's interpreter compiled."""
    what = f"compiling /{libdir} (python{libdir.rsplit('python', 1)[1]}'s bytecode)"
    # One compiler per core, each given every n-th source: each .pyc is compiled on its
    # own, so the split changes nothing in the bytes.
    workers = max(1, min(COMPILERS, len(targets)))
    parts = ["".join(f"{i} /{targets[i][0].path}\n" for i in range(k, len(targets), workers))
             for k in range(workers)]
    argv = ["/" + python.path, "-S", "-s", "-B", "-c", _COMPILER.replace("{out}", OUT)]
    with materialised(tree, wanted, what) as box, ThreadPoolExecutor(workers) as pool:
        try:
            for job in [pool.submit(box.run, argv, _ENV, part.encode(), TIMEOUT, what)
                        for part in parts]:
                job.result()
        except SandboxError as e:
            with tree.open_entry(python) as f:
                header = f.read(20)
            if _machine(header) == _machine(_host_header()):
                raise
            raise SandboxError(
                f"{what}: /{python.path} is built for another architecture than this "
                "machine's and cannot run here (no emulator registered in binfmt_misc), so "
                "the image's own interpreter cannot compile its bytecode. Build on a "
                "machine of the image's architecture, register an emulator (Debian: "
                "qemu-user-binfmt), or set 'python-bytecode: false' in the spec.") from e
        made = []
        for name, data in box.outputs():
            index = name.removesuffix(".pyc")
            if not index.isdigit() or int(index) >= len(targets) or not data:
                continue
            made.append((int(index), data))
    return made

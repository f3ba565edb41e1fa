"""The standard library's bytecode, as Debian's py3compile would leave it after install.

Debian ships no .pyc files; python3.X's postinst compiles the standard library in
place. We compile it at build time with the image's own interpreter, run only inside a
bubblewrap sandbox (rootfs/sandbox.py) that holds just what it needs: the interpreter,
the shared libraries where the loader looks, and the standard library. The bytes then
depend on the image alone, never on the host's Python. The .pyc files are
"unchecked-hash" (PEP 552) at optimization level 0, as py3compile writes them: valid
without any file times; PYTHONHASHSEED is fixed, for frozenset constants.
"""

from __future__ import annotations

import posixpath
import re

from assembler.errors import SandboxError
from assembler.rootfs.sandbox import OUT, materialised
from assembler.rootfs.tree import Entry, Tree

_STDLIB = re.compile(r"usr/lib/python(3\.\d+)/os\.py")
# Where the loader looks by default (and the merged-/usr top-level links to it).
_LIBRARY = re.compile(r"(usr/)?lib(32|64|x32)?(/[^/]+-linux-[^/]+)?(/[^/]+\.so[^/]*)?")
# Bounds for what goes to the compiler: the standard library is about 30 MB of source.
MAX_SOURCE = 8 << 20
TIMEOUT = 600
# Runs in the sandbox, with the image's interpreter and standard library.
_COMPILER = r"""
import py_compile, sys
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
for i, source in enumerate(sys.stdin.read().splitlines()):
    try:
        py_compile.compile(source, cfile=f"{out}/{i}.pyc", dfile=source, doraise=True,
                           optimize=0, invalidation_mode=mode)
    except Exception:
        pass  # a source the compiler refuses (Python 2 test data) stays uncompiled
"""
_ENV = {"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0", "PYTHONUTF8": "1", "LANG": "C"}


def compile_stdlib(tree: Tree) -> list[str]:
    """Add __pycache__/*.pyc for every Python standard library whose interpreter is in
    the image; returns warnings."""
    for entry in [e for e in tree.entries() if _STDLIB.fullmatch(e.path)]:
        libdir = posixpath.dirname(entry.path)
        version = _STDLIB.fullmatch(entry.path).group(1)  # type: ignore[union-attr]
        python = tree.resolve(f"usr/bin/python{version}")
        if python is None or python.kind not in ("file", "hardlink"):
            continue  # a standard library without its interpreter: nothing to compile with
        _compile_dir(tree, libdir, python, f"cpython-{version.replace('.', '')}")
    return []


def _machine(header: bytes) -> bytes:
    """An ELF header's e_machine (with its byte order), or b"" if it is not ELF."""
    return header[5:6] + header[18:20] if header[:4] == b"\x7fELF" else b""


def _host_header() -> bytes:
    with open("/proc/self/exe", "rb") as f:
        return f.read(20)


def _compile_dir(tree: Tree, libdir: str, python: Entry, tag: str) -> int:
    targets, linked = [], {python.path}
    for e in tree.entries():
        if not (e.path.startswith(libdir + "/") and e.path.endswith(".py")) \
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
        return e.path in linked or e.path.startswith(libdir + "/") \
            or e.path.startswith("etc/ld.so.") or bool(_LIBRARY.fullmatch(e.path))

    what = f"compiling /{libdir} (python{libdir.rsplit('python', 1)[1]}'s bytecode)"
    with materialised(tree, wanted, what) as box:
        try:
            box.run(["/" + python.path, "-S", "-s", "-B", "-c",
                     _COMPILER.replace("{out}", OUT)],
                    _ENV, "".join(f"/{e.path}\n" for e, _ in targets).encode(), TIMEOUT, what)
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
        made = 0
        for name, data in box.outputs():
            index = name.removesuffix(".pyc")
            if not index.isdigit() or int(index) >= len(targets) or not data:
                continue
            entry, pyc = targets[int(index)]
            tree.add_dir(posixpath.dirname(pyc), 0o755, origin=entry.origin)
            tree.add_file(pyc, data, 0o644, origin=entry.origin)
            made += 1
    return made

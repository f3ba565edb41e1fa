"""The standard library's bytecode, as Debian's py3compile would leave it after install.

Debian ships no .pyc files; python3.X's postinst compiles the standard library in
place. We compile it at build time with a CPython of the host whose magic number
(the bytecode format) is the image's, run as a plain compiler: sources go in on
stdin, .pyc bytes come out, nothing from a package is executed and nothing is
imported from the image. The .pyc files are "unchecked-hash" (PEP 552), as
py3compile writes them: valid without any file times, so the bytes depend only on
the source and the compiler (PYTHONHASHSEED is fixed, for frozenset constants).
Without such a host interpreter the image has no bytecode and the build says so.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import subprocess
import sys
import tempfile

from assembler.rootfs.tree import Tree

_STDLIB = re.compile(r"usr/lib/python(3\.\d+)/os\.py")
_MAGIC = re.compile(rb"^MAGIC_NUMBER = \((\d+)\)\.to_bytes\(2, 'little'\) \+ b'\\r\\n'", re.M)
# Bounds for what goes to the compiler: the standard library is about 30 MB of source.
MAX_SOURCE = 8 << 20
_COMPILER = r"""
import importlib._bootstrap_external as be, importlib.util, sys
r, w = sys.stdin.buffer, sys.stdout.buffer
def frame():
    head = r.read(4)
    return r.read(int.from_bytes(head, "big")) if len(head) == 4 else None
while (name := frame()) is not None:
    source = frame()
    try:
        code = compile(source, name.decode(), "exec", dont_inherit=True, optimize=0)
        out = be._code_to_hash_pyc(code, importlib.util.source_hash(source), False)
    except Exception:
        out = b""
    w.write(len(out).to_bytes(4, "big") + out)
w.flush()
"""
_PROBE = ("import importlib.util, sys; "
          "print(importlib.util.MAGIC_NUMBER[:2].hex(), sys.implementation.cache_tag)")


def _frame(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _compiler(version: str, magic: int) -> tuple[str, str] | None:
    """(path, cache tag) of a host CPython whose bytecode is the image's."""
    want = magic.to_bytes(2, "little").hex()
    for exe in dict.fromkeys([sys.executable, shutil.which(f"python{version}") or ""]):
        if not exe:
            continue
        try:
            r = subprocess.run([exe, "-I", "-c", _PROBE], capture_output=True, text=True,
                               timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        got = r.stdout.split()
        if r.returncode == 0 and len(got) == 2 and got[0] == want \
                and got[1] == f"cpython-{version.replace('.', '')}":
            return exe, got[1]
    return None


def compile_stdlib(tree: Tree) -> list[str]:
    """Add __pycache__/*.pyc for every Python standard library in the image; warnings."""
    warnings = []
    for entry in [e for e in tree.entries() if _STDLIB.fullmatch(e.path)]:
        libdir = posixpath.dirname(entry.path)
        version = _STDLIB.fullmatch(entry.path).group(1)  # type: ignore[union-attr]
        bootstrap = f"{libdir}/importlib/_bootstrap_external.py"
        m = _MAGIC.search(tree.read(bootstrap)) if tree.resolve(bootstrap) else None
        if m is None:
            continue  # not a CPython standard library we know how to read
        found = _compiler(version, int(m.group(1)))
        if found is None:
            magic = m.group(1).decode()
            warnings.append(f"/{libdir}: no python{version} on this machine to compile the "
                            f"standard library with (magic number {magic}); the image has no "
                            f"bytecode, so python{version} starts slower. Install "
                            f"python{version} here and build again.")
            continue
        _compile_dir(tree, libdir, *found)
    return warnings


def _compile_dir(tree: Tree, libdir: str, exe: str, tag: str) -> int:
    sources = [e for e in tree.entries()
               if e.path.startswith(libdir + "/") and e.path.endswith(".py")
               and e.kind in ("file", "hardlink") and e.size <= MAX_SOURCE
               and "/__pycache__/" not in e.path]
    targets = []
    for e in sources:
        d, name = posixpath.split(e.path)
        pyc = f"{d}/__pycache__/{name[:-3]}.{tag}.pyc"
        if tree.get(pyc) is None:
            targets.append((e, pyc))
    if not targets:
        return 0
    payload = b"".join(_frame(("/" + e.path).encode()) + _frame(tree.read(e.path))
                       for e, _ in targets)
    with tempfile.TemporaryDirectory() as empty:
        # -S -s and a clean environment: no site, no user packages, fixed hash seed;
        # the working directory is empty so nothing is imported from it.
        r = subprocess.run([exe, "-S", "-s", "-c", _COMPILER], input=payload,
                           capture_output=True, env={"PYTHONHASHSEED": "0"}, cwd=empty,
                           timeout=600)
    out, pos, made = r.stdout, 0, 0
    for entry, pyc in targets:
        if pos + 4 > len(out):
            break
        n = int.from_bytes(out[pos:pos + 4], "big")
        data = out[pos + 4:pos + 4 + n]
        pos += 4 + n
        if data:  # a source the compiler refused (Python 2 test data) stays uncompiled
            tree.add_dir(posixpath.dirname(pyc), 0o755, origin=entry.origin)
            tree.add_file(pyc, data, 0o644, origin=entry.origin)
            made += 1
    return made

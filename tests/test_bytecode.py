"""rootfs.bytecode: the standard library's .pyc, compiled by a matching host CPython."""

from __future__ import annotations

import importlib.util
import marshal
import sys

from assembler.rootfs.bytecode import compile_stdlib
from assembler.rootfs.tree import Tree

VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
TAG = sys.implementation.cache_tag
LIB = f"usr/lib/python{VERSION}"
MAGIC = int.from_bytes(importlib.util.MAGIC_NUMBER[:2], "little")


def stdlib_tree(magic: int = MAGIC) -> Tree:
    tree = Tree()
    tree.add_file(f"{LIB}/os.py", b"import sys\nX = {'a', 'b', 'c'}\n", origin="libpython")
    tree.add_file(f"{LIB}/json/__init__.py", b"def f(x):\n    return x in ('y', 'z')\n",
                  origin="libpython")
    tree.add_file(f"{LIB}/lib2to3/tests/data/py2.py", b"print 'python 2'\n", origin="libpython")
    tree.add_file(f"{LIB}/importlib/_bootstrap_external.py",
                  f"MAGIC_NUMBER = ({magic}).to_bytes(2, 'little') + b'\\r\\n'\n".encode(),
                  origin="libpython")
    return tree


def pycs(tree: Tree) -> dict[str, bytes]:
    return {e.path: tree.read(e.path) for e in tree.entries() if e.path.endswith(".pyc")}


def test_unchecked_hash_pycs_next_to_each_source_reproducibly() -> None:
    with stdlib_tree() as tree:
        assert compile_stdlib(tree) == []
        first = pycs(tree)
        assert sorted(first) == [f"{LIB}/__pycache__/os.{TAG}.pyc",
                                 f"{LIB}/importlib/__pycache__/_bootstrap_external.{TAG}.pyc",
                                 f"{LIB}/json/__pycache__/__init__.{TAG}.pyc"]  # py2 skipped
        data = first[f"{LIB}/json/__pycache__/__init__.{TAG}.pyc"]
        assert data[:4] == importlib.util.MAGIC_NUMBER
        assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, not checked
        source = tree.read(f"{LIB}/json/__init__.py")
        assert data[8:16] == importlib.util.source_hash(source)
        code = marshal.loads(data[16:])
        assert code.co_filename == f"/{LIB}/json/__init__.py"
        assert tree.get(f"{LIB}/json/__pycache__/__init__.{TAG}.pyc").origin == "libpython"
    with stdlib_tree() as again:
        compile_stdlib(again)
        assert pycs(again) == first


def test_no_matching_interpreter_is_said_not_silent() -> None:
    with stdlib_tree(magic=1) as tree:
        warnings = compile_stdlib(tree)
        assert pycs(tree) == {}
        assert len(warnings) == 1 and f"no python{VERSION} on this machine" in warnings[0]
        assert "magic number 1" in warnings[0]

"""rootfs.bytecode: the standard library's .pyc, compiled by the image's own interpreter
inside bubblewrap. The "image" here is this machine's python3.X, its libraries and part of
its standard library, copied into a Tree; no real image needed."""

from __future__ import annotations

import ast
import importlib.util
import marshal
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assembler.errors import SandboxError
from assembler.rootfs import sandbox
from assembler.rootfs.bytecode import compile_stdlib
from assembler.rootfs.tree import Tree

VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
TAG = sys.implementation.cache_tag
LIB = f"usr/lib/python{VERSION}"
HOST_LIB = Path(f"/usr/lib/python{VERSION}")
HOST_PYTHON = Path(f"/usr/bin/python{VERSION}")
# Packages the interpreter and py_compile need at start-up, besides top-level modules.
PACKAGES = ("encodings", "importlib", "collections", "re", "json")

pytestmark = pytest.mark.skipif(not HOST_PYTHON.is_file() or not HOST_LIB.is_dir(),
                                reason=f"needs Debian's python{VERSION} to play the image's")


def _libraries(exe: Path) -> dict[str, Path]:
    """Tree path -> host file of the loader and each library `exe` needs (ldd)."""
    out = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, check=True).stdout
    libs = {}
    for line in out.splitlines():
        parts = line.split()
        host = next((p for p in parts if p.startswith("/")), None)
        if host is None:
            continue
        name = Path(host).name
        libs[f"lib64/{name}" if "ld-linux" in name else
             f"usr/lib/x86_64-linux-gnu/{name}"] = Path(os.path.realpath(host))
    return libs


def image(with_python: bool = True, machine: bytes = b"") -> Tree:
    tree = Tree(merged_usr=True)
    if with_python:
        binary = HOST_PYTHON.read_bytes()
        if machine:  # e_machine: another architecture's interpreter
            binary = binary[:18] + machine + binary[20:]
        tree.add_file(f"usr/bin/python{VERSION}", binary, 0o755, origin="python3-minimal")
        tree.add_symlink("usr/bin/python3", f"python{VERSION}", origin="python3-minimal")
        for path, host in _libraries(HOST_PYTHON).items():
            tree.add_file(path, host.read_bytes(), 0o755, origin="libc6")
    for host in sorted(HOST_LIB.glob("*.py")):
        tree.add_file(f"{LIB}/{host.name}", host.read_bytes(), origin="libpython")
    for pkg in PACKAGES:
        for host in sorted((HOST_LIB / pkg).glob("*.py")):
            tree.add_file(f"{LIB}/{pkg}/{host.name}", host.read_bytes(), origin="libpython")
    tree.add_file(f"{LIB}/lib2to3/tests/data/py2.py", b"print 'python 2'\n", origin="libpython")
    # As Debian's: the module is a link to a conffile.
    tree.add_file(f"etc/python{VERSION}/sitecustomize.py", b"SITE = 1\n", origin="libpython")
    tree.add_symlink(f"{LIB}/sitecustomize.py", f"/etc/python{VERSION}/sitecustomize.py",
                     origin="libpython")
    tree.add_file(f"{LIB}/frozen.py", b"X = frozenset({'a', 'b', 'c', 'd', 'e'})\n",
                  origin="libpython")
    return tree


def pycs(tree: Tree) -> dict[str, bytes]:
    return {e.path: tree.read(e.path) for e in tree.entries() if e.path.endswith(".pyc")}


def test_unchecked_hash_pycs_from_the_images_interpreter_reproducibly() -> None:
    with image() as tree:
        assert compile_stdlib(tree) == []
        first = pycs(tree)
        sources = [e.path for e in tree.entries()
                   if e.path.startswith(LIB) and e.path.endswith(".py")]
        assert len(first) == len(sources) - 1  # all but the Python 2 one
        assert f"{LIB}/lib2to3/tests/data/__pycache__/py2.{TAG}.pyc" not in first
        site = marshal.loads(first[f"{LIB}/__pycache__/sitecustomize.{TAG}.pyc"][16:])
        assert site.co_filename == f"/{LIB}/sitecustomize.py" and "SITE" in site.co_names
        data = first[f"{LIB}/json/__pycache__/__init__.{TAG}.pyc"]
        assert data[:4] == importlib.util.MAGIC_NUMBER
        assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, not checked
        assert data[8:16] == importlib.util.source_hash(tree.read(f"{LIB}/json/__init__.py"))
        code = marshal.loads(data[16:])
        assert code.co_filename == f"/{LIB}/json/__init__.py"
        assert code.co_consts[0] is not None  # the docstring: optimization level 0
        assert tree.get(f"{LIB}/json/__pycache__/__init__.{TAG}.pyc").origin == "libpython"
    with image() as again:
        compile_stdlib(again)
        assert pycs(again) == first  # frozenset order too: PYTHONHASHSEED is fixed



def test_python3s_own_modules_by_the_default_interpreter_only() -> None:
    """python3's postinst compiles /usr/share/python3 with the interpreter python3 names."""
    share = "usr/share/python3"
    with image() as tree:
        tree.add_file(f"{share}/py3versions.py", b"def default(): return 3\n", origin="python3")
        tree.add_file(f"{share}/debpython/__init__.py", b"X = 1\n", origin="python3")
        compile_stdlib(tree)
        made = pycs(tree)
        for name in ("__pycache__/py3versions", "debpython/__pycache__/__init__"):
            code = marshal.loads(made[f"{share}/{name}.{TAG}.pyc"][16:])
            assert code.co_filename == f"/{share}/{name.replace('__pycache__/', '')}.py"
        assert tree.get(f"{share}/__pycache__/py3versions.{TAG}.pyc").origin == "python3"
    with image() as tree:
        tree.remove("usr/bin/python3")   # python3.X without the default python3
        tree.add_file(f"{share}/py3versions.py", b"def default(): return 3\n", origin="python3")
        compile_stdlib(tree)
        assert not [p for p in pycs(tree) if p.startswith(share)]
        assert pycs(tree)  # the standard library still is compiled

def test_no_interpreter_in_the_image_no_bytecode() -> None:
    with image(with_python=False) as tree:
        assert compile_stdlib(tree) == []
        assert pycs(tree) == {}


def test_without_bubblewrap_the_build_fails_saying_how_to_opt_out(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    with image() as tree, pytest.raises(SandboxError) as e:
        compile_stdlib(tree)
    assert "bwrap" in str(e.value) and "apt-get install bubblewrap" in str(e.value)
    assert "python-bytecode: false" in str(e.value)
    assert pycs(tree) == {}


def test_a_foreign_interpreter_says_what_to_do() -> None:
    """An arm64 image built on this machine: its python3.X cannot run here."""
    host = HOST_PYTHON.read_bytes()[18:20]
    other = (0xB7 if host != (0xB7).to_bytes(2, "little") else 0x3E).to_bytes(2, "little")
    with image(machine=other) as tree, \
            pytest.raises(SandboxError) as e:
        compile_stdlib(tree)
    assert "built for another architecture" in str(e.value)
    assert "python-bytecode: false" in str(e.value) and pycs(tree) == {}


PROBE = r"""
import os, socket, sys
seen = {"root": sorted(os.listdir("/")), "env": sorted(os.environ),
        "host_etc": os.path.exists("/etc/passwd") or os.path.exists("/work")}
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    seen["net"] = True
except OSError:
    seen["net"] = False
try:
    open("/usr/x", "w")
    seen["ro"] = False
except OSError:
    seen["ro"] = True
os.symlink("/etc/hostname", "/out/link")
open("/out/result", "w").write(repr(seen))
"""


def test_the_sandbox_sees_only_the_tree_no_network_and_writes_only_out() -> None:
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    with image() as tree, listener, sandbox.materialised(tree, lambda e: True, "probe") as box:
        box.run([f"/usr/bin/python{VERSION}", "-S", "-c", PROBE, str(port)],
                {"PATH": "/usr/bin"}, b"", 60, "probe")
        out = dict(box.outputs())
    assert set(out) == {"result"}  # the link to a host file is not read back
    seen = ast.literal_eval(out["result"].decode())
    assert seen["net"] is False and seen["ro"] is True and seen["host_etc"] is False
    assert seen["root"] == ["bin", "dev", "etc", "lib", "lib64", "out", "sbin", "tmp", "usr"]
    assert seen["env"] == ["PATH", "PWD"]  # PWD: bubblewrap's --chdir


def test_a_failing_program_is_one_clear_error() -> None:
    with image() as tree, sandbox.materialised(tree, lambda e: True, "probe") as box, \
            pytest.raises(SandboxError) as e:
        box.run([f"/usr/bin/python{VERSION}", "-S", "-c", "raise SystemExit('boom')"],
                {}, b"", 60, "probe")
    assert "exit code 1" in str(e.value) and "boom" in str(e.value)


def _spec(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "image.yaml"
    path.write_text("distro: debian/bookworm\ncontents:\n  packages: [python3]\n" + extra)
    return path


def test_python_bytecode_false_builds_without_running_anything(tmp_path: Path,
                                                               monkeypatch) -> None:
    from assembler.debian.scripts import run_scripts
    from assembler.spec.document import load_spec

    spec = load_spec(_spec(tmp_path, "python-bytecode: false\n"))
    assert spec.python_bytecode is False
    assert load_spec(_spec(tmp_path, "")).python_bytecode is True
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)  # would fail if used
    with image() as tree:
        assert run_scripts(tree, spec, None) == []
        assert pycs(tree) == {}


def test_python_bytecode_must_be_a_boolean(tmp_path: Path) -> None:
    from assembler.errors import SpecError
    from assembler.spec.document import load_spec

    with pytest.raises(SpecError, match=r"image.yaml:4.*python-bytecode must be true or false"):
        load_spec(_spec(tmp_path, "python-bytecode: sometimes\n"))

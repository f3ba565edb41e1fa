"""Running a program from the image, and only there: a part of the tree materialised in a
temporary directory and bubblewrap around it.

The sandbox shares nothing with the host (every namespace unshared, so no network), sees
the materialised tree read-only as its root, a tmpfs /tmp and one writable directory,
/out, whose files the caller reads back without following links. It starts with an
empty environment plus what the caller passes, in its own session, dies with us, and is
killed after a time limit. As root it also drops every capability.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from assembler.errors import SandboxError
from assembler.rootfs.tree import Entry, Tree

OUT = "/out"
# Mount points bubblewrap needs in the read-only root; the tree's own entries there are
# not materialised.
_MOUNTS = ("tmp", "dev", "out")
# What the sandbox may hand back: one file, and all of them together.
MAX_OUTPUT_FILE = 16 << 20
MAX_OUTPUT = 512 << 20
_STDERR_SHOWN = 1500

OPT_OUT = ("Install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf "
           "install bubblewrap; Alpine: apk add bubblewrap), or set 'python-bytecode: "
           "false' in the spec to build without the standard library's bytecode.")


@dataclass
class Sandbox:
    root: Path    # the materialised tree, the sandbox's read-only /
    out: Path     # the sandbox's /out, the only place it can write to
    bwrap: str

    def run(self, argv: list[str], env: dict[str, str], stdin: bytes, timeout: int,
            what: str) -> subprocess.CompletedProcess[bytes]:
        cmd = [self.bwrap, "--unshare-all", "--die-with-parent", "--new-session",
               "--clearenv", "--ro-bind", str(self.root), "/", "--dev", "/dev",
               "--tmpfs", "/tmp", "--bind", str(self.out), OUT, "--chdir", "/tmp"]
        if os.geteuid() == 0:
            cmd += ["--cap-drop", "ALL"]
        for key, value in sorted(env.items()):
            cmd += ["--setenv", key, value]
        try:
            r = subprocess.run([*cmd, "--", *argv], input=stdin, capture_output=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise SandboxError(f"{what}: the sandboxed {argv[0]} did not finish within "
                               f"{timeout} s and was killed.", hint=OPT_OUT) from e
        except OSError as e:
            raise SandboxError(f"{what}: cannot start bubblewrap ({self.bwrap}): {e}.",
                               hint=OPT_OUT) from e
        if r.returncode != 0:
            tail = r.stderr.decode("utf-8", "replace").strip()[-_STDERR_SHOWN:]
            raise SandboxError(f"{what}: the sandboxed {argv[0]} failed (exit code "
                               f"{r.returncode}): {tail or 'no message'}", hint=OPT_OUT)
        return r

    def outputs(self) -> Iterator[tuple[str, bytes]]:
        """(name, bytes) of each regular file the sandbox left in /out, in name order;
        links and anything else it made there are ignored, sizes are bounded."""
        total = 0
        for name in sorted(os.listdir(self.out)):
            try:
                fd = os.open(self.out / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue  # a link or a file it took away again
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    continue
                data = f.read(MAX_OUTPUT_FILE + 1)
            total += len(data)
            if len(data) > MAX_OUTPUT_FILE or total > MAX_OUTPUT:
                raise SandboxError(f"the sandbox wrote more than the bound for {name} "
                                   f"({MAX_OUTPUT_FILE} bytes a file, {MAX_OUTPUT} in all).")
            yield name, data


def bubblewrap(what: str) -> str:
    found = shutil.which("bwrap")
    if found is None:
        raise SandboxError(f"{what} runs the image's own program, and only inside a "
                           "bubblewrap sandbox (no network, no host file system), but "
                           "'bwrap' is not on PATH.", hint=OPT_OUT)
    return found


@contextmanager
def materialised(tree: Tree, wanted: Callable[[Entry], bool], what: str
                 ) -> Iterator[Sandbox]:
    """The entries `wanted` selects (their parent directories created as needed) in a
    temporary directory, ready to run in; removed afterwards."""
    bwrap = bubblewrap(what)
    with tempfile.TemporaryDirectory(prefix="assembler-sandbox-") as d:
        root, out = Path(d) / "root", Path(d) / "out"
        root.mkdir()
        out.mkdir()
        for name in _MOUNTS:
            (root / name).mkdir()
        made = {""}
        for entry in tree.entries():
            if entry.path.split("/", 1)[0] in _MOUNTS or not wanted(entry):
                continue
            parent = posixpath.dirname(entry.path)
            if not _parents(root, parent, made):
                continue
            _write(tree, entry, root / entry.path, made)
        yield Sandbox(root, out, bwrap)


def _parents(root: Path, parent: str, made: set[str]) -> bool:
    """Create `parent` as real directories; False where a link is in the way (the tree's
    paths are canonical, so a link there is a link we made: never follow it)."""
    parts = parent.split("/") if parent else []
    for i in range(len(parts)):
        sub = "/".join(parts[:i + 1])
        if sub in made:
            continue
        path = root / sub
        if os.path.lexists(path):
            if not (path.is_dir() and not path.is_symlink()):
                return False
        else:
            path.mkdir(mode=0o755)
        made.add(sub)
    return True


def _write(tree: Tree, entry: Entry, path: Path, made: set[str]) -> None:
    if os.path.lexists(path):
        return
    if entry.kind == "dir":
        path.mkdir(mode=0o755)
        made.add(entry.path)
    elif entry.kind == "symlink":
        # Resolved inside the sandbox, where the materialised tree is /.
        os.symlink(entry.link, path)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                     0o755 if entry.mode & 0o111 else 0o644)
        with os.fdopen(fd, "wb") as f, tree.open_entry(entry) as src:
            shutil.copyfileobj(src, f)

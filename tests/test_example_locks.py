"""The example specs' locks are committed and fresh: `make run` builds from them (--locked).

Every spec under specs/ is checked, so a new example without a lock, or an edit
to a spec's packages without re-locking, fails here. Regenerate with `make locks`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from assembler.lock.lockfile import lock_path, read_lock, staleness
from assembler.spec.document import load_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").rglob("*.yaml"))


def test_there_are_example_specs():
    assert len(SPECS) >= 2


@pytest.mark.parametrize("spec", SPECS, ids=[str(s.relative_to(ROOT)) for s in SPECS])
def test_example_lock_is_committed_and_fresh(spec):
    lock = read_lock(lock_path(spec))       # a missing or damaged lock fails here
    assert lock.spec_file == spec.name
    assert staleness(lock, load_spec(spec)) is None, f"{spec} changed: run 'make locks'"
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--error-unmatch",
                              str(lock_path(spec))], capture_output=True)
    if (ROOT / ".git").exists():
        assert tracked.returncode == 0, f"{lock_path(spec)} is not committed"


def test_make_run_builds_from_the_committed_lock():
    out = subprocess.run(["make", "-n", "-C", str(ROOT), "run"], capture_output=True, text=True)
    command = [line for line in out.stdout.splitlines() if "assemble build" in line]
    assert command and "--locked" in command[0], out.stdout


@pytest.mark.network
def test_make_run_spec_builds_from_its_committed_lock(tmp_path, shared_cache):
    """What `make run` does on a fresh clone, on a copy (so nothing in specs/ is touched)."""
    import shutil
    import sys

    spec = ROOT / "specs" / "python3.yaml"
    shutil.copy(spec, tmp_path / spec.name)
    shutil.copy(lock_path(spec), tmp_path / lock_path(spec).name)
    r = subprocess.run([sys.executable, "-m", "assembler.cli", "build", str(tmp_path / spec.name),
                        "--locked", "-q", "--cache-dir", str(shared_cache), "-o",
                        str(tmp_path / "out.tar")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("sha256:")
    assert (tmp_path / lock_path(spec).name).read_bytes() == lock_path(spec).read_bytes()

"""The example specs' images, from locks committed for the purpose, keep their digests.

tests/data/golden/ holds a copy of each example spec, its lock and the digest
its image had when the lock was made. A restructuring of the code must not move
a digest; a change that means to change images (a new generated file, say)
updates digests.json in the same commit and says why.

The lock bytes are checked too, when the mirror still serves the indexes the
committed lock was made from (the update and security suites move daily).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "data" / "golden"
DIGESTS = json.loads((GOLDEN / "digests.json").read_text())
pytestmark = pytest.mark.network


def assemble(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assembler.cli", *args], capture_output=True,
                          text=True)


def test_every_golden_spec_has_a_digest():
    assert sorted(DIGESTS) == sorted(p.stem for p in GOLDEN.glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(DIGESTS))
def test_digest_from_committed_lock(name, tmp_path, shared_cache):
    shutil.copy(GOLDEN / f"{name}.yaml", tmp_path / f"{name}.yaml")
    shutil.copy(GOLDEN / f"{name}.lock.json", tmp_path / f"{name}.lock.json")
    r = assemble("build", str(tmp_path / f"{name}.yaml"), "--locked", "-q",
                 "--cache-dir", str(shared_cache), "-o", str(tmp_path / "image.tar"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == DIGESTS[name]
    # --locked never rewrites the lock.
    assert (tmp_path / f"{name}.lock.json").read_bytes() == \
        (GOLDEN / f"{name}.lock.json").read_bytes()


@pytest.mark.parametrize("name", ["python3", "slices-python3", "static"])
def test_lock_bytes_when_the_mirror_has_not_moved(name, tmp_path, shared_cache):
    shutil.copy(GOLDEN / f"{name}.yaml", tmp_path / f"{name}.yaml")
    r = assemble("lock", str(tmp_path / f"{name}.yaml"), "-q", "--cache-dir", str(shared_cache))
    assert r.returncode == 0, r.stderr
    fresh = json.loads((tmp_path / f"{name}.lock.json").read_text())
    golden = json.loads((GOLDEN / f"{name}.lock.json").read_text())
    same_indexes = all(fresh["archs"][a]["indexes"] == golden["archs"][a]["indexes"]
                       for a in golden["archs"])
    if not same_indexes:
        pytest.skip("the mirror's indexes moved since the golden lock was made")
    assert (tmp_path / f"{name}.lock.json").read_bytes() == \
        (GOLDEN / f"{name}.lock.json").read_bytes()

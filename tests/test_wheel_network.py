"""A normal (non-editable) install works: a wheel carries the distro definitions,
keys and slice catalogs, so `assemble` run outside the checkout locks and builds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.network


def test_wheel_install_locks_and_builds_outside_the_checkout(tmp_path, shared_cache):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                    str(ROOT)], check=True, cwd=tmp_path, capture_output=True)
    wheel = next(wheels.glob("assembler-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True,
                       text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy(ROOT / "specs" / "static.yaml", work / "image.yaml")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    # Not the checkout's package: the installed one, and its own repos/ data.
    where = subprocess.run([str(py), "-c", "import assembler; print(assembler.__file__)"],
                           capture_output=True, text=True, cwd=work, env=env, check=True)
    assert str(env_dir) in where.stdout and str(ROOT) not in where.stdout
    assemble = env_dir / "bin" / "assemble"
    for args in (["lock"], ["build", "-o", "out.tar"]):
        r = subprocess.run([str(assemble), *args, "image.yaml", "-q", "--cache-dir",
                            str(shared_cache)], capture_output=True, text=True, cwd=work,
                           env=env)
        assert r.returncode == 0, r.stderr
    assert (work / "image.lock.json").is_file()
    assert (work / "out.tar").stat().st_size > 0
    r = subprocess.run(["skopeo", "inspect", f"oci-archive:{work / 'out.tar'}"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

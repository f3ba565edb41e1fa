"""`--format oci-dir` replaces an existing layout atomically (issue 10, item 4).

The new layout is swapped in with one rename (RENAME_EXCHANGE), so at every
instant the output directory holds a whole layout; where the system cannot
swap, a failure between the two renames puts the old layout back, and a
process killed there leaves it where the next write restores it. Two builds
to one directory never strand the old output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aptrepo import Pkg
from hermetic import write_distro, write_spec
from test_oci import make_image

from assembler.errors import IntegrityError
from assembler.image import oci


def _digest(layout: Path) -> str:
    return json.loads((layout / "index.json").read_bytes())["manifests"][0]["digest"]


def _siblings(layout: Path) -> list[str]:
    return sorted(p.name for p in layout.parent.iterdir()
                  if p.name.startswith((".tmp-", ".old-")))


@pytest.fixture
def two_images(tmp_path):
    a = make_image(tmp_path / "a", "amd64")
    b = make_image(tmp_path / "b", "arm64")
    dest = tmp_path / "out" / "image"
    return a, b, dest


def test_replacement_is_one_swap_and_leaves_nothing_beside(two_images):
    a, b, dest = two_images
    first = oci.write_oci_dir(dest, [a], ["x:1"])
    second = oci.write_oci_dir(dest, [b], ["x:1"])
    assert first != second and _digest(dest) == second
    assert _siblings(dest) == []


def test_swap_is_available_here(tmp_path):
    # The fallback is tested below; the real path must be the one-step swap.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "in-a").touch()
    assert oci.exchange(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "b" / "in-a").exists()


@pytest.mark.parametrize("swap", ["fails", "unsupported"])
def test_every_failure_keeps_the_old_layout(two_images, monkeypatch, swap):
    a, b, dest = two_images
    old = oci.write_oci_dir(dest, [a], ["x:1"])
    if swap == "fails":
        def broken(x, y):
            raise OSError(5, "Input/output error")
        monkeypatch.setattr(oci, "exchange", broken)
    else:
        monkeypatch.setattr(oci, "exchange", lambda x, y: False)
        real = os.replace
        calls = []

        def interrupted(src, dst):
            calls.append(dst)
            if len(calls) == 2:           # between moving the old aside and the new in
                raise KeyboardInterrupt
            return real(src, dst)
        monkeypatch.setattr(oci.os, "replace", interrupted)
    with pytest.raises((OSError, KeyboardInterrupt)):
        oci.write_oci_dir(dest, [b], ["x:1"])
    assert _digest(dest) == old
    assert _siblings(dest) == []


def test_layout_left_aside_by_a_killed_run_is_restored(two_images, tmp_path):
    a, b, dest = two_images
    old = oci.write_oci_dir(dest, [a], ["x:1"])
    aside = dest.parent / ".old-image-k1ll3d"
    aside.mkdir()
    os.replace(dest, aside / "layout")      # what a kill -9 between the renames leaves
    b.layers[0].path.write_bytes(b"changed")  # and this run fails too
    with pytest.raises(IntegrityError):
        oci.write_oci_dir(dest, [b], ["x:1"])
    assert _digest(dest) == old
    assert _siblings(dest) == []


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")
def test_two_builds_to_one_directory(tmp_path, apt_repo, apt_key):
    repo = apt_repo({"stable": [Pkg("hello", "1.0-1", files={"usr/bin/hello": b"hi\n"})]})
    distro = write_distro(tmp_path, apt_key.public_path, ["stable"])
    dest = tmp_path / "image"
    base = [sys.executable, "-m", "assembler.cli", "build", "--cache-dir", str(tmp_path / "c"),
            "--mirror", f"test={repo.url}", "-q", "--format", "oci-dir", "-o", str(dest)]
    specs = []
    for i, body in enumerate(["[hello]", "[hello]\n  strip: [docs]"]):
        specs.append(write_spec(tmp_path, f"distro: {distro}\narchs: [amd64]\n"
                                f"contents:\n  packages: {body}\n", name=f"s{i}.yaml"))
    subprocess.run([*base, str(specs[0])], check=True)        # the old output
    runs = [subprocess.Popen([*base, str(s)], stderr=subprocess.PIPE, text=True)
            for s in specs for _ in range(2)]
    for r in runs:
        _, err = r.communicate(timeout=120)
        assert r.returncode == 0, err      # each swaps its layout in: none loses a race
    assert _siblings(dest) == []
    res = subprocess.run(["skopeo", "inspect", f"oci:{dest}"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr

"""Helpers for tests that run `assemble` against the served test archive."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from assembler.cli import main


def write_distro(tmp: Path, key_path: Path, suites: list[str], name: str = "test",
                 merged_usr: bool = False, slices: Path | None = None) -> Path:
    d = tmp / "testdistro.yaml"
    d.write_text(
        "family: debian\nrelease: test\n"
        f"merged-usr: {'true' if merged_usr else 'false'}\n"
        + (f"slices: {slices}\n" if slices else "") +
        "archives:\n"
        f"  - name: {name}\n"
        f"    suites: [{', '.join(suites)}]\n"
        "    components: [main]\n"
        "    available-components: [main, contrib]\n"
        f"    keys: [{key_path}]\n")
    return d


def write_spec(tmp: Path, body: str, name: str = "image.yaml") -> Path:
    p = tmp / name
    p.write_text(body)
    return p


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def cache_files(cache: Path) -> list[str]:
    if not cache.exists():
        return []
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def layer_members(tar_path: Path) -> dict[str, tarfile.TarInfo]:
    """The members of the first layer of a docker-archive image tar, by name."""
    with tarfile.open(tar_path) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        layer = outer.extractfile(manifest[0]["Layers"][0])
        with tarfile.open(fileobj=layer, mode="r:*") as inner:
            return {m.name: m for m in inner.getmembers()}
def write_bookworm_like(tmp: Path, key_path: Path, name: str = "test") -> Path:
    """A definition with bookworm's identity (os-release template) over a local archive
    whose suite is `bookworm`: images get what real bookworm images get."""
    import yaml

    from assembler.distro.definition import REPOS_DIR

    real = yaml.safe_load((REPOS_DIR / "debian" / "bookworm.yaml").read_text())
    d = tmp / "bookworm-local.yaml"
    d.write_text(yaml.safe_dump({
        "family": "debian", "release": "bookworm", "version": real["version"],
        "os-release": real["os-release"],
        "archives": [{"name": name, "suites": ["bookworm"], "components": ["main"],
                      "keys": [str(key_path)]}]}))
    return d


def image_file(tar: Path, path: str) -> bytes | str:
    """A path's bytes (or a symlink's target) in the first image of an image tar, from
    the topmost layer that has it."""
    import json
    import tarfile

    with tarfile.open(tar) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        for name in reversed(manifest["Layers"]):
            with tarfile.open(fileobj=outer.extractfile(name)) as inner:
                try:
                    m = inner.getmember(path)
                except KeyError:
                    continue
                return m.linkname if m.issym() else inner.extractfile(m).read()
    raise KeyError(path)


def umoci_unpack(image_tar: Path, dest: Path) -> Path:
    """Unpack an OCI archive with umoci (a real consumer) and return its rootfs."""
    import os
    import subprocess
    import tarfile

    layout = dest / "layout"
    layout.mkdir()
    with tarfile.open(image_tar) as t:
        t.extractall(layout, filter="data")
    cmd = ["umoci", "unpack", "--image", f"{layout}:latest", str(dest / "bundle")]
    if os.geteuid() != 0:
        cmd.insert(2, "--rootless")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return dest / "bundle" / "rootfs"


def skopeo_inspect(image_tar: Path) -> dict:
    """What skopeo (a real consumer) reads from an OCI archive."""
    import json
    import subprocess

    r = subprocess.run(["skopeo", "inspect", f"oci-archive:{image_tar}"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)

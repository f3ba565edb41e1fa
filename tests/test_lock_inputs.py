"""The lock's inputs-digest: what changes the package set changes it, order does not."""

from __future__ import annotations

from assembler.lock.lockfile import inputs_digest
from assembler.spec.document import load_spec

BASE = """distro: debian/bookworm
archs: [{archs}]
contents:
  packages: [{packages}]
  exclude: [{exclude}]
cmd: [{cmd}]
"""


def _digest(tmp_path, name="a.yaml", archs="amd64, arm64", packages="python3, ca-certificates",
            exclude="debconf, openssl", cmd="x") -> str:
    p = tmp_path / name
    p.write_text(BASE.format(archs=archs, packages=packages, exclude=exclude, cmd=cmd))
    return inputs_digest(load_spec(p))


def test_reordering_packages_keeps_the_digest(tmp_path):
    first = _digest(tmp_path)
    assert _digest(tmp_path, "b.yaml", packages="ca-certificates, python3") == first
    assert _digest(tmp_path, "c.yaml", exclude="openssl, debconf") == first
    assert _digest(tmp_path, "d.yaml", archs="arm64, amd64") == first
    assert _digest(tmp_path, "e.yaml", cmd="y") == first   # not an input


def test_changing_the_package_set_changes_the_digest(tmp_path):
    first = _digest(tmp_path)
    assert _digest(tmp_path, "b.yaml", packages="python3, ca-certificates, tzdata") != first
    assert _digest(tmp_path, "c.yaml", packages="python3>=3.11, ca-certificates") != first
    assert _digest(tmp_path, "d.yaml", exclude="debconf") != first
    assert _digest(tmp_path, "e.yaml", archs="amd64") != first


def test_a_lock_with_the_earlier_ordered_digest_stays_fresh(tmp_path):
    from assembler.lock.lockfile import staleness
    from assembler.lock.model import ArchLock, Lock

    spec = tmp_path / "a.yaml"
    spec.write_text(BASE.format(archs="amd64", packages="python3, ca-certificates",
                                exclude="debconf", cmd="x"))
    loaded = load_spec(spec)
    old = Lock("a.yaml", inputs_digest(loaded, ordered=True), "debian/bookworm",
               {"amd64": ArchLock([], [])})
    assert old.inputs_digest != inputs_digest(loaded)
    assert staleness(old, loaded) is None
    old.inputs_digest = "sha256:" + "0" * 64
    assert staleness(old, loaded) is not None

"""Several specs in one invocation read each index once (issue 16, Build 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assembler.cache import Cache
from assembler.options import Options
from assembler.packages import universes
from assembler.packages.universes import Universes, shared_indexes
from assembler.spec.document import load_spec

ROOT = Path(__file__).resolve().parents[1]
MIRROR = {"debian": "http://127.0.0.1:9/debian", "debian-security": "http://127.0.0.1:9/sec"}


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The architectures each loader made was asked to load, one entry per load."""
    made: list[str] = []

    class Loader:
        timings: dict = {}

        def load(self, arch: str) -> str:
            made.append(arch)
            return f"universe-{arch}"

    def index_loader(self, *args, **kwargs):
        return Loader()

    for fmt in {type(universes.format_for(universes.distro_for(load_spec(
            ROOT / "specs" / "static.yaml"))))}:
        monkeypatch.setattr(fmt, "index_loader", index_loader)
    return made


def _universes(name: str, tmp_path: Path, **opts: object) -> Universes:
    options = Options(Cache(tmp_path / "cache"), mirrors=dict(MIRROR), **opts)  # type: ignore[arg-type]
    return Universes(load_spec(ROOT / "specs" / name), options)


def test_specs_of_one_invocation_share_each_index(loads: list[str], tmp_path: Path) -> None:
    with shared_indexes():
        a, b = _universes("static.yaml", tmp_path), _universes("python3.yaml", tmp_path)
        assert a.universe("amd64") is b.universe("amd64")
        b.universe("amd64")
    assert loads == ["amd64"]


def test_without_the_block_each_spec_loads_its_own(loads: list[str], tmp_path: Path) -> None:
    a, b = _universes("static.yaml", tmp_path), _universes("static.yaml", tmp_path)
    a.universe("amd64")
    b.universe("amd64")
    assert loads == ["amd64", "amd64"]


def test_different_mirrors_or_caches_are_not_shared(loads: list[str], tmp_path: Path) -> None:
    with shared_indexes():
        _universes("static.yaml", tmp_path).universe("amd64")
        _universes("static.yaml", tmp_path / "other").universe("amd64")
        _universes("static.yaml", tmp_path, offline=True).universe("amd64")
    assert loads == ["amd64"] * 3

"""Package files arrive in the background: each lookup waits only for its own file."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

import assembler.fetch.packagefiles as packagefiles
from assembler.cache import Cache
from assembler.errors import NetworkError
from assembler.fetch.packagefiles import Wanted, fetch_all, fetching


def _wanted(name: str) -> tuple[Wanted, bytes]:
    data = f"the bytes of {name}".encode()
    return Wanted(name, "http://127.0.0.1:9", f"pool/{name}.deb",
                  hashlib.sha256(data).hexdigest(), len(data)), data


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch):
    """A fake download: writes the item's bytes, after its gate opens (if it has one)."""
    gates: dict[str, threading.Event] = {}
    failing: set[str] = set()
    started: list[str] = []
    payload: dict[str, bytes] = {}

    def download(url: str, dest: Path, sha256: str, size: int, tick) -> None:
        name = url.rsplit("/", 1)[1].removesuffix(".deb")
        started.append(name)
        if name in gates:
            assert gates[name].wait(10), f"{name}'s gate never opened"
        if name in failing:
            raise NetworkError(f"{url}: connection reset")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(payload[name])
        tick(size)

    monkeypatch.setattr(packagefiles, "download", download)
    return gates, failing, started, payload


def test_a_file_is_given_while_later_ones_still_download(tmp_path, served):
    gates, _, _, payload = served
    (a, da), (b, db) = _wanted("a"), _wanted("b")
    payload.update(a=da, b=db)
    gates["b"] = threading.Event()
    cache = Cache(tmp_path)
    with fetching([a, b], cache) as files:
        # b is held back: a is already usable, and nothing waits for b to get it.
        assert files[a.sha256].read_bytes() == da
        gates["b"].set()
        assert files[b.sha256].read_bytes() == db
    assert sorted(files) == sorted([a.sha256, b.sha256])


def test_a_failed_download_is_raised_where_its_file_is_wanted(tmp_path, served):
    _, failing, _, payload = served
    (a, da), (b, db) = _wanted("a"), _wanted("b")
    payload.update(a=da, b=db)
    failing.add("b")
    with pytest.raises(NetworkError, match="connection reset"), \
            fetching([a, b], Cache(tmp_path)) as files:
        assert files[a.sha256].read_bytes() == da
        files[b.sha256]


def test_leaving_the_block_raises_a_failure_nobody_looked_up(tmp_path, served):
    _, failing, _, payload = served
    (a, da), (b, db) = _wanted("a"), _wanted("b")
    payload.update(a=da, b=db)
    failing.add("b")
    with pytest.raises(NetworkError, match="connection reset"):
        fetch_all([a, b], Cache(tmp_path))


def test_an_error_in_the_block_cancels_downloads_not_yet_started(tmp_path, served,
                                                                  monkeypatch):
    gates, _, started, payload = served
    monkeypatch.setattr(packagefiles, "WORKERS", 1)
    items = []
    for name in "abcd":
        it, data = _wanted(name)
        items.append(it)
        payload[name] = data
    gates["a"] = threading.Event()
    # a is held until well after the error: the pending downloads are cancelled first.
    opener = threading.Timer(0.3, gates["a"].set)
    opener.start()
    with pytest.raises(RuntimeError, match="unpack failed"), \
            fetching(items, Cache(tmp_path)):
        raise RuntimeError("unpack failed")
    opener.join()
    # a was under way and finishes; b, c and d never start.
    assert started == ["a"]


def test_offline_refuses_before_anything_starts(tmp_path, served):
    _, _, started, _ = served
    a, _ = _wanted("a")
    with pytest.raises(NetworkError, match="--offline"), \
            fetching([a], Cache(tmp_path), offline=True):
        pass
    assert started == []

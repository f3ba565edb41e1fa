"""Must-show (issue 10, items 2 and 5): hostile .apk content, through `assemble build`
against a signed APK repository on 127.0.0.1: one paragraph, exit 2, nothing built."""

from __future__ import annotations

import tarfile

import pytest
import test_apk_support
from apkrepo import Apk
from hermetic import run
from hostiletar import run_bounded
from test_apk_build import setup_build, signer  # noqa: F401 - a fixture
from test_apk_support import file_info

pytestmark = pytest.mark.integration


def _member(name: str, content: bytes, pax: dict[str, str]) -> tuple[tarfile.TarInfo, bytes]:
    info = file_info(name)
    info.pax_headers = pax
    return info, content


def _evil(**kw) -> list[Apk]:
    return [Apk("evil", files={"usr/bin/ok": b"ok"}, **kw)]


@pytest.mark.parametrize("pkgs, words", [
    (_evil(raw_members=[_member("usr/bin/x", b"hello", {"size": "12ab"})]), ["is not a number"]),
    (_evil(raw_members=[_member("usr/bin/x", b"", {"mtime": "soon"})]), ["is not a number"]),
    (_evil(pkginfo=["replaces_priority = high"]), ["replaces_priority", "whole number"]),
    (_evil(raw_members=[_member("usr/bin/" + "x" * 5000, b"", {})]), ["ASSEMBLER_MAX_TAR_NAME"]),
    (_evil(raw_members=[_member("usr/bin/\nx", b"", {})]), ["newline"]),
])
def test_hostile_apk_refused(tmp_path, signer, capsys, pkgs, words):  # noqa: F811
    argv, out, server = setup_build(tmp_path, signer, pkgs, "evil")
    try:
        code, _, err = run(argv, capsys)
    finally:
        server.stop()
    assert code == 2 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and "evil" in err, err
    assert all(w in err for w in words), err
    assert not out.exists()


def test_truncated_data_tar_refused(tmp_path, signer, capsys, monkeypatch):  # noqa: F811
    whole = test_apk_support.tar_bytes

    def cut(entries, *, fmt=tarfile.PAX_FORMAT, end_marker=True):
        data = whole(entries, fmt=fmt, end_marker=end_marker)
        return data[:1536 + 100] if end_marker else data   # the data tar, mid-member

    monkeypatch.setattr("apkrepo.tar_bytes", cut)
    pkgs = _evil(raw_members=[_member("usr/bin/big", b"x" * 4000, {})])
    argv, out, server = setup_build(tmp_path, signer, pkgs, "evil")
    try:
        code, _, err = run(argv, capsys)
    finally:
        server.stop()
    assert code == 2 and "Traceback" not in err and "evil" in err, err
    assert not out.exists()


def test_sparse_apk_refused_with_bounded_memory(tmp_path, signer):  # noqa: F811
    sparse = _member("usr/bin/x", b"", {"GNU.sparse.size": str(10 ** 30)})
    argv, out, server = setup_build(tmp_path, signer, _evil(raw_members=[sparse]), "evil")
    try:
        code, err, rss = run_bounded(argv)
    finally:
        server.stop()
    assert code == 2 and "is sparse" in err and "Traceback" not in err, err
    assert rss < 100 << 20
    assert not out.exists()

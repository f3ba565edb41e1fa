"""The Contents index reduced to library name -> packages (the link check's provider hint)."""

from __future__ import annotations

import gzip

from assembler.debian.contents import _reduce

TEXT = b"""usr/bin/openssl                                         utils/openssl
usr/lib/x86_64-linux-gnu/libssl.so.3                    libs/libssl3
usr/lib/x86_64-linux-gnu/libcrypto.so.3                 libs/libssl3,libs/libssl3-udeb
lib/x86_64-linux-gnu/libc.so.6                          libs/libc6
lib64/ld-linux-x86-64.so.2                              libs/libc6
usr/lib/x86_64-linux-gnu/libz.so                        libdevel/zlib1g-dev
usr/share/doc/libssl3/libssl.so.3.txt                   doc/libssl3-doc
usr/lib/python3/dist-packages/foo/libfake.so.1          python/python3-foo
"""


def test_reduce_keeps_shared_objects_in_library_dirs() -> None:
    # Cut the input oddly: lines must survive chunk boundaries of the stream.
    out = _reduce(gzip.compress(TEXT * 3))
    assert out["libssl.so.3"] == ["libssl3"]
    assert out["libcrypto.so.3"] == ["libssl3", "libssl3-udeb"]
    assert out["libc.so.6"] == ["libc6"]
    assert out["ld-linux-x86-64.so.2"] == ["libc6"]
    assert out["libz.so"] == ["zlib1g-dev"]
    assert "libssl.so.3.txt" not in out and "openssl" not in out
    assert "libfake.so.1" not in out   # not a library directory the loader searches

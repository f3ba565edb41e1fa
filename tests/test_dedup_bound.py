"""bench/dedup_bound.py's lower bounds on two tiny images: a file shared with the same
metadata counts once, a changed owner counts again, and a package cut differently counts
again as a package though its shared file counts once as a file."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _bound_module():
    spec = importlib.util.spec_from_file_location("bench_dedup_bound", BENCH / "dedup_bound.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _image(path: Path, files: dict[str, tuple[bytes, int]]) -> Path:
    """An image tar as `assemble build` writes it, one layer: name -> (bytes, uid)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as layer:
        for name, (data, uid) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.uid = len(data), uid
            layer.addfile(info, io.BytesIO(data))
    blob = gzip.compress(raw.getvalue(), mtime=0)
    with tarfile.open(path, "w") as out:
        for name, data in (("blobs/sha256/layer", blob),
                           ("manifest.json", json.dumps([{"Config": "blobs/sha256/c",
                                                          "Layers": ["blobs/sha256/layer"]}])
                            .encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return path


def test_bounds_count_shared_files_once_and_other_package_cuts_again(tmp_path):
    dedup = _bound_module()
    lib = bytes(range(256)) * 40              # 10 kB, in both images
    tool = b"t" * 3000
    md5 = "var/lib/dpkg/status.d/libx.md5sums"
    a = _image(tmp_path / "a.tar", {"usr/lib/libx.so": (lib, 0), md5: (b"0  usr/lib/libx.so\n", 0),
                                    "etc/passwd": (b"root\n", 0)})
    b = _image(tmp_path / "b.tar", {"usr/lib/libx.so": (lib, 0),
                                    "usr/bin/x": (tool, 0),     # libx cut with one more file
                                    md5: (b"0  usr/lib/libx.so\n0  usr/bin/x\n", 0),
                                    "etc/passwd": (b"root\n", 1)})   # other owner: differs
    bound = dedup.bound([a, b])
    # Tar bytes: a 512-byte header, the content padded to 512.
    lib_t, tool_t, md5_a, md5_b, passwd = 512 + 10240, 512 + 3072, 1024, 1024, 1024
    assert bound.total_tar == 2 * lib_t + tool_t + md5_a + md5_b + 2 * passwd
    assert bound.files_tar == lib_t + tool_t + md5_a + md5_b + 2 * passwd   # lib.so once
    assert bound.packages_tar == 2 * lib_t + tool_t + md5_a + md5_b + 2 * passwd   # libx twice
    assert 0 < bound.files_gz < bound.packages_gz < bound.total_tar

"""inspect on images we did not build: a docker save tar with two layers (whiteouts, an
opaque directory), a Debian system's dpkg status + info/*.list, and apk's database."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

from assembler.cli import main
from assembler.image.inspect import inspect_image

STATUS = b"""Package: foo
Status: install ok installed
Version: 1.0-1
Architecture: amd64
Installed-Size: 12

Package: gone
Status: deinstall ok config-files
Version: 0.1
Architecture: amd64
"""
APK = b"""C:Q1abc=
P:busybox
V:1.36.1-r5
A:x86_64
I:924000
F:bin
R:busybox
a:0:0:4755

"""


def _layer(members: list[tuple[str, bytes | None, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _docker_save(path, layers: list[bytes]) -> None:
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"User": "1000", "Cmd": ["/bin/sh"]}}).encode()
    with tarfile.open(path, "w") as t:
        names = []
        for i, data in enumerate(layers):
            names.append(f"l{i}/layer.tar")
            _add(t, names[-1], data)
        _add(t, "cfg.json", config)
        _add(t, "manifest.json", json.dumps([{"Config": "cfg.json", "RepoTags": ["x:1"],
                                               "Layers": names}]).encode())


def _add(t: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))


def test_foreign_docker_save(tmp_path, capsys):
    lower = _layer([("usr/", None, 0o755), ("usr/bin/foo", b"foo!", 0o755),
                    ("usr/bin/old", b"old", 0o755), ("opt/cache/", None, 0o777),
                    ("opt/cache/a", b"a", 0o644), ("var/lib/dpkg/status", STATUS, 0o644),
                    ("var/lib/dpkg/info/foo.list", b"/.\n/usr\n/usr/bin\n/usr/bin/foo\n", 0o644),
                    ("lib/apk/db/installed", APK, 0o644), ("bin/busybox", b"bb", 0o4755)])
    upper = _layer([("usr/bin/.wh.old", b"", 0o644), ("opt/cache/.wh..wh..opq", b"", 0o644),
                    ("opt/cache/b", b"bb", 0o644), ("usr/bin/foo", b"foo v2", 0o2755)])
    image = tmp_path / "foreign.tar"
    _docker_save(image, [lower, upper])
    (i,) = inspect_image(image)
    assert i.platform == "linux/amd64" and i.config["config"]["User"] == "1000"
    # docs/inspect.md: a layer's digest is its blob's sha256, here too (not the member name).
    assert [x.digest for x in i.layers] == [
        "sha256:" + hashlib.sha256(b).hexdigest() for b in (lower, upper)]
    assert i.layers[0].compressed == len(lower)
    assert "usr/bin/old" not in i.files and "opt/cache/a" not in i.files
    assert i.files["opt/cache/b"].layer == 1
    foo = i.files["usr/bin/foo"]
    assert (foo.size, foo.sha256, foo.mode) == (6, hashlib.sha256(b"foo v2").hexdigest(), 0o2755)
    pkgs = i.database.packages
    assert set(pkgs) == {"foo", "busybox"}    # config-files only: not installed
    assert pkgs["foo"].installed_size == 12 * 1024 and pkgs["busybox"].installed_size == 924000
    assert i.owners("usr/bin/foo") == ["foo"] and i.owners("bin/busybox") == ["busybox"]

    assert main(["inspect", str(image), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)["platforms"][0]
    assert {f["path"] for f in doc["setuid-setgid"]} == {"/bin/busybox", "/usr/bin/foo"}
    assert {f["path"] for f in doc["world-writable"]} == {"/opt/cache"}
    assert doc["package-databases"] == ["/lib/apk/db/installed", "/var/lib/dpkg/status"]
    assert doc["config"]["user"] == "1000" and doc["config"]["cmd"] == ["/bin/sh"]


def test_not_an_image(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "missing.tar")]) == 2
    assert "does not exist" in capsys.readouterr().err
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    assert main(["inspect", str(junk)]) == 2
    err = capsys.readouterr().err
    assert "not an image" in err and "Traceback" not in err
    assert main(["diff", str(junk), str(junk)]) == 2


def test_a_docker_save_directory_cannot_name_files_outside_itself(tmp_path, capsys):
    """An unpacked docker save names its layers in manifest.json: '../x', '/x' or a symlink
    out of the directory would make inspect, check or push read a host file as a layer."""
    outside = tmp_path / "host.tar"
    outside.write_bytes(_layer([("usr/bin/planted", b"host", 0o755)]))
    image = tmp_path / "saved"
    _docker_save(tmp_path / "s.tar", [_layer([("a", b"a", 0o644)])])
    with tarfile.open(tmp_path / "s.tar") as t:
        t.extractall(image, filter="data")
    (image / "link.tar").symlink_to(outside)
    manifest = json.loads((image / "manifest.json").read_text())
    for name in ("../host.tar", str(outside), "link.tar"):
        manifest[0]["Layers"] = [name]
        (image / "manifest.json").write_text(json.dumps(manifest))
        assert main(["inspect", str(image), "--files"]) == 2, name
        out, err = capsys.readouterr()
        assert "planted" not in out and "outside" in err and name in err, err

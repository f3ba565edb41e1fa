"""Building from slices against the local signed archive: what a slice takes, makes and
generates, the lock it writes, and the jsonwall manifest it leaves in the image."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard
from aptrepo import Hardlink, Pkg
from hermetic import run, write_distro, write_spec

pytestmark = pytest.mark.integration

CERT_A = b"-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n"
CERT_B = b"-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n"
LIBFOO = b"\x7fELF libfoo"

PACKAGES = [
    Pkg("libfoo", "1.0", depends="bigdep", files={
        "usr/lib/x86_64-linux-gnu/libfoo.so.1": LIBFOO,
        "usr/bin/foo-tool": b"tool",
        "usr/share/doc/libfoo/copyright": b"libfoo licence",
        "usr/share/doc/libfoo/README": b"readme"}),
    Pkg("bigdep", "1.0", files={"usr/bin/big": b"x" * 1000}),
    Pkg("app", "2.0", depends="libfoo", files={
        "usr/bin/app": b"app binary",
        "usr/bin/app-hard": Hardlink("./usr/bin/app"),
        "usr/lib/app/plugin.so": b"plugin",
        "usr/share/doc/app/copyright": b"app licence"}),
    Pkg("ca-certificates", "1.0", files={
        "usr/share/ca-certificates/mozilla/A.crt": CERT_A,
        "usr/share/ca-certificates/mozilla/B.crt": CERT_B}),
    Pkg("base-passwd", "1.0", files={
        "usr/share/base-passwd/passwd.master": b"root:*:0:0:root:/root:/bin/sh\n"
                                                b"daemon:*:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
        "usr/share/base-passwd/group.master": b"root:*:0:\ndaemon:*:1:\n"}),
    Pkg("base-files", "1.0", files={"etc/os-release": b"ID=test\n", "etc/motd": b"hi"}),
]

SLICES = {
    "libfoo": """package: libfoo
essential: [libfoo_copyright]
slices:
  libs:
    contents:
      /usr/lib/*-linux-*/libfoo.so.*:
  bins:
    essential: [libfoo_libs]
    contents:
      /usr/bin/foo-tool:
  copyright:
    contents:
      /usr/share/doc/libfoo/copyright:
""",
    "app": """package: app
slices:
  bins:
    essential: [libfoo_libs, base-files_base]
    contents:
      /usr/bin/app-hard:
      /etc/app.conf: {text: "port=8080\\n", mode: 0600}
      /usr/bin/app-link: {symlink: app-hard}
      /var/lib/app/: {make: true, mode: 0750}
  plugins:
    contents:
      /usr/lib/app/*.so:
""",
    "ca-certificates": """package: ca-certificates
slices:
  data:
    contents:
      /usr/share/ca-certificates/mozilla/*.crt: {until: mutate}
      /etc/ssl/certs/ca-certificates.crt: {generate: ca-bundle}
""",
    "base-passwd": """package: base-passwd
slices:
  data:
    contents:
      /usr/share/base-passwd/*.master: {until: mutate}
      /etc/passwd: {generate: passwd}
      /etc/group: {generate: group}
""",
    "base-files": """package: base-files
slices:
  base:
    contents:
      /etc/os-release:
  chisel:
    contents:
      /var/lib/chisel/**: {generate: manifest}
""",
}

NONROOT = """accounts:
  groups: [{groupname: nonroot, gid: 65532}]
  users: [{username: nonroot, uid: 65532, gid: 65532, home: /home/nonroot}]
"""


def _setup(tmp_path: Path, apt_repo, apt_key, packages: list[str], extra: str = ""):
    repo = apt_repo({"stable": PACKAGES})
    slices = tmp_path / "slices"
    slices.mkdir()
    for name, text in SLICES.items():
        (slices / f"{name}.yaml").write_text(text)
    distro = write_distro(tmp_path, apt_key.public_path, ["stable"], slices=slices)
    spec = write_spec(tmp_path, f"distro: {distro}\narchs: [amd64]\ncontents:\n"
                      f"  packages: [{', '.join(packages)}]\n" + extra)
    out = tmp_path / "image.tar"
    argv = ["build", str(spec), "-o", str(out), "--mirror", f"test={repo.url}",
            "--cache-dir", str(tmp_path / "cache"), "-q"]
    return spec, out, argv


def _layer(out: Path) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(out) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        blob = outer.extractfile(manifest[0]["Layers"][0]).read()
    files = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tf:
        for m in tf.getmembers():
            data = tf.extractfile(m).read() if m.isreg() else b""
            files[m.name] = (m, data)
    return files


def test_slices_take_only_their_paths_and_generate_the_rest(tmp_path, apt_repo, apt_key,
                                                             capsys) -> None:
    spec, out, argv = _setup(tmp_path, apt_repo, apt_key,
                             ["app_bins", "app_plugins", "ca-certificates_data",
                              "base-passwd_data", "base-files_chisel"], NONROOT)
    code, _, err = run(argv, capsys)
    assert code == 0, err
    files = _layer(out)
    # Taken: the named paths and the essentials' paths; not the packages' Depends.
    assert files["usr/lib/x86_64-linux-gnu/libfoo.so.1"][1] == LIBFOO
    assert files["usr/share/doc/libfoo/copyright"][1] == b"libfoo licence"
    assert files["usr/lib/app/plugin.so"][1] == b"plugin"
    assert files["etc/os-release"][1] == b"ID=test\n"
    for absent in ("usr/bin/foo-tool", "usr/share/doc/libfoo/README", "usr/bin/big",
                   "usr/bin/app", "etc/motd", "usr/share/doc/app/copyright"):
        assert absent not in files, absent
    # A hardlink whose target stays out becomes a plain file with the target's bytes.
    hard, data = files["usr/bin/app-hard"]
    assert hard.isreg() and data == b"app binary"
    # Made: text with its mode, a symlink, a directory with its mode.
    conf, data = files["etc/app.conf"]
    assert data == b"port=8080\n" and conf.mode == 0o600
    assert files["usr/bin/app-link"][0].issym() and files["usr/bin/app-link"][0].linkname \
        == "app-hard"
    assert files["var/lib/app"][0].isdir() and files["var/lib/app"][0].mode == 0o750
    # Generated: the CA bundle from the certificates, which then leave (until: mutate).
    assert files["etc/ssl/certs/ca-certificates.crt"][1] == CERT_A + CERT_B
    assert not any(n.startswith("usr/share/ca-certificates/mozilla/") and n.endswith(".crt")
                   for n in files)
    assert not any(n.endswith(".master") for n in files)
    passwd = files["etc/passwd"][1].decode()
    assert passwd.startswith("root:*:0:0:") and "daemon:*:1:1:" in passwd
    assert "nonroot:x:65532:65532:" in passwd
    assert "daemon:*:1:" in files["etc/group"][1].decode()
    # The lock says which packages came as slices, and never lists bigdep.
    lock = json.loads(spec.with_name("image.lock.json").read_text())
    entries = {p["name"]: p for p in lock["archs"]["amd64"]["packages"]}
    assert set(entries) == {"app", "libfoo", "ca-certificates", "base-passwd", "base-files"}
    assert entries["app"]["slices"] == ["bins", "plugins"]
    assert entries["libfoo"]["slices"] == ["copyright", "libs"]
    assert entries["libfoo"]["reason"] == ["app_bins"]
    # status.d still lists every package, with md5sums of what is really there.
    md5 = files["var/lib/dpkg/status.d/libfoo.md5sums"][1].decode()
    assert "usr/lib/x86_64-linux-gnu/libfoo.so.1" in md5 and "foo-tool" not in md5
    _check_manifest(files, entries)


def _check_manifest(files, entries) -> None:
    raw = zstandard.ZstdDecompressor().decompress(files["var/lib/chisel/manifest.wall"][1])
    lines = raw.decode().splitlines()
    header = json.loads(lines[0])
    assert header == {"jsonwall": "1.0", "schema": "1.0", "count": len(lines)}
    assert lines[1:] == sorted(lines[1:])
    assert lines[1].startswith('{"kind":"content"')   # keys in chisel's order, not sorted
    objs = [json.loads(x) for x in lines[1:]]
    packages = {o["name"]: o for o in objs if o["kind"] == "package"}
    assert packages["libfoo"] == {"kind": "package", "name": "libfoo", "version": "1.0",
                                  "sha256": entries["libfoo"]["sha256"], "arch": "amd64"}
    slices = {o["name"] for o in objs if o["kind"] == "slice"}
    assert {"app_bins", "libfoo_libs", "libfoo_copyright"} <= slices
    paths = {o["path"]: o for o in objs if o["kind"] == "path"}
    lib = paths["/usr/lib/x86_64-linux-gnu/libfoo.so.1"]
    assert lib["slices"] == ["libfoo_libs"] and lib["size"] == len(LIBFOO)
    assert lib["sha256"] == hashlib.sha256(LIBFOO).hexdigest() and lib["mode"] == "0644"
    assert paths["/usr/bin/app-link"]["link"] == "app-hard"
    assert paths["/var/lib/app/"]["mode"] == "0750"
    assert paths["/etc/ssl/certs/ca-certificates.crt"]["slices"] == ["ca-certificates_data"]
    contents = {(o["slice"], o["path"]) for o in objs if o["kind"] == "content"}
    for path, entry in paths.items():
        for s in entry["slices"]:
            assert (s, path) in contents
    # Every file the image holds from a package is listed, with its real digest.
    for name, (info, data) in files.items():
        if info.isreg() and ("/" + name) in paths:
            assert paths["/" + name]["sha256"] == hashlib.sha256(data).hexdigest()


def test_package_named_whole_and_as_slice_is_taken_whole(tmp_path, apt_repo, apt_key,
                                                         capsys) -> None:
    spec, out, argv = _setup(tmp_path, apt_repo, apt_key, ["app", "app_bins"])
    code, _, err = run(argv, capsys)
    assert code == 0, err
    files = _layer(out)
    assert "usr/bin/app" in files and "usr/bin/big" in files   # whole: Depends closure too
    lock = json.loads(spec.with_name("image.lock.json").read_text())
    entries = {p["name"]: p for p in lock["archs"]["amd64"]["packages"]}
    assert "slices" not in entries["app"] and "slices" not in entries["libfoo"]
    assert entries["base-files"]["slices"] == ["base"]   # app_bins' essential still counts


def test_unknown_slice_and_missing_path_are_clear(tmp_path, apt_repo, apt_key, capsys) -> None:
    spec, out, argv = _setup(tmp_path, apt_repo, apt_key, ["app_bin"])
    code, _, err = run(argv, capsys)
    assert code == 2 and "image.yaml:4" in err and "app_bins" in err and "Traceback" not in err
    (tmp_path / "slices" / "app.yaml").write_text(SLICES["app"].replace(
        "/usr/lib/app/*.so:", "/usr/lib/app/*.dll:"))
    spec.write_text(spec.read_text().replace("app_bin]", "app_plugins]"))
    code, _, err = run(argv, capsys)
    assert code != 0 and "app_plugins" in err and "/usr/lib/app/*.dll" in err
    assert "app 2.0" in err and not out.exists()

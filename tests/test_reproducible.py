"""Determinism contract, hermetic tier: same spec + lock gives the same digest whatever
the cache state, umask, TZ, locale, working directory, hash seed, gzip thread count
and order of the spec's packages.

Debian images come from the local signed archive (whole packages and slices, with
the jsonwall manifest, a generated CA bundle and status.d); Alpine images from a
locally signed APK repository. Both carry file names that are not ASCII, stored
as raw bytes in GNU tar headers, as real packages do (ca-certificates'
`NetLock_Arany_=Class_Gold=_Főtanúsítvány.crt`): those bytes must reach the image
unchanged whatever the build machine's locale, and so must a cache an earlier
build wrote under another locale.
"""

from __future__ import annotations

import hashlib
import json
import tarfile

import pytest
import zstandard
from apkrepo import Apk, F, Sym, write_distro, write_key, write_repo
from aptrepo import File, Pkg, serve_start
from hermetic import run, write_spec
from hermetic import write_distro as write_deb_distro
from repro import Variant, build, latin1_env
from test_apk_support import Signer

pytestmark = pytest.mark.integration

NAMES = ["NetLock_Arany_=Class_Gold=_Főtanúsítvány.crt", "TÜBİTAK_Kamu_SM_SSL_Kök.crt",
         "Hellenic_Ακαδημαϊκά.crt", "ÇA_Ö.crt"]
CERTS = {f"usr/share/ca-certificates/mozilla/{n}":
         f"-----BEGIN CERTIFICATE-----\n{i}\n-----END CERTIFICATE-----\n".encode()
         for i, n in enumerate(NAMES)}

RAW_NAME = b"usr/share/legacy/caf\xe9.txt"

DEB_PACKAGES = [
    Pkg("libc6", "2.0", files={"usr/lib/x86_64-linux-gnu/libc.so.6": b"\x7fELF libc",
                               "usr/share/doc/libc6/copyright": b"libc licence",
                               "usr/share/doc/libc6/changelog.gz": b"gz"}),
    Pkg("app", "1.0", depends="libc6", files={
        "usr/bin/app": File(b"app", mode=0o755), "usr/share/app/Grüße.txt": b"hallo\n",
        "usr/share/doc/app/copyright": b"app licence"}),
    Pkg("ca-certificates", "1.0", files=dict(CERTS)),
    Pkg("base-files", "1.0", files={"etc/os-release": b"ID=test\n"}),
    Pkg("tzdata", "1.0", files={"usr/share/zoneinfo/Europe/Berlin": b"TZif",
                                "usr/share/zoneinfo/UTC": b"TZif"}),
    # A name that is not UTF-8 at all (a Latin-1 byte), as old packages may have.
    Pkg("legacy", "1.0", files={RAW_NAME.decode("utf-8", "surrogateescape"): b"caf\xe9\n"}),
]

SLICES = {
    "ca-certificates": """package: ca-certificates
slices:
  data:
    contents:
      /usr/share/ca-certificates/mozilla/*.crt: {until: mutate}
      /etc/ssl/certs/ca-certificates.crt: {generate: ca-bundle}
""",
    "base-files": """package: base-files
slices:
  base:
    contents:
      /etc/os-release:
      /etc/motd: {text: "Grüße aus dem Image\\n"}
  chisel:
    contents:
      /var/lib/chisel/**: {generate: manifest}
""",
    "tzdata": """package: tzdata
slices:
  zoneinfo:
    contents:
      /usr/share/zoneinfo/**:
""",
}

# Whole packages (with their Depends) and slices in one image.
DEB_REQUESTS = ["app", "ca-certificates_data", "base-files_base", "base-files_chisel",
                "tzdata_zoneinfo"]
ACCOUNTS = """accounts:
  groups: [{groupname: nonroot, gid: 65532}]
  users: [{username: nonroot, uid: 65532, gid: 65532, home: /home/nonroot}]
  run-as: nonroot
"""


@pytest.fixture(scope="module")
def latin1(tmp_path_factory) -> dict[str, str] | None:
    return latin1_env(tmp_path_factory.mktemp("locale"))


def _variants(tmp, latin1) -> list[tuple[str, Variant]]:
    """(name, variant) in build order. Caches: c0 cold then warm; c1 first filled by a
    build under a Latin-1 locale (when one can be made), then read under UTF-8."""
    other = latin1 or {"LANG": "de_DE.UTF-8", "LC_ALL": "de_DE.UTF-8"}
    return [
        ("cold", Variant(tmp / "c0", 0o022, "UTC", "C.UTF-8", 1, tmp / "w0", threads=1)),
        ("warm", Variant(tmp / "c0", 0o077, "Pacific/Kiritimati", "C.UTF-8", 2, tmp / "w1",
                         threads=4)),
        ("other-locale-cold", Variant(tmp / "c1", 0o027, "America/St_Johns", "C", 3,
                                      tmp / "w2", threads=2, env=other)),
        ("warm-from-other-locale", Variant(tmp / "c1", 0o002, "Asia/Kolkata", "C.UTF-8", 4,
                                           tmp / "w3", threads=3)),
    ]


def _assert_same(results: dict[str, tuple[str, str]]) -> None:
    first = next(iter(results.values()))
    assert all(r == first for r in results.values()), results


def _names_in_layer(out) -> set[str]:
    with tarfile.open(out) as outer:
        index = [m for m in outer.getnames() if m.startswith("blobs/sha256/")]
        names: set[str] = set()
        for m in index:
            f = outer.extractfile(m)
            if f is None or f.read(2) != b"\x1f\x8b":
                continue
            with tarfile.open(fileobj=outer.extractfile(m), mode="r:gz",
                              encoding="utf-8") as layer:
                names |= set(layer.getnames())
        return names


def _deb_setup(tmp, apt_repo, apt_key, requests: list[str]):
    repo = apt_repo({"stable": DEB_PACKAGES})
    slices = tmp / "slices"
    slices.mkdir(exist_ok=True)
    for name, text in SLICES.items():
        (slices / f"{name}.yaml").write_text(text, encoding="utf-8")
    distro = write_deb_distro(tmp, apt_key.public_path, ["stable"], slices=slices)
    body = (f"distro: {distro}\narchs: [amd64]\ncontents:\n  packages: [{', '.join(requests)}]\n"
            f"mirrors: {{test: {repo.url}}}\n{ACCOUNTS}entrypoint: [/usr/bin/app]\n")
    return repo, body


def test_debian_slices_and_whole_reproducible_across_environments(tmp_path, apt_repo, apt_key,
                                                                  latin1, capsys):
    repo, body = _deb_setup(tmp_path, apt_repo, apt_key, DEB_REQUESTS)
    spec = write_spec(tmp_path, body)
    code, _, err = run(["lock", str(spec), "--cache-dir", str(tmp_path / "lockcache"), "-q"],
                       capsys)
    assert code == 0, err
    results = {name: build(spec, tmp_path / f"{name}.tar", v)
               for name, v in _variants(tmp_path, latin1)}
    # The spec's packages in another order: another lock file, the same image.
    # Same file name (the default image name is its stem), own directory (own lock).
    (tmp_path / "reordered").mkdir()
    reordered = write_spec(tmp_path / "reordered",
                           body.replace(", ".join(DEB_REQUESTS), ", ".join(reversed(DEB_REQUESTS))))
    results["reordered"] = build(reordered, tmp_path / "reordered.tar",
                                 Variant(tmp_path / "c0", seed=9), locked=False)
    _assert_same(results)
    names = _names_in_layer(tmp_path / "cold.tar")
    assert "usr/share/app/Grüße.txt" in names
    assert "var/lib/chisel/manifest.wall" in names and "etc/motd" in names


def test_debian_names_survive_a_latin1_tarfile_default(tmp_path, apt_repo, apt_key, capsys,
                                                       monkeypatch):
    """What a Latin-1 locale does to tarfile (its default encoding is the filesystem
    encoding), without needing one: the image and the unpacked cache must not change."""
    repo, body = _deb_setup(tmp_path, apt_repo, apt_key, ["app", "ca-certificates"])
    spec = write_spec(tmp_path, body)
    argv = ["build", str(spec), "-q", "--cache-dir"]
    code, utf8, err = run([*argv, str(tmp_path / "c0"), "-o", str(tmp_path / "a.tar")], capsys)
    assert code == 0, err
    with monkeypatch.context() as m:
        m.setattr(tarfile.TarFile, "encoding", "iso8859-1")
        code, latin, err = run([*argv, str(tmp_path / "c1"), "-o", str(tmp_path / "b.tar")],
                               capsys)
    assert code == 0, err
    # and the cache that build left behind, read again under UTF-8
    code, warm, err = run([*argv, str(tmp_path / "c1"), "-o", str(tmp_path / "c.tar")], capsys)
    assert code == 0, err
    assert utf8 == latin == warm
    names = _names_in_layer(tmp_path / "a.tar")
    assert {f"usr/share/ca-certificates/mozilla/{n}" for n in NAMES} <= names


def test_debian_name_that_is_not_utf8_is_kept_byte_for_byte(tmp_path, apt_repo, apt_key,
                                                            capsys):
    """The layer, status.d's md5sums and the manifest (as Go's encoding/json writes
    invalid UTF-8: \\ufffd) take such a name without failing the build."""
    repo, body = _deb_setup(tmp_path, apt_repo, apt_key, ["legacy", "base-files_chisel"])
    # No app in this image: the build would refuse an entrypoint that is not in it.
    spec = write_spec(tmp_path, body.replace("entrypoint: [/usr/bin/app]\n", ""))
    out = tmp_path / "image.tar"
    code, _, err = run(["build", str(spec), "-o", str(out), "-q", "--cache-dir",
                        str(tmp_path / "c")], capsys)
    assert code == 0, err
    with tarfile.open(out) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        with tarfile.open(fileobj=outer.extractfile(manifest["Layers"][0]), mode="r:gz",
                          encoding="utf-8") as layer:
            names = {m.name.encode("utf-8", "surrogateescape") for m in layer}
            md5sums = layer.extractfile("var/lib/dpkg/status.d/legacy.md5sums").read()
            wall = zstandard.ZstdDecompressor().decompress(
                layer.extractfile("var/lib/chisel/manifest.wall").read())
    assert RAW_NAME in names
    assert md5sums == hashlib.md5(b"caf\xe9\n").hexdigest().encode() + b"  " + RAW_NAME + b"\n"
    assert b'"path":"/usr/share/legacy/caf\\ufffd.txt"' in wall
    wall.decode("utf-8")  # valid UTF-8 throughout


# -- Alpine -------------------------------------------------------------------------

REPO = "v3.99/main"


def _apk_packages() -> list[Apk]:
    return [
        Apk("musl", "1.2.5-r0", provides=["so:libc.musl-x86_64.so.1=1"],
            files={"lib/ld-musl-x86_64.so.1": F(b"\x7fELF musl", 0o755),
                   "lib/libc.musl-x86_64.so.1": Sym("ld-musl-x86_64.so.1")}),
        Apk("busybox", "1.36.1-r0", depends=["so:libc.musl-x86_64.so.1"],
            provides=["/bin/sh", "cmd:busybox=1.36.1-r0"],
            files={"bin/busybox": F(b"#!busybox", 0o755), "bin/sh": Sym("/bin/busybox"),
                   "etc/busybox-paths.d/busybox": b"/bin/ls\n/usr/bin/env\n/bin/sh\n"},
            scripts={".post-install": b"#!/bin/sh\nexit 0\n", ".trigger": b"#!/bin/sh\n"},
            triggers="/bin /usr/bin"),
        # abuild writes GNU tar headers: these names are raw UTF-8 bytes, not PAX records.
        Apk("ca-certificates-bundle", "20241121-r0", tar_format=tarfile.GNU_FORMAT,
            files={f"usr/share/ca-certificates/mozilla/{n}": CERTS[
                f"usr/share/ca-certificates/mozilla/{n}"] for n in NAMES}
            | {"etc/ssl/certs/ca-certificates.crt": b"".join(CERTS.values())}),
        Apk("hello", "2.0-r1", depends=["so:libc.musl-x86_64.so.1", "/bin/sh"],
            files={"usr/bin/hello": F(b"#!/bin/sh\necho hello\n", 0o755),
                   "etc/hello.conf": F(b"secret\n", 0o600, 0, 42)},
            scripts={".pre-install": b"#!/bin/sh\n"}, dirs={"var/lib/hello": 0o700}),
    ]


APK_REQUESTS = ["hello", "busybox>=1.0", "ca-certificates-bundle"]


def test_alpine_reproducible_across_environments(tmp_path, latin1, capsys):
    signer = Signer.new("test@example.org-5f3c1a2b.rsa.pub")
    write_repo(tmp_path / "srv", REPO, _apk_packages(), signer)
    server = serve_start(tmp_path / "srv")
    try:
        distro = write_distro(tmp_path, write_key(tmp_path, signer))

        def spec(where, requests: list[str]):
            where.mkdir(exist_ok=True)
            return write_spec(where, f"distro: {distro}\narchs: [x86_64]\n"
                              f"contents:\n  packages: [{', '.join(requests)}]\n"
                              f"mirrors: {{test: {server.url.rstrip('/')}}}\n"
                              f"{ACCOUNTS}entrypoint: [/usr/bin/hello]\n")

        first = spec(tmp_path, APK_REQUESTS)
        code, _, err = run(["lock", str(first), "--cache-dir", str(tmp_path / "lc"), "-q"],
                           capsys)
        assert code == 0, err
        results = {name: build(first, tmp_path / f"{name}.tar", v)
                   for name, v in _variants(tmp_path, latin1)}
        reordered = spec(tmp_path / "reordered", list(reversed(APK_REQUESTS)))
        results["reordered"] = build(reordered, tmp_path / "reordered.tar",
                                     Variant(tmp_path / "c2", seed=5), locked=False)
    finally:
        server.stop()
    _assert_same(results)
    names = _names_in_layer(tmp_path / "cold.tar")
    assert {f"usr/share/ca-certificates/mozilla/{n}" for n in NAMES} <= names
    assert {"lib/apk/db/installed", "lib/apk/db/scripts.tar", "etc/apk/world"} <= names


def test_alpine_names_survive_a_latin1_tarfile_default(tmp_path, capsys, monkeypatch):
    signer = Signer.new("test@example.org-5f3c1a2b.rsa.pub")
    write_repo(tmp_path / "srv", REPO, _apk_packages(), signer)
    server = serve_start(tmp_path / "srv")
    try:
        distro = write_distro(tmp_path, write_key(tmp_path, signer))
        spec = write_spec(tmp_path, f"distro: {distro}\narchs: [x86_64]\n"
                          "contents:\n  packages: [ca-certificates-bundle]\n"
                          f"mirrors: {{test: {server.url.rstrip('/')}}}\n")
        argv = ["build", str(spec), "-q", "--cache-dir", str(tmp_path / "c")]
        code, utf8, err = run([*argv, "-o", str(tmp_path / "a.tar")], capsys)
        assert code == 0, err
        monkeypatch.setattr(tarfile.TarFile, "encoding", "iso8859-1")
        code, latin, err = run([*argv, "-o", str(tmp_path / "b.tar")], capsys)
        assert code == 0, err
    finally:
        server.stop()
    assert utf8 == latin

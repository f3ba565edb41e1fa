"""assembler.image.oci: config/manifest/index JSON and the image tar / OCI dir outputs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from assembler.errors import AssemblerError, IntegrityError, SpecError
from assembler.image import oci
from assembler.image.layer import write_layer
from assembler.rootfs.tree import Tree

SDE = 1_700_000_000
ROOT = Path(__file__).resolve().parent.parent


def make_image(tmp_path: Path, arch: str = "amd64", compression: str = "gzip") -> oci.Image:
    with Tree(merged_usr=True) as t:
        t.add_file("usr/bin/hello", f"#!/bin/sh\necho {arch}\n".encode(), 0o755, origin="hello")
        t.add_dir("home/nonroot", mode=0o700, uid=65532, gid=65532)
        layer = write_layer(t, tmp_path / f"layer-{arch}-{compression}", compression, SDE)  # type: ignore[arg-type]
    return oci.Image(
        platform=oci.platform_for(arch),
        layers=[layer],
        config=oci.ImageConfig(
            entrypoint=["/usr/bin/hello"],
            cmd=["--loud"],
            env={"PATH": oci.DEFAULT_PATH, "LANG": "C.UTF-8"},
            working_dir="/home/nonroot",
            user="65532:65532",
            labels={"b": "2", "a": "1"},
        ),
        created=SDE,
        annotations={"org.opencontainers.image.source": "https://example.org/hello"},
    )


def members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tf:
        return {m.name: m for m in tf.getmembers()}


def read_member(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tf:
        f = tf.extractfile(name)
        assert f is not None
        return f.read()


def test_platforms() -> None:
    assert oci.platform_for("arm64").as_json() == {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8",
    }
    assert oci.platform_for("armhf") == oci.Platform("linux", "arm", "v7")
    assert oci.platform_for("x86_64") == oci.platform_for("amd64")
    assert oci.platform_for("ppc64el").architecture == "ppc64le"
    with pytest.raises(SpecError, match="sparc"):
        oci.platform_for("sparc")


def test_config_document(tmp_path: Path) -> None:
    image = make_image(tmp_path, "arm64")
    built = oci.build(image)
    doc = json.loads(built.config.data)
    assert list(doc) == ["created", "architecture", "os", "variant", "config", "rootfs", "history"]
    assert doc["created"] == "2023-11-14T22:13:20Z"
    assert doc["variant"] == "v8"
    assert doc["config"] == {
        "User": "65532:65532",
        "Env": [f"PATH={oci.DEFAULT_PATH}", "LANG=C.UTF-8"],
        "Entrypoint": ["/usr/bin/hello"],
        "Cmd": ["--loud"],
        "WorkingDir": "/home/nonroot",
        "Labels": {"a": "1", "b": "2"},
    }
    assert doc["rootfs"] == {"type": "layers", "diff_ids": [image.layers[0].diff_id]}
    assert len(doc["history"]) == 1
    assert built.config.data == json.dumps(doc, separators=(",", ":")).encode()
    manifest = json.loads(built.manifest.data)
    assert manifest["config"]["digest"] == built.config.digest
    assert manifest["layers"][0]["digest"] == image.layers[0].digest
    assert manifest["annotations"] == {
        "org.opencontainers.image.source": "https://example.org/hello"
    }
    assert built.manifest.digest == "sha256:" + hashlib.sha256(built.manifest.data).hexdigest()
    assert oci.manifest_digest(image) == built.manifest.digest


def test_parse_tag() -> None:
    assert oci.parse_tag("app") == oci.Tag(
        "docker.io/library/app:latest", "docker.io/library/app", "latest"
    )
    assert oci.parse_tag("acme/app:1").name == "docker.io/acme/app:1"
    assert oci.parse_tag("localhost:5000/app:1.4").tag == "1.4"
    assert oci.parse_tag("ghcr.io/acme/app:1.4").repository == "ghcr.io/acme/app"
    for bad in ["App:1", "app@sha256:abc", "", "app:"]:
        with pytest.raises(SpecError):
            oci.parse_tag(bad)


def test_image_tar_layout(tmp_path: Path) -> None:
    image = make_image(tmp_path)
    out = tmp_path / "image.tar"
    digest = oci.write_image_tar(out, [image], ["hello:1.0"])
    m = members(out)
    names = list(m)
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert {"oci-layout", "index.json", "manifest.json", "blobs/", "blobs/sha256/"} <= {
        n if not m[n].isdir() else n + "/" for n in names
    }
    for info in m.values():
        assert (info.uid, info.gid, info.uname, info.gname, info.mtime) == (0, 0, "", "", SDE)
    index = json.loads(read_member(out, "index.json"))
    assert index["manifests"][0]["digest"] == digest
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "1.0"
    docker = json.loads(read_member(out, "manifest.json"))
    assert docker == [
        {
            "Config": "blobs/sha256/" + oci.build(image).config.digest[7:],
            "RepoTags": ["hello:1.0"],
            "Layers": ["blobs/sha256/" + image.layers[0].digest[7:]],
        }
    ]
    # Every blob is stored under its own digest.
    for name in names:
        if name.startswith("blobs/sha256/") and m[name].isreg():
            assert hashlib.sha256(read_member(out, name)).hexdigest() == name.rsplit("/", 1)[1]


def test_image_tar_reproducible(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    da = oci.write_image_tar(a / "i.tar", [make_image(a, "amd64"), make_image(a, "arm64")], ["x"])
    db = oci.write_image_tar(b / "i.tar", [make_image(b, "arm64"), make_image(b, "amd64")], ["x"])
    assert da == db
    assert (a / "i.tar").read_bytes() == (b / "i.tar").read_bytes()


_CHILD = """
import os, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_oci import make_image
from assembler.image import oci
d = Path(sys.argv[1])
print(oci.write_image_tar(d / "i.tar", [make_image(d)], ["x:1"]))
"""


def test_reproducible_across_environments(tmp_path: Path) -> None:
    """Same digest with a different umask, TZ, locale and working directory."""
    digests = []
    for n, (umask, tz, lang) in enumerate([("022", "UTC", "C"), ("077", "Asia/Tokyo", "de_DE")]):
        d = tmp_path / f"env{n}"
        d.mkdir()
        env = dict(os.environ, TZ=tz, LANG=lang, LC_ALL=lang, PYTHONHASHSEED=str(n + 1))
        code = _CHILD.format(tests=str(ROOT / "tests"))
        res = subprocess.run(
            ["sh", "-c", f'umask {umask} && exec "$0" -c "$1" "$2"', sys.executable, code, str(d)],
            env=env,
            cwd=d,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.append((res.stdout.strip(), (d / "i.tar").read_bytes()))
    assert digests[0] == digests[1]


def test_multi_arch(tmp_path: Path) -> None:
    images = [make_image(tmp_path, "arm64"), make_image(tmp_path, "amd64")]
    out = tmp_path / "multi.tar"
    digest = oci.write_image_tar(out, images, ["ghcr.io/acme/hello:1.4"])
    index_json = json.loads(read_member(out, "index.json"))
    (top,) = index_json["manifests"]
    assert top["mediaType"] == oci.MEDIA_INDEX and top["digest"] == digest
    nested = json.loads(read_member(out, "blobs/sha256/" + digest[7:]))
    assert [m["platform"]["architecture"] for m in nested["manifests"]] == ["amd64", "arm64"]
    assert nested["manifests"][1]["platform"]["variant"] == "v8"
    docker = json.loads(read_member(out, "manifest.json"))
    assert [e["RepoTags"] for e in docker] == [
        ["ghcr.io/acme/hello:1.4-amd64"],
        ["ghcr.io/acme/hello:1.4-arm64"],
    ]
    assert oci.image_digest(images) == digest


def test_duplicate_platform_rejected(tmp_path: Path) -> None:
    image = make_image(tmp_path)
    with pytest.raises(AssemblerError, match="same platform"):
        oci.write_image_tar(tmp_path / "x.tar", [image, image], [])


def test_changed_layer_blob_detected_and_no_partial_output(tmp_path: Path) -> None:
    image = make_image(tmp_path)
    image.layers[0].path.write_bytes(b"tampered")
    out = tmp_path / "image.tar"
    with pytest.raises(IntegrityError, match="changed after it was written"):
        oci.write_image_tar(out, [image], ["x"])
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    with pytest.raises(IntegrityError):
        oci.write_oci_dir(tmp_path / "dir", [image], ["x"])
    assert not (tmp_path / "dir").exists()


def test_oci_dir(tmp_path: Path) -> None:
    image = make_image(tmp_path)
    dest = tmp_path / "layout"
    digest = oci.write_oci_dir(dest, [image], ["hello:latest"])
    assert (dest / "oci-layout").read_bytes() == oci.OCI_LAYOUT
    assert (dest / "blobs" / "sha256" / digest[7:]).is_file()
    assert json.loads((dest / "index.json").read_bytes())["manifests"][0]["digest"] == digest
    # Rewriting an existing layout replaces it; a non-layout directory is refused.
    assert oci.write_oci_dir(dest, [image], ["hello:latest"]) == digest
    other = tmp_path / "precious"
    other.mkdir()
    (other / "data").write_text("keep me")
    with pytest.raises(AssemblerError, match="not an OCI layout"):
        oci.write_oci_dir(other, [image], [])
    assert (other / "data").read_text() == "keep me"


# -- real tools ----------------------------------------------------------------------

needs_skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")
needs_umoci = pytest.mark.skipif(shutil.which("umoci") is None, reason="umoci not installed")


def skopeo_inspect(ref: str, *extra: str) -> dict:
    res = subprocess.run(
        ["skopeo", "inspect", *extra, ref], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.mark.integration
@needs_skopeo
@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_skopeo_reads_image_tar(tmp_path: Path, compression: str) -> None:
    image = make_image(tmp_path, compression=compression)
    out = tmp_path / "image.tar"
    digest = oci.write_image_tar(out, [image], ["hello:1.0"])
    got = skopeo_inspect(f"oci-archive:{out}")
    assert got["Digest"] == digest
    assert got["Architecture"] == "amd64" and got["Os"] == "linux"
    assert got["Layers"] == [image.layers[0].digest]
    assert got["Labels"] == {"a": "1", "b": "2"}
    if compression == "zstd":
        return  # docker's v2s2 format has no zstd layers
    got = skopeo_inspect(f"docker-archive:{out}")
    assert got["Architecture"] == "amd64"
    assert len(got["Layers"]) == 1


@pytest.mark.integration
@needs_skopeo
def test_skopeo_reads_multi_arch_tar(tmp_path: Path) -> None:
    images = [make_image(tmp_path, "amd64"), make_image(tmp_path, "arm64")]
    out = tmp_path / "image.tar"
    oci.write_image_tar(out, images, ["hello:1.0"])
    for arch in ("amd64", "arm64"):
        got = skopeo_inspect(f"oci-archive:{out}", "--override-arch", arch)
        assert got["Architecture"] == arch
        got = skopeo_inspect(f"docker-archive:{out}:hello:1.0-{arch}")
        assert got["Architecture"] == arch


@pytest.mark.integration
@needs_umoci
def test_umoci_unpacks_oci_dir(tmp_path: Path) -> None:
    image = make_image(tmp_path)
    layout = tmp_path / "layout"
    oci.write_oci_dir(layout, [image], ["hello:1.0"])
    bundle = tmp_path / "bundle"
    res = subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{layout}:1.0", str(bundle)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    rootfs = bundle / "rootfs"
    assert (rootfs / "usr" / "bin" / "hello").read_bytes() == b"#!/bin/sh\necho amd64\n"
    assert os.readlink(rootfs / "bin") == "usr/bin"
    assert (rootfs / "home" / "nonroot").stat().st_mode & 0o7777 == 0o700
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["args"] == ["/usr/bin/hello", "--loud"]
    assert config["process"]["cwd"] == "/home/nonroot"

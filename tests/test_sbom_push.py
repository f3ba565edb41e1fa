"""Must-show 4 of issue 12: a push to a real docker-registry attaches both SBOMs of
every platform as OCI 1.1 referrers; they come back through the distribution API by
the referrers tag-schema fallback, with their exact bytes and `subject`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from aptrepo import AptRepo, Pkg
from hermetic import run, write_bookworm_like, write_spec
from regserver import RegistryServer

from assembler.cli import main
from assembler.image.layout import Descriptor
from assembler.push.referrers import attach
from assembler.push.registry import PushStats
from assembler.sbom.files import Attachment

pytestmark = pytest.mark.integration

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TYPES = {"application/spdx+json": "spdx.json", "application/vnd.cyclonedx+json": "cdx.json"}


@pytest.fixture(scope="module")
def built(tmp_path_factory, apt_key) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("sbom-push")
    repo = AptRepo(tmp / "archive", {"bookworm": [
        Pkg("hello", "1.0", arch="amd64", depends="hello-data",
            files={"usr/bin/hello": b"amd64"}),
        Pkg("hello", "1.0", arch="arm64", depends="hello-data",
            files={"usr/bin/hello": b"arm64"}),
        Pkg("hello-data", "1.0", arch="all", files={"usr/share/hello/hi": b"hi\n"}),
    ]}, archs=("amd64", "arm64", "all"), key=apt_key,
        release_fields={"bookworm": {"Version": "12.15"}})
    repo.serve()
    distro = write_bookworm_like(tmp, apt_key.public_path)
    out = {"dir": tmp, "url": repo.url}
    try:
        for name, archs in (("one", "[amd64]"), ("multi", "[amd64, arm64]")):
            spec = write_spec(tmp, f"distro: {distro}\narchs: {archs}\n"
                              "contents:\n  packages: [hello]\n", f"{name}.yaml")
            tar = tmp / name / "image.tar"
            assert main(["build", str(spec), "-o", str(tar), "-q", "--mirror",
                         f"test={repo.url}", "--cache-dir", str(tmp / "cache")]) == 0
            out[name] = tar
    finally:
        repo.stop()
    return out


@pytest.fixture
def registry(tmp_path):
    reg = RegistryServer(tmp_path / "registry").start()
    yield reg
    reg.kill()


def _get(reg: RegistryServer, repo: str, tail: str, accept: str = "") -> requests.Response:
    return requests.get(f"{reg.url}/v2/{repo}/{tail}", headers={"Accept": accept} if accept
                        else {}, timeout=10)


def _platform_manifests(reg: RegistryServer, repo: str, tag: str) -> dict[str, dict]:
    """{arch: descriptor of the platform manifest} as the registry serves the tag."""
    r = _get(reg, repo, f"manifests/{tag}", f"{INDEX}, {MANIFEST}")
    assert r.status_code == 200
    doc = r.json()
    if doc["mediaType"] == INDEX:
        return {m["platform"]["architecture"]: m for m in doc["manifests"]}
    return {"": {"mediaType": MANIFEST, "digest": r.headers["Docker-Content-Digest"],
                 "size": len(r.content)}}


def _check_attached(reg: RegistryServer, repo: str, subject: dict, sbom_files: list[Path]):
    # docker-registry 2.8 has no referrers API: the push must have used the fallback.
    assert _get(reg, repo, f"referrers/{subject['digest']}").status_code == 404
    r = _get(reg, repo, "manifests/" + subject["digest"].replace(":", "-"), INDEX)
    assert r.status_code == 200, r.text
    listed = r.json()["manifests"]
    assert sorted(m["artifactType"] for m in listed) == sorted(TYPES)
    wanted = {p.name.rsplit(".", 2)[-2] + ".json": p.read_bytes() for p in sbom_files}
    for m in listed:
        art = _get(reg, repo, f"manifests/{m['digest']}", MANIFEST)
        assert art.status_code == 200
        doc = art.json()
        assert doc["artifactType"] == m["artifactType"]
        assert doc["subject"] == {"mediaType": subject["mediaType"],
                                  "digest": subject["digest"], "size": subject["size"]}
        assert doc["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
        blob = _get(reg, repo, f"blobs/{doc['layers'][0]['digest']}")
        assert blob.content == wanted[TYPES[doc["artifactType"]]]


def test_push_attaches_both_sboms(built, registry, capsys):
    image = built["one"]
    code, out, err = run(["push", str(image), f"{registry.host}/app/one:1", "--plain-http",
                          "--cache-dir", str(built["dir"] / "cache")], capsys)
    assert code == 0, err
    assert "attached image.spdx.json" in err and "attached image.cdx.json" in err
    subject = _platform_manifests(registry, "app/one", "1")[""]
    _check_attached(registry, "app/one", subject,
                    [image.with_name("image.spdx.json"), image.with_name("image.cdx.json")])
    # Pushing again keeps one entry per SBOM in the fallback index.
    assert run(["push", str(image), f"{registry.host}/app/one:1", "--plain-http", "-q",
                "--cache-dir", str(built["dir"] / "cache")], capsys)[0] == 0
    _check_attached(registry, "app/one", subject,
                    [image.with_name("image.spdx.json"), image.with_name("image.cdx.json")])


def test_multi_arch_push_attaches_per_platform(built, registry, capsys):
    image = built["multi"]
    code, _, err = run(["push", str(image), f"{registry.host}/app/multi:1", "--plain-http",
                        "--cache-dir", str(built["dir"] / "cache")], capsys)
    assert code == 0, err
    platforms = _platform_manifests(registry, "app/multi", "1")
    assert sorted(platforms) == ["amd64", "arm64"]
    for arch, subject in platforms.items():
        _check_attached(registry, "app/multi", subject,
                        [image.with_name(f"image.{arch}.spdx.json"),
                         image.with_name(f"image.{arch}.cdx.json")])


def test_build_push_attaches(tmp_path, built, registry, capsys):
    spec = built["dir"] / "one.yaml"
    out = tmp_path / "image.tar"
    code, _, err = run(["build", str(spec), "-o", str(out), "--mirror", f"test={built['url']}",
                        "--cache-dir", str(built["dir"] / "cache"), "--offline",
                        "--push", f"{registry.host}/app/built:1", "--plain-http"], capsys)
    assert code == 0, err
    subject = _platform_manifests(registry, "app/built", "1")[""]
    _check_attached(registry, "app/built", subject,
                    [out.with_name("image.spdx.json"), out.with_name("image.cdx.json")])


def test_stale_sbom_is_refused(tmp_path, built, registry, capsys):
    image = tmp_path / "image.tar"
    image.write_bytes(built["one"].read_bytes())
    # An SBOM left from an earlier build describes another manifest.
    for suffix in ("spdx.json", "cdx.json"):
        text = built["one"].with_name(f"image.{suffix}").read_text()
        digest = json.loads(text)["metadata"]["component"]["version"] if suffix == "cdx.json" \
            else json.loads(text)["packages"][0]["versionInfo"]
        (tmp_path / f"image.{suffix}").write_text(text.replace(digest, "sha256:" + "b" * 64))
    code, _, err = run(["push", str(image), f"{registry.host}/app/stale:1", "--plain-http",
                        "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 2 and "another build" in err and "Traceback" not in err, err
    assert _get(registry, "app/stale", "manifests/1", MANIFEST).status_code == 404


class _ReferrersRegistry:
    """A registry that implements the referrers API (answers OCI-Subject): no fallback
    tag may be written to it."""

    registry = "fake"

    def __init__(self) -> None:
        self.manifests: dict[str, bytes] = {}

    def blob_exists(self, repository: str, digest: str) -> bool:
        return False

    def upload(self, repository, desc, layout, progress=None) -> int:
        return len(layout.open_blob(desc).read())

    def get_manifest(self, repository: str, reference: str, accept: str) -> bytes | None:
        return self.manifests.get(reference)

    def put_manifest(self, repository: str, reference: str, desc, data: bytes) -> str:
        self.manifests[reference] = data
        subject = json.loads(data).get("subject")
        return subject["digest"] if subject else ""


def test_registry_with_referrers_api_gets_no_fallback_tag():
    subject = Descriptor(MANIFEST, "sha256:" + "a" * 64, 123)
    fake = _ReferrersRegistry()
    att = Attachment(subject.digest, "application/spdx+json", b"{}\n", Path("image.spdx.json"))
    attach(fake, "app", [att], {subject.digest: subject}, PushStats())
    assert list(fake.manifests) != [] and not any(k.startswith("sha256-") for k in fake.manifests)
    doc = json.loads(next(iter(fake.manifests.values())))
    assert doc["subject"]["digest"] == subject.digest

"""Must-show: pushing to a real registry (Debian's docker-registry on 127.0.0.1).

Images are built hermetically (tests/aptrepo.py, amd64 + arm64 packages), then
pushed with `assemble push`; skopeo reads them back. A wire proxy in front of
the registry counts what crosses it (re-push sends no blob, shared layers are
mounted); the registry is killed in the middle of a chunked upload; TLS with a
CA made here and htpasswd auth with credentials from a docker config file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest
import requests
from aptrepo import AptRepo, File, Pkg
from hermetic import run, write_distro, write_spec
from regserver import RegistryServer, Tls, TokenServer, WireProxy

from assembler import transport
from assembler.cli import main

pytestmark = pytest.mark.integration

EM_X86_64, EM_AARCH64 = 62, 183
BULK = 3 << 20  # incompressible bytes: a layer big enough to upload in many chunks


def elf(machine: int) -> bytes:
    """A minimal ELF64 little-endian header (what `file` and our checks look at)."""
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    return ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0, 0, 0, 0, 64, 0, 0, 0, 0,
                               0) + b"\0" * 64


def elf_machines(tar: Path, arch_tag: str | None = None) -> dict[str, int]:
    """e_machine of every ELF file in one image of an image tar (by docker tag suffix)."""
    out: dict[str, int] = {}
    with tarfile.open(tar) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        entry = next(m for m in manifest
                     if arch_tag is None or m["RepoTags"][0].endswith("-" + arch_tag))
        for layer_name in entry["Layers"]:
            layer = outer.extractfile(layer_name)
            with tarfile.open(fileobj=layer, mode="r:*") as inner:
                for m in inner:
                    if m.isfile():
                        head = inner.extractfile(m).read(20)
                        if head[:4] == b"\x7fELF":
                            out[m.name] = struct.unpack("<H", head[18:20])[0]
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory, apt_key) -> dict[str, Path | str]:
    """Built once: one-arch, two-arch, a sibling sharing the one-arch layer, and a big one."""
    tmp = tmp_path_factory.mktemp("push-images")
    repo = AptRepo(tmp / "archive", {"stable": [
        Pkg("hello", "1.0", arch="amd64", depends="hello-data",
            files={"usr/bin/hello": File(elf(EM_X86_64), mode=0o755)}),
        Pkg("hello", "1.0", arch="arm64", depends="hello-data",
            files={"usr/bin/hello": File(elf(EM_AARCH64), mode=0o755)}),
        Pkg("hello-data", "1.0", arch="all", files={"usr/share/hello/greeting": b"hi\n"}),
        Pkg("bulk", "1.0", arch="amd64", compression="none",
            files={"usr/share/bulk/data": os.urandom(BULK)}),
    ]}, archs=("amd64", "arm64", "all"), key=apt_key)
    repo.serve()
    distro = write_distro(tmp, apt_key.public_path, ["stable"])
    out: dict[str, Path | str] = {"dir": tmp}
    try:
        for name, archs, pkg, extra in [
            ("one", "[amd64]", "hello", ""),
            ("multi", "[amd64, arm64]", "hello", ""),
            ("sibling", "[amd64]", "hello", "cmd: [/usr/bin/hello, --other]\n"),
            ("big", "[amd64]", "bulk", ""),
        ]:
            spec = write_spec(tmp, f"distro: {distro}\narchs: {archs}\n"
                              f"contents:\n  packages: [{pkg}]\n{extra}", f"{name}.yaml")
            tar = tmp / f"{name}.tar"
            digest_file = tmp / f"{name}.digest"
            # No SBOMs: these tests count the image's own blobs (test_sbom_push.py
            # covers attachments).
            code = main(["build", str(spec), "-o", str(tar), "-q", "--tag", f"{name}:1",
                         "--sbom", "none",
                         "--mirror", f"test={repo.url}", "--cache-dir", str(tmp / "cache"),
                         "--digest-file", str(digest_file)])
            assert code == 0
            out[name] = tar
            out[name + "-digest"] = digest_file.read_text()
    finally:
        repo.stop()
    return out


@pytest.fixture
def registries(tmp_path):
    started: list[RegistryServer] = []

    def make(**kw) -> RegistryServer:
        reg = RegistryServer(tmp_path / f"registry-{len(started)}", **kw)
        started.append(reg)
        return reg.start()

    yield make
    for reg in started:
        reg.kill()


@pytest.fixture
def clean_auth_env(tmp_path, monkeypatch):
    """No credentials from the developer's machine leak into a test."""
    for var in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "DOCKER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def push(capsys, image: Path, *refs: str, cache: Path, extra: list[str] = ()
         ) -> tuple[int, str, str]:
    return run(["push", str(image), *refs, "--cache-dir", str(cache), *extra], capsys)


def skopeo(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run(["skopeo", *args], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return r


def raw_digest(ref: str, *opts: str) -> str:
    raw = skopeo("inspect", "--raw", *opts, f"docker://{ref}").stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


# --------------------------------------------------------------------------- must-show 1


def test_push_one_and_two_arch_images_round_trip(images, registries, clean_auth_env, tmp_path,
                                                 capsys):
    reg = registries()
    plain = ["--tls-verify=false"]
    for name in ("one", "multi"):
        ref = f"{reg.host}/acme/{name}:1.0"
        digest_file = tmp_path / f"{name}.pushed"
        code, out, err = push(capsys, images[name], ref, f"{reg.host}/acme/{name}:latest",
                              cache=tmp_path / "cache",
                              extra=["--plain-http", "--digest-file", str(digest_file)])
        assert code == 0, err
        built = images[name + "-digest"]
        assert out.strip() == built == digest_file.read_text()
        # The registry serves the very bytes we built, under both tags.
        assert raw_digest(ref, *plain) == built
        assert raw_digest(f"{reg.host}/acme/{name}:latest", *plain) == built
        # Copied back to an OCI layout (all platforms), the digest is unchanged.
        layout = tmp_path / f"copy-{name}"
        skopeo("copy", "--all", "--preserve-digests", *["--src-tls-verify=false"],
               f"docker://{ref}", f"oci:{layout}:copy")
        index = json.loads((layout / "index.json").read_text())
        assert [m["digest"] for m in index["manifests"]] == [built]

    index = json.loads(skopeo("inspect", "--raw", *plain,
                              f"docker://{reg.host}/acme/multi:1.0").stdout)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = {m["platform"]["architecture"]: m for m in index["manifests"]}
    assert sorted(platforms) == ["amd64", "arm64"]
    arm = platforms["arm64"]
    assert arm["platform"] == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    config = json.loads(skopeo("inspect", "--config", "--raw", *plain,
                               f"docker://{reg.host}/acme/multi@{arm['digest']}").stdout)
    assert (config["os"], config["architecture"], config.get("variant")) == \
        ("linux", "arm64", "v8")
    # The binary skopeo pulls for arm64 is an AArch64 one.
    arm_tar = tmp_path / "arm.tar"
    skopeo("copy", *["--src-tls-verify=false"], "--override-arch", "arm64",
           f"docker://{reg.host}/acme/multi:1.0", f"docker-archive:{arm_tar}:x:arm")
    assert set(elf_machines(arm_tar).values()) == {EM_AARCH64}


def test_multi_arch_tar_loads_one_tag_per_arch(images):
    """The docker-load side of the tarball: one tag per architecture, right binaries."""
    tar = images["multi"]
    for arch, machine in (("amd64", EM_X86_64), ("arm64", EM_AARCH64)):
        r = skopeo("inspect", f"docker-archive:{tar}:docker.io/library/multi:1-{arch}")
        assert json.loads(r.stdout)["Architecture"] == arch
        assert set(elf_machines(tar, arch).values()) == {machine}
    r = skopeo("inspect", "--raw", f"oci-archive:{tar}")
    assert "sha256:" + hashlib.sha256(r.stdout).hexdigest() == images["multi-digest"]


# --------------------------------------------------------------------------- must-show 2


def test_repush_uploads_nothing_and_shared_layers_are_mounted(images, registries,
                                                             clean_auth_env, tmp_path, capsys):
    reg = registries()
    proxy = WireProxy(reg.host)
    cache = tmp_path / "cache"
    try:
        code, _, err = push(capsys, images["one"], f"{proxy.host}/team/one:1", cache=cache,
                            extra=["--plain-http"])
        assert code == 0, err
        first = list(proxy.uploads())
        assert first and sum(e.sent for e in first) > 0  # the counter does see uploads

        proxy.log.clear()
        code, out, err = push(capsys, images["one"], f"{proxy.host}/team/one:1", cache=cache,
                              extra=["--plain-http"])
        assert code == 0, err
        assert out.strip() == images["one-digest"]
        assert proxy.uploads() == [] and proxy.mounts() == []
        assert {e.method for e in proxy.log} <= {"GET", "HEAD", "PUT"}
        blob_bytes = [e for e in proxy.log if "/blobs/" in e.path and e.sent]
        assert blob_bytes == []

        # The sibling has the same layer and another config: the layer is mounted.
        proxy.log.clear()
        code, out, err = push(capsys, images["sibling"], f"{proxy.host}/other/sibling:1",
                              cache=cache, extra=["--plain-http"])
        assert code == 0, err
        mounts = proxy.mounts()
        assert len(mounts) == 1 and mounts[0].status == 201, proxy.log
        layer = _layers(images["sibling"])[0]
        assert f"mount={layer['digest'].replace(':', '%3A')}" in mounts[0].path
        assert "from=team%2Fone" in mounts[0].path
        uploaded = sum(e.sent for e in proxy.uploads())
        config_size = _config_size(images["sibling"])
        assert uploaded == config_size < layer["size"]
        assert raw_digest(f"{reg.host}/other/sibling:1", "--tls-verify=false") == \
            images["sibling-digest"]
        assert "1 mounted" in err
    finally:
        proxy.stop()


def _manifest(tar: Path) -> dict:
    with tarfile.open(tar) as tf:
        index = json.load(tf.extractfile("index.json"))
        digest = index["manifests"][0]["digest"]
        return json.load(tf.extractfile("blobs/sha256/" + digest[7:]))


def _layers(tar: Path) -> list[dict]:
    return _manifest(tar)["layers"]


def _config_size(tar: Path) -> int:
    return _manifest(tar)["config"]["size"]


# --------------------------------------------------------------------------- must-show 3


def _docker_config(home: Path, host: str, user: str, password: str) -> Path:
    d = home / ".docker"
    d.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (d / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return d


def test_tls_and_htpasswd(images, registries, clean_auth_env, tmp_path, capsys, monkeypatch):
    tls = Tls.make(tmp_path / "pki")
    reg = registries(tls=tls, users={"alice": "correct horse"})
    ref = f"{reg.host}/secure/one:1"
    cache = tmp_path / "cache"
    ca = ["--ca-cert", str(tls.ca_path)]

    # No credentials at all: says so, and where it looked.
    code, _, err = push(capsys, images["one"], ref, cache=cache, extra=ca)
    assert code == 2 and "Traceback" not in err, err
    assert reg.host in err and "requires credentials" in err and "docker login" in err

    # Wrong password: a clear refusal naming registry, repository and user; exit 2.
    monkeypatch.setenv("DOCKER_CONFIG", str(_docker_config(tmp_path / "bad", reg.host,
                                                            "alice", "wrong")))
    code, _, err = push(capsys, images["one"], ref, cache=cache, extra=ca)
    assert code == 2 and "Traceback" not in err
    assert f"{reg.host} rejected the credentials for secure/one" in err and "alice" in err

    # Right password, but the CA is not trusted: the error says how to fix it.
    monkeypatch.setenv("DOCKER_CONFIG", str(_docker_config(clean_auth_env, reg.host,
                                                            "alice", "correct horse")))
    code, _, err = push(capsys, images["one"], ref, cache=cache)
    assert code == 1 and "--ca-cert" in err and "Traceback" not in err

    code, out, err = push(capsys, images["one"], ref, cache=cache, extra=ca)
    assert code == 0, err
    assert out.strip() == images["one-digest"]
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(tls.ca_path.read_bytes())
    assert raw_digest(ref, "--cert-dir", str(certs), "--creds", "alice:correct horse") == \
        images["one-digest"]


# --------------------------------------------------------------------------- must-show 4


def _tag_blobs(reg: RegistryServer, repo: str, tag: str) -> list[str] | None:
    """If the tag resolves: "digest status" for every blob its manifest names."""
    accept = "application/vnd.oci.image.manifest.v1+json"
    try:
        r = requests.get(f"{reg.url}/v2/{repo}/manifests/{tag}", headers={"Accept": accept},
                         timeout=2)
        if r.status_code != 200:
            return None
        doc = r.json()
        return [f"{b['digest']} " + str(requests.head(
            f"{reg.url}/v2/{repo}/blobs/{b['digest']}", timeout=2).status_code)
            for b in [doc["config"], *doc["layers"]]]
    except requests.RequestException:
        return None  # the registry is down right now


def _tag_watch(reg: RegistryServer, repo: str, tag: str, stop: threading.Event,
               seen: list[str], polls: list[int]) -> None:
    """Poll the tag during the push; whenever it resolves, record its blobs' states."""
    while not stop.is_set():
        seen += _tag_blobs(reg, repo, tag) or []
        polls.append(1)
        time.sleep(0.02)


def _kill_on_patch(reg: RegistryServer, proxy: WireProxy, nth: int, restart_after: float | None
                   ) -> dict:
    state = {"patches": 0, "killed_at": None, "restarted": False}

    def before(method: str, path: str) -> bool:
        if method == "PATCH":
            state["patches"] += 1
            if state["patches"] == nth:
                reg.kill()
                state["killed_at"] = len(proxy.log)
                if restart_after is not None:
                    def restart() -> None:
                        time.sleep(restart_after)
                        reg.start()
                        state["restarted"] = True
                    threading.Thread(target=restart, daemon=True).start()
                return False
        return True

    proxy.before = before
    return state


@pytest.mark.parametrize("restart", [True, False], ids=["restarted", "stays-down"])
def test_registry_killed_mid_upload(images, registries, clean_auth_env, tmp_path, capsys,
                                    monkeypatch, restart):
    monkeypatch.setattr(transport, "RETRIES", 4)
    # Restarted: 0.4 + 0.8 + 1.6 + 3.2 s of patience for a 0.5 s outage; else fail fast.
    monkeypatch.setattr(transport, "BACKOFF", 0.4 if restart else 0.1)
    reg = registries()
    proxy = WireProxy(reg.host)
    state = _kill_on_patch(reg, proxy, nth=3, restart_after=0.5 if restart else None)
    stop, seen, polls = threading.Event(), [], []
    watcher = threading.Thread(target=_tag_watch, args=(reg, "big", "1", stop, seen, polls),
                               daemon=True)
    watcher.start()
    try:
        code, out, err = push(capsys, images["big"], f"{proxy.host}/big:1",
                              cache=tmp_path / "cache",
                              extra=["--plain-http", "--chunk-size", "256K"])
    finally:
        stop.set()
        watcher.join(5)
        proxy.stop()
    assert state["killed_at"] is not None  # the registry really died mid-upload
    assert len(polls) > 10  # the watcher was looking while the push ran
    assert "Traceback" not in err
    # Whenever the tag resolved, every blob it names was complete.
    assert all(s.endswith(" 200") for s in seen), seen
    if restart:
        assert code == 0, err
        assert out.strip() == images["big-digest"]
        after = proxy.log[state["killed_at"]:]
        assert any(e.method == "POST" and e.status == 202 for e in after)  # started over
        final = _tag_blobs(reg, "big", "1")
        assert final and all(s.endswith(" 200") for s in final)
        assert raw_digest(f"{reg.host}/big:1", "--tls-verify=false") == images["big-digest"]
    else:
        assert code == 1
        assert proxy.host in err and "failed after 5 attempts" in err
        reg.start()
        r = requests.get(f"{reg.url}/v2/big/manifests/1", timeout=5)
        assert r.status_code == 404  # no tag points at the incomplete image
        assert seen == []
        # The layer never arrived whole (else this would prove nothing).
        layer = _layers(images["big"])[0]["digest"]
        assert requests.head(f"{reg.url}/v2/big/blobs/{layer}", timeout=5).status_code == 404


# --------------------------------------------------------------------------- errors


def test_user_mistakes_are_one_paragraph(images, registries, clean_auth_env, tmp_path, capsys,
                                         monkeypatch):
    monkeypatch.setattr(transport, "BACKOFF", 0.05)
    reg = registries()
    cache = ["--cache-dir", str(tmp_path / "cache")]
    cases = [
        (["push", str(images["one"]), "Bad/Ref:1"], 2, "Invalid image tag"),
        (["push", str(images["one"]), f"{reg.host}/x:bad tag"], 2, "Invalid image"),
        (["push", str(tmp_path / "missing.tar"), f"{reg.host}/x:1"], 2, "image.tar"),
        (["push", str(images["one"])], 2, "needs a destination"),
        # A spec means the image.tar beside it, which these builds did not write.
        (["push", str(images["dir"] / "one.yaml"), f"{reg.host}/x:1"], 2, "build it first"),
        # A plain-HTTP registry spoken to with TLS.
        (["push", str(images["one"]), f"{reg.host}/x:1"], 1, "--plain-http"),
    ]
    for argv, want_code, words in cases:
        code, _, err = run([*argv, *cache], capsys)
        assert code == want_code, (argv, err)
        assert words in err and "Traceback" not in err, err
    port = reg.port
    reg.kill()
    code, _, err = run(["push", str(images["one"]), f"127.0.0.1:{port}/x:1", "--plain-http",
                        *cache], capsys)
    assert code == 1 and f"127.0.0.1:{port}" in err and "Connection refused" in err


def test_build_push(images, registries, clean_auth_env, tmp_path, capsys, apt_key):
    """`assemble build --push` pushes what it built; --arch narrows a multi-arch spec."""
    reg = registries()
    tmp = images["dir"]
    spec = tmp / "multi.yaml"
    repo_url = _serve_again(tmp)
    out = tmp_path / "arm.tar"
    try:
        code, stdout, err = run(["build", str(spec), "-o", str(out), "--arch", "arm64",
                                 "--push", f"{reg.host}/narrow:1", "--plain-http",
                                 "--mirror", f"test={repo_url.url}",
                                 "--cache-dir", str(tmp / "cache")], capsys)
    finally:
        repo_url.stop()
    assert code == 0, err
    digest = stdout.strip()
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false",
                            f"docker://{reg.host}/narrow:1").stdout)
    assert raw["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert raw_digest(f"{reg.host}/narrow:1", "--tls-verify=false") == digest
    assert set(elf_machines(out).values()) == {EM_AARCH64}


def test_push_oci_directory(images, registries, clean_auth_env, tmp_path, capsys):
    """An OCI layout directory (build --format oci-dir, or skopeo's) pushes the same bytes."""
    reg = registries()
    layout = tmp_path / "layout"
    skopeo("copy", "--all", "--preserve-digests", f"oci-archive:{images['multi']}",
           f"oci:{layout}:x")
    code, out, err = push(capsys, layout, f"{reg.host}/fromdir:1", cache=tmp_path / "c",
                          extra=["--plain-http"])
    assert code == 0, err
    assert out.strip() == images["multi-digest"]
    assert raw_digest(f"{reg.host}/fromdir:1", "--tls-verify=false") == images["multi-digest"]


def _serve_again(tmp: Path):
    from aptrepo import serve_start

    return serve_start(tmp / "archive")


def test_arm64_lock_and_binaries(images):
    lock = json.loads((images["dir"] / "multi.lock.json").read_text())
    assert sorted(lock["archs"]) == ["amd64", "arm64"]
    assert {p["arch"] for p in lock["archs"]["arm64"]["packages"]} == {"arm64", "all"}
    versions = {a: {p["name"]: p["version"] for p in e["packages"]}
                for a, e in lock["archs"].items()}
    assert versions["amd64"] == versions["arm64"]
    assert set(elf_machines(images["multi"], "arm64").values()) == {EM_AARCH64}


def test_bearer_token_flow(images, registries, clean_auth_env, tmp_path, capsys, monkeypatch):
    """docker-registry with token auth: the token comes from the challenge's realm."""
    tokens = TokenServer(tmp_path / "token", "bob", "hunter2")
    try:
        reg = registries(token=tokens.registry_config())
        cache = tmp_path / "cache"
        monkeypatch.setenv("DOCKER_CONFIG", str(_docker_config(tmp_path / "bad", reg.host,
                                                                "bob", "wrong")))
        code, _, err = push(capsys, images["one"], f"{reg.host}/team/one:1", cache=cache,
                            extra=["--plain-http"])
        assert code == 2 and "rejected the credentials" in err and "Traceback" not in err

        monkeypatch.setenv("DOCKER_CONFIG", str(_docker_config(clean_auth_env, reg.host,
                                                                "bob", "hunter2")))
        code, out, err = push(capsys, images["one"], f"{reg.host}/team/one:1", cache=cache,
                              extra=["--plain-http"])
        assert code == 0, err
        assert out.strip() == images["one-digest"]
        assert (["repository:team/one:pull,push"], "bob") in tokens.requests
        # A mount asks for pull on the source repository as well.
        code, _, err = push(capsys, images["sibling"], f"{reg.host}/other/sibling:1",
                            cache=cache, extra=["--plain-http"])
        assert code == 0, err
        assert "1 mounted" in err
        assert (["repository:other/sibling:pull,push", "repository:team/one:pull"], "bob") \
            in tokens.requests
    finally:
        tokens.stop()

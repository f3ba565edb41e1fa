"""Issue 18, must-show 1: apko configs load unchanged. The configs in tests/data/apko/
are written from apko's documented schema; each loads as it is and builds against a
hermetic repository on 127.0.0.1 (Wolfi's layout, a tagged local one, Alpine's layout
on a mirror host). The image config, files, owners and modes are checked against
what apko's documentation says each field does."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import yaml
from apkrepo import Apk, F, write_repo
from aptrepo import serve_start
from test_apk_support import Signer
from wolfirepo import KEY, write_wolfi

from assembler.build import platform_of
from assembler.cli import main
from assembler.distro.apko import resolve
from assembler.distro.definition import load_distro
from assembler.errors import SpecError
from assembler.spec.document import Spec, load_spec

pytestmark = [pytest.mark.integration, pytest.mark.needs_shared]

DATA = Path(__file__).parent / "data" / "apko"


def loaded(path: Path) -> Spec:
    """The spec as the commands see it: an apko config's distro inferred (distro stage)."""
    spec = load_spec(path)
    resolve(spec)
    return spec


CONFIGS = ["wolfi-base", "full", "service", "fragment", "tags", "alpine"]


def app_data() -> Apk:
    return Apk("app-data", "1.0-r0", files={
        "usr/share/app-data/app.conf": F(b"port=8080\n", 0o644),
        "usr/share/app-data/tree/a": F(b"a", 0o644),
        "usr/share/app-data/tree/sub/b": F(b"b", 0o755)})


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The served repositories and a directory of the configs, ${REPO} filled in."""
    tmp = tmp_path_factory.mktemp("apko")
    wolfi, local = Signer.new(KEY), Signer.new("local.rsa.pub")
    srv = tmp / "srv"
    # busybox: the /bin/sh the configs' entrypoints and cmds name (the build refuses one
    # the image lacks).
    write_wolfi(srv, wolfi, [app_data(), Apk("s6", "2.13-r0", files={
        "bin/s6-svscan": F(b"#!/bin/execlineb\n", 0o755)}),
        Apk("busybox", "1.37.0-r0", files={"bin/sh": F(b"#!/bin/busybox\n", 0o755)})])
    for repo, pkgs in (("alpine/v3.22/main", [Apk("hello-alpine", "1.0-r0")]),
                       ("alpine/v3.22/community", [Apk("other-alpine", "1.0-r0")]),
                       ("alpine/edge/testing", [Apk("new-tool", "1.0-r0", depends=["lib"]),
                                                Apk("lib", "2.0-r0")])):
        for p in pkgs:
            p.files = {f"usr/share/{p.name}": p.version.encode()}
        write_repo(srv, repo, pkgs, local)
    server = serve_start(srv)
    work = tmp / "configs"
    work.mkdir()
    write_repo(work, "local-packages", [Apk("extra", "1.0-r0",
                                            files={"usr/share/extra": b"local\n"})], local)
    (work / "local.rsa.pub").write_bytes(local.public_pem)
    for f in DATA.glob("*.yaml"):
        (work / f.name).write_text(f.read_text().replace("${REPO}", server.url.rstrip("/")))
    yield work, tmp / "cache", server
    server.stop()


@pytest.fixture(scope="module")
def built(site):
    work, cache, _ = site
    for name in CONFIGS:
        spec = work / f"{name}.yaml"
        assert main(["build", str(spec), "-o", str(work / f"{name}.tar"),
                     "--cache-dir", str(cache), "-q"]) == 0, name
    return work


def image(built: Path, name: str) -> tuple[dict, dict[str, tarfile.TarInfo], dict]:
    """The config, the files (path -> tar header, upper layers win) and the manifest's
    annotations of a built image."""
    with tarfile.open(built / f"{name}.tar") as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        config = json.load(outer.extractfile(manifest["Config"]))
        index = json.load(outer.extractfile("index.json"))
        digest = index["manifests"][0]["digest"].split(":")[1]
        annotations = json.load(outer.extractfile(f"blobs/sha256/{digest}")).get(
            "annotations", {})
        files: dict[str, tarfile.TarInfo] = {}
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                for m in inner.getmembers():
                    files["/" + m.name.rstrip("/")] = m
                    if m.isfile():
                        CONTENT[(name, "/" + m.name)] = inner.extractfile(m).read()
    return config, files, annotations


CONTENT: dict[tuple[str, str], bytes] = {}


def _read(built: Path, name: str, path: str) -> str:
    image(built, name)
    return CONTENT[(name, path)].decode()


def test_every_config_loads_unchanged(site):
    work, _, _ = site
    for name in CONFIGS:
        assert loaded(work / f"{name}.yaml").apko is not None, name


def test_wolfi_base(built, site):
    _, cache, _ = site
    spec = loaded(built / "wolfi-base.yaml")
    assert spec.distro == "wolfi/rolling"  # inferred from the repository's layout
    assert spec.mirrors == {"wolfi": spec.mirrors["wolfi"]} and "127.0.0.1" in \
        spec.mirrors["wolfi"]
    config, files, _ = image(built, "wolfi-base")
    assert config["architecture"] == "amd64"
    assert config["config"]["Cmd"] == ["/bin/sh", "-l"]  # apko splits cmd like a shell
    assert "Entrypoint" not in config["config"]
    env = dict(v.split("=", 1) for v in config["config"]["Env"])
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin"
    assert env["SSL_CERT_FILE"] == "/etc/ssl/certs/ca-certificates.crt"
    assert "/usr/bin/hello" in files and f"/etc/apk/keys/{KEY}" in files
    # the keyring URL was fetched once and kept under the cache (keyring.py)
    assert [p.name for p in (cache / "keyring").rglob("*.pub")] == [KEY]


def test_full(built):
    spec = loaded(built / "full.yaml")
    assert [str(p) for p in spec.packages] == ["glibc", "hello-wolfi", "app-data"]  # include
    config, files, annotations = image(built, "full")
    c = config["config"]
    assert c["Entrypoint"] == ["/usr/bin/hello", "--greeting", "hi there"]
    assert c["Cmd"] == ["--traditional"]  # the including file wins
    assert c["StopSignal"] == "SIGQUIT" and c["WorkingDir"] == "/srv/app"
    assert c["User"] == "app"  # run-as as written
    assert c["Volumes"] == {"/var/lib/app": {}}
    env = dict(v.split("=", 1) for v in c["Env"])
    assert (env["FROM_BASE"], env["OVERRIDDEN"]) == ("yes", "full")
    for labels in (c["Labels"], annotations):
        assert labels["org.example.from-base"] == "yes"
        assert labels["org.example.overridden"] == "full"
        assert labels["org.opencontainers.image.source"] == "https://example.org/app.git"
        assert labels["org.opencontainers.image.revision"] == "0123456789abcdef"
    assert len(config["rootfs"]["diff_ids"]) > 1  # layering: origin
    passwd = {line.split(":")[0]: line.split(":") for line in
              _read(built, "full", "/etc/passwd").splitlines()}
    assert passwd["app"][5:] == ["/srv/app", "/bin/sh"]  # homedir; apko's default shell
    assert passwd["nonroot"][5:] == ["/home/nonroot", "/bin/sh"]
    d = files["/var/lib/app"]
    assert (d.isdir(), d.mode, d.uid, d.gid) == (True, 0o750, 10000, 10000)
    e = files["/etc/app/empty.conf"]
    assert (e.mode, e.uid, e.size) == (0o640, 0, 0)
    assert files["/usr/bin/greet"].linkname == "/usr/bin/hello"
    for p in ("/usr/share/app-data/app.conf", "/etc/app/app.conf"):  # one inode
        assert (files[p].mode, files[p].uid, files[p].gid) == (0o600, 10000, 0), p
    for p in ("/usr/share/app-data/tree", "/usr/share/app-data/tree/a",
              "/usr/share/app-data/tree/sub/b"):
        assert (files[p].mode, files[p].uid, files[p].gid) == (0o700, 10000, 0), p


def test_service_bundle(built):
    config, files, _ = image(built, "service")
    assert config["config"]["Entrypoint"] == ["/bin/s6-svscan", "/sv"]
    assert config["config"]["StopSignal"] == "SIGHUP"
    assert "/bin/s6-svscan" in files  # apko adds s6 to the packages
    assert files["/sv/hello/run"].mode == 0o755
    assert _read(built, "service", "/sv/hello/run") == \
        '#!/bin/execlineb\n/usr/bin/hello --greeting "from s6"\n'


def test_shell_fragment(built):
    config, _, _ = image(built, "fragment")
    assert config["config"]["Entrypoint"] == ["/bin/sh", "-c", "hello | tr a-z A-Z"]


def test_repository_tags(built):
    _, files, _ = image(built, "tags")
    assert "/usr/share/extra" in files
    repos = _read(built, "tags", "/etc/apk/repositories").splitlines()
    assert repos[0].endswith("/os") and repos[1].startswith("@local file://")
    assert "extra@local" in _read(built, "tags", "/etc/apk/world").split()
    lock = json.loads((built / "tags.lock.json").read_text())
    extra = next(p for p in lock["archs"]["amd64"]["packages"] if p["name"] == "extra")
    assert extra["archive"] == "apko-1-local" and extra["filename"] == "x86_64/extra-1.0-r0.apk"


def test_alpine_layout_on_a_mirror(built):
    spec = loaded(built / "alpine.yaml")
    assert spec.distro == "alpine/v3.22" and spec.components == ["main", "community"]
    config, files, _ = image(built, "alpine")
    assert config["config"]["User"] == "65532"
    assert "/usr/share/hello-alpine" in files and "/usr/share/other-alpine" not in files
    assert _read(built, "alpine", "/usr/share/lib") == "2.0-r0"  # from @edge, as new-tool
    assert _read(built, "alpine", "/etc/apk/repositories").splitlines()[2].startswith("@edge ")
    assert "ID=alpine" in _read(built, "alpine", "/usr/lib/os-release")


# -- translation only (no build) ---------------------------------------------------------
def write(tmp_path: Path, doc: dict, name: str = "apko.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


def origin_of(distro: str) -> str:
    """A definition's own repository origin, read from it (no host names in tests)."""
    url = load_distro(distro).archives[0].url
    assert url
    return url


def test_distro_from_the_definitions_own_urls(tmp_path):
    alpine = origin_of("alpine/v3.21")
    spec = loaded(write(tmp_path, {"contents": {
        "repositories": [f"{alpine}/v3.21/main", f"{alpine}/v3.21/community",
                         f"@testing {alpine}/edge/testing"],
        "packages": ["busybox", "foo@testing"]}}))
    assert (spec.distro, spec.components, spec.mirrors) == \
        ("alpine/v3.21", ["main", "community"], {})
    (extra,) = spec.repositories
    assert (extra.tag, extra.url) == ("testing", f"{alpine}/edge/testing")
    assert extra.keys  # Alpine's keys, the repository being on Alpine's layout
    wolfi = loaded(write(tmp_path, {"contents": {
        "repositories": [f"{origin_of('wolfi')}/os"], "packages": ["wolfi-base"]}}))
    assert (wolfi.distro, wolfi.components, wolfi.mirrors) == ("wolfi/rolling", ["."], {})


def test_archs(tmp_path):
    def archs(value: object) -> list[str]:
        return loaded(write(tmp_path, {"contents": {
            "repositories": [f"{origin_of('wolfi')}/os"], "packages": ["x"]},
            "archs": value})).archs

    assert archs(["386", "amd64", "arm64", "arm/v6", "arm/v7", "loong64", "ppc64le",
                  "riscv64", "s390x"]) == archs(["all"])
    assert archs(["all"]) == ["i386", "amd64", "arm64", "armhf", "armv7", "loongarch64",
                              "ppc64le", "riscv64", "s390x"]
    assert archs(["x86_64", "aarch64", "armhf", "x86"]) == ["amd64", "arm64", "armhf", "i386"]
    assert len(archs(["host"])) == 1
    wolfi = load_distro("wolfi")
    labels = {a: platform_of(wolfi, a) for a in archs(["all"])}
    assert (labels["armhf"].architecture, labels["armhf"].variant) == ("arm", "v6")  # apko's
    assert (labels["armv7"].architecture, labels["armv7"].variant) == ("arm", "v7")
    assert labels["i386"].architecture == "386" and labels["loongarch64"].architecture == \
        "loong64"


@pytest.mark.parametrize("doc, where, words", [
    ({"contents": {"packages": ["x"]}}, 2, "names its repositories"),
    ({"include": "github.com/chainguard-dev/apko/examples/alpine-base.yaml@main",
      "contents": {"packages": ["x"]}}, 1, "remote git repository; it is not fetched"),
    ({"include": "missing.yaml"}, 1, "no such file"),
    ({"contents": {"repositories": ["R"], "packages": ["x"],
                   "runtime_repositories": ["R"]}}, 7, "runtime_repositories"),
    ({"contents": {"repositories": ["R"], "packages": ["x"],
                   "baseimage": {"image": "x"}}}, 7, "base image is not supported"),
    ({"contents": {"repositories": ["R"], "packages": ["x"]},
      "entrypoint": {"type": "service-bundle"}}, 7, "needs 'services'"),
    ({"contents": {"repositories": ["R"], "packages": ["x"]},
      "entrypoint": {"type": "daemon", "command": "/x"}}, 7, "only 'service-bundle'"),
    ({"contents": {"repositories": ["R"], "packages": ["x"]}, "format": "erofs"}, 6,
     "EROFS"),
    ({"contents": {"repositories": ["R"], "packages": ["x"]}, "archs": ["sparc"]}, 7,
     "unknown architecture 'sparc'"),
    ({"contents": {"repositories": ["R"], "packages": ["x"]}, "entrypiont": {}}, 6,
     "Did you mean 'entrypoint'"),
    ({"contents": {"repositories": ["R"], "packages": ["x"]},
      "paths": [{"path": "/x", "type": "directory", "permissions": "0o99"}]}, 9,
     "permissions '0o99'"),
    ({"contents": {"repositories": ["R"], "packages": ["x"]},
      "cmd": "echo 'unterminated"}, 6, "cannot be split"),
])
def test_refusals_name_file_and_line(tmp_path, doc, where, words):
    text = yaml.safe_dump(doc, sort_keys=False).replace("- R\n", f"- {origin_of('wolfi')}/os\n")
    p = tmp_path / "apko.yaml"
    p.write_text(text)
    with pytest.raises(SpecError, match=words) as e:
        loaded(p)
    assert e.value.message.startswith(f"{p}:{where}: "), e.value.message


def test_included_files_errors_name_the_included_file(tmp_path):
    write(tmp_path, {"archs": ["m68k"]}, "base.yaml")
    p = write(tmp_path, {"include": "base.yaml", "contents": {
        "repositories": [f"{origin_of('wolfi')}/os"], "packages": ["x"]}})
    with pytest.raises(SpecError, match="unknown architecture 'm68k'") as e:
        loaded(p)
    assert e.value.message.startswith(f"{tmp_path / 'base.yaml'}:2: ")


def test_unknown_repository_needs_a_keyring(tmp_path):
    p = write(tmp_path, {"contents": {"repositories": ["https://example.org/repo"],
                                      "packages": ["x"]}})
    with pytest.raises(SpecError, match="matches no distro definition.*contents.keyring"):
        loaded(p)


def test_local_paths_from_the_working_directory(tmp_path, monkeypatch):
    """apko reads relative keyring and repository paths from where it runs; beside the
    config is tried first."""
    (tmp_path / "testdata" / "packages").mkdir(parents=True)
    (tmp_path / "testdata" / "k.rsa.pub").write_bytes(Signer.new().public_pem)
    write(tmp_path / "testdata", {"contents": {
        "keyring": ["./testdata/k.rsa.pub"], "repositories": ["./testdata/packages"],
        "packages": ["x"]}})
    monkeypatch.chdir(tmp_path)
    spec = loaded(Path("testdata/apko.yaml"))
    assert spec.distro == "apko/custom"
    assert spec.repositories[0].url == f"file://{tmp_path}/testdata/packages"
    assert spec.apko.key_paths == [str(tmp_path / "testdata" / "k.rsa.pub")]


def test_certificates_map_onto_ours(tmp_path):
    """apko's certificates.additional is our key of that name (issue 13): the
    certificate reaches the spec, and so the bundle, hash links and truststore."""
    p = write(tmp_path, {"contents": {"repositories": [f"{origin_of('wolfi')}/os"],
                                      "packages": ["x"]},
                         "certificates": {"additional": [{"name": "corp", "content": "PEM"}]}})
    spec = loaded(p)
    assert [c["name"] for c in spec.certificates] == ["corp"]
    assert spec.certificates[0]["content"] == "PEM"

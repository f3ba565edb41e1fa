"""Must-show (issue 17): Ubuntu as a distro, from a chisel-releases checkout, hermetically.

Two local archives are laid out and signed like Ubuntu's: the primary one (amd64: suites
noble, noble-security and noble-updates, components main and universe) and the ports one
(arm64, same suites). The release is a chisel-releases checkout written here: chisel.yaml
(format v3, the archive's key inline, an Ubuntu Pro archive that is skipped with a note)
and slices/ in chisel-releases' own style, base-passwd's mutate script included. The spec
says `distro: release/chisel.yaml`; it locks for amd64 and arm64, builds amd64, and the
image runs in a chroot as uid 65532 with /proc mounted: a static program built here by
the host's gcc checks its uid, /proc, /etc/passwd and /etc/os-release.

Issue 12 on Ubuntu: the Releases say `Version: 24.04`, as Ubuntu's do. An image of whole
packages without base-files, from a definition with repos/ubuntu/noble.yaml's identity,
carries base-files' os-release, lsb-release and debian_version on amd64 (primary
archive) and arm64 (ports), and Syft and Trivy both see Ubuntu 24.04 and exactly the
lock's packages; a chisel-releases image gets the files its slices did not take.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from aptrepo import AptRepo, File, Pkg
from hermetic import image_file, run
from scanners import syft, syft_packages, trivy_image, trivy_packages, trivy_version
from test_chisel_setup import BASE_PASSWD, chisel_yaml
from test_osrelease_templates import NOBLE

from assembler.distro.definition import REPOS_DIR

pytestmark = pytest.mark.integration

SUITES = ["noble", "noble-security", "noble-updates"]
# What Ubuntu's Releases say (e.g. dists/noble/InRelease: "Version: 24.04").
RELEASE_FIELDS = {suite: {"Version": "24.04"} for suite in SUITES}
NOBLE_LSB = (b'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=24.04\nDISTRIB_CODENAME=noble\n'
             b'DISTRIB_DESCRIPTION="Ubuntu 24.04 LTS"\n')
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"

PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static int has(const char *path, const char *text) {
    char buf[4096]; FILE *f = fopen(path, "r"); size_t n;
    if (!f) return 0;
    n = fread(buf, 1, sizeof buf - 1, f); buf[n] = 0; fclose(f);
    return strstr(buf, text) != NULL;
}
int main(void) {
    printf("uid=%d\n", (int)getuid());
    printf("proc=%d\n", has("/proc/self/status", "Uid:\t65532"));
    printf("passwd=%d\n", has("/etc/passwd", "nonroot:x:65532:65532:"));
    printf("os=%d\n", has("/etc/os-release", "ID=ubuntu"));
    return 0;
}
"""

BASE_FILES = """\
package: base-files

essential:
  base-files_copyright:

slices:
  base:
    hint: The Ubuntu base directories
    contents:
      /etc/os-release:
      /proc/: {make: true, mode: 0555}
      /tmp/: {make: true, mode: 01777}
      /usr/lib/os-release:

  chisel:
    contents:
      /var/lib/chisel/**: {generate: manifest}

  copyright:
    contents:
      /usr/share/doc/base-files/copyright:
"""

HELLO = """\
package: hello

essential:
  hello_copyright:

slices:
  bins:
    essential:
      base-files_base:
      base-passwd_data:
    contents:
      /usr/bin/hello:
      /usr/share/hello/greeting: {copy: /usr/share/hello/greeting.default}

  greeting:
    contents:
      /etc/hello.conf: {text: FIXME, mutable: true}
    mutate: |
      content.write("/etc/hello.conf", "greeting=" + content.read("/etc/hostname"))

  copyright:
    contents:
      /usr/share/doc/hello/copyright:
"""

PRO = """\
  ubuntu-esm-apps:
    pro: esm-apps
    priority: 16
    version: 24.04
    components: [main]
    suites: [noble-apps-security, noble-apps-updates]
    public-keys: [test-key]
"""


def _packages(hello: bytes, arch: str) -> list[Pkg]:
    def doc(name: str) -> dict[str, bytes]:
        return {f"usr/share/doc/{name}/copyright": f"{name} licence\n".encode()}

    return [
        Pkg("base-files", "13ubuntu10", arch=arch, files={
            "etc/os-release": b"NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_CODENAME=noble\n",
            "usr/lib/os-release": b"ID=ubuntu\n", **doc("base-files")}),
        Pkg("base-passwd", "3.6.3build1", arch=arch, files={
            "usr/share/base-passwd/passwd.master": b"root:x:0:0:root:/root:/bin/bash\n",
            "usr/share/base-passwd/group.master": b"root:x:0:\n", **doc("base-passwd")}),
        Pkg("hello", "2.10-3build1", arch=arch, component="universe", depends="libc6",
            files={"usr/bin/hello": File(hello, mode=0o755),
                   "usr/share/hello/greeting.default": b"hello\n", **doc("hello")}),
    ]


@pytest.fixture(scope="module")
def ubuntu(tmp_path_factory, apt_key):
    tmp = tmp_path_factory.mktemp("ubuntu")
    src = tmp / "hello.c"
    src.write_text(PROGRAM)
    subprocess.run(["gcc", "-static", "-O1", "-o", str(tmp / "hello"), str(src)], check=True)
    hello = (tmp / "hello").read_bytes()
    # noble has the packages; -security and -updates exist (empty), as on a fresh release.
    primary = AptRepo(tmp / "ubuntu", {"noble": _packages(hello, "amd64"),
                                       "noble-security": [], "noble-updates": []},
                      components=["main", "universe"], archs=["amd64", "i386", "all"],
                      key=apt_key, release_fields=RELEASE_FIELDS)
    ports = AptRepo(tmp / "ubuntu-ports", {"noble": _packages(b"\x7fELF arm64", "arm64"),
                                           "noble-security": [], "noble-updates": []},
                    components=["main", "universe"], archs=["arm64", "armhf", "all"],
                    key=apt_key, release_fields=RELEASE_FIELDS)
    primary.serve()
    ports.serve()
    release = tmp / "release"
    (release / "slices").mkdir(parents=True)
    archives = textwrap.dedent("""\
        archives:
          ubuntu:
            priority: 10
            version: 24.04
            components: [main, universe]
            suites: [noble, noble-security, noble-updates]
            public-keys: [test-key]
        """) + PRO
    (release / "chisel.yaml").write_text(chisel_yaml(apt_key, "v3", archives))
    for name, text in (("base-files", BASE_FILES), ("base-passwd", BASE_PASSWD),
                       ("hello", HELLO)):
        (release / "slices" / f"{name}.yaml").write_text(text)
    yield tmp, primary, ports
    primary.stop()
    ports.stop()


def test_lock_build_and_run_as_nonroot(ubuntu, tmp_path, capsys) -> None:
    tmp, primary, ports = ubuntu
    spec = tmp_path / "image.yaml"
    spec.write_text(textwrap.dedent(f"""\
        distro: {tmp / "release" / "chisel.yaml"}
        archs: [amd64, arm64]
        contents:
          packages: [hello_bins, base-files_chisel]
        accounts:
          groups: [{{groupname: nonroot, gid: 65532}}]
          users: [{{username: nonroot, uid: 65532, gid: 65532, home: /home/nonroot}}]
          run-as: nonroot
        entrypoint: [/usr/bin/hello]
        """))
    mirrors = ["--mirror", f"ubuntu={primary.url}", "--mirror", f"ubuntu-ports={ports.url}",
               "--cache-dir", str(tmp_path / "cache")]
    code, _, err = run(["lock", str(spec), *mirrors], capsys)
    assert code == 0, err
    assert "ubuntu-esm-apps" in err and "Pro" in err          # skipped with a note
    lock = json.loads(spec.with_name("image.lock.json").read_text())
    amd64 = {p["name"]: p for p in lock["archs"]["amd64"]["packages"]}
    arm64 = {p["name"]: p for p in lock["archs"]["arm64"]["packages"]}
    assert set(amd64) == set(arm64) == {"base-files", "base-passwd", "hello"}
    assert amd64["hello"]["slices"] == ["bins", "copyright"]     # libc6 Depends not followed
    assert arm64["hello"]["sha256"] != amd64["hello"]["sha256"]  # from the ports archive
    assert any("/dists/noble/InRelease" in p for p in ports.server.paths())
    assert any("binary-arm64" in p for p in ports.server.paths())
    assert not any("binary-arm64" in p for p in primary.server.paths())
    out = tmp_path / "image.tar"
    code, _, err = run(["build", str(spec), "--arch", "amd64", "-o", str(out), "-q", *mirrors],
                       capsys)
    assert code == 0, err
    assert "note:" not in err and "ubuntu-esm-apps" not in err, err   # -q: no notes either
    rootfs = _unpack(out, tmp_path)
    assert (rootfs / "usr/share/hello/greeting").read_text() == "hello\n"   # copy:
    assert not (rootfs / "usr/share/base-passwd/passwd.master").exists()    # until: mutate
    assert (rootfs / "var/lib/chisel/manifest.wall").is_file()
    # base-files_base took its own os-release; what it did not take comes from
    # repos/ubuntu/noble.yaml, the release chisel.yaml names.
    assert (rootfs / "usr/lib/os-release").read_bytes() == b"ID=ubuntu\n"
    assert (rootfs / "etc/lsb-release").read_bytes() == NOBLE_LSB
    assert (rootfs / "etc/debian_version").read_bytes() == b"trixie/sid\n"
    if os.geteuid() != 0:
        pytest.skip("chroot and mounting /proc need root")
    r = subprocess.run(["unshare", "--mount", "--fork", "sh", "-c",
                        f"mount -t proc proc {rootfs}/proc && exec {CHROOT} "
                        f"--userspec=65532:65532 {rootfs} /usr/bin/hello"],
                       capture_output=True, text=True, env={"PATH": "/usr/bin:/bin:/usr/sbin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["uid=65532", "proc=1", "passwd=1", "os=1"], r.stdout


@pytest.fixture(scope="module")
def whole(ubuntu, tmp_path_factory) -> dict[str, Path]:
    """base-passwd and hello as whole packages, no base-files, per arch."""
    tmp, primary, ports = ubuntu
    d = tmp_path_factory.mktemp("ubuntu-whole")
    real = yaml.safe_load((REPOS_DIR / "ubuntu" / "noble.yaml").read_text())
    archive = {"suites": SUITES, "components": ["main", "universe"],
               "keys": [str(primary.key.public_path)]}
    distro = d / "noble-local.yaml"
    distro.write_text(yaml.safe_dump({
        "family": "ubuntu", "format": "deb", "release": "noble", "version": real["version"],
        "merged-usr": True, "os-release": real["os-release"],
        "archives": [{"name": "ubuntu", "archs": ["amd64"], **archive},
                     {"name": "ubuntu-ports", "archs": ["arm64"], **archive}]}))
    # An arch's build names only the archive that serves it.
    mirrors = {"amd64": ["--mirror", f"ubuntu={primary.url}"],
               "arm64": ["--mirror", f"ubuntu-ports={ports.url}"]}
    out = {}
    for name, arch, packages in (("amd64", "amd64", "base-passwd"),
                                 ("arm64", "arm64", "base-passwd"),
                                 ("base-files", "amd64", "base-passwd, base-files")):
        (d / name).mkdir()
        spec = d / name / "image.yaml"
        spec.write_text(f"distro: {distro}\narchs: [{arch}]\n"
                        f"contents:\n  packages: [{packages}]\n")
        out[name] = d / name / "image.tar"
        code, _, err = run(["build", str(spec), "-o", str(out[name]), *mirrors[arch],
                            "--cache-dir", str(d / "cache")], _NoCapsys())
        assert code == 0, err
    return out


class _NoCapsys:
    def readouterr(self) -> tuple[str, str]:
        return "", ""


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_whole_package_image_has_base_files_identity(whole, arch) -> None:
    image = whole[arch]
    assert image_file(image, "usr/lib/os-release") == NOBLE
    assert image_file(image, "etc/os-release") == "../usr/lib/os-release"
    assert image_file(image, "etc/lsb-release") == NOBLE_LSB
    assert image_file(image, "etc/debian_version") == b"trixie/sid\n"


def test_base_files_own_files_win(whole) -> None:
    image = whole["base-files"]
    # This base-files ships both os-release files (no link) and no lsb-release: its
    # files are kept, only what it lacks is added.
    assert image_file(image, "etc/os-release") == \
        b"NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_CODENAME=noble\n"
    assert image_file(image, "usr/lib/os-release") == b"ID=ubuntu\n"
    assert image_file(image, "etc/lsb-release") == NOBLE_LSB


def test_syft_and_trivy_see_ubuntu_and_the_locked_packages(whole, tmp_path) -> None:
    image = whole["amd64"]
    lock = json.loads(image.with_name("image.lock.json").read_text())
    locked = {p["name"]: p["version"] for p in lock["archs"]["amd64"]["packages"]}
    assert locked == {"base-passwd": "3.6.3build1"}
    report = syft(image)
    assert report["distro"]["id"] == "ubuntu" and report["distro"]["versionID"] == "24.04"
    found = syft_packages(report, "deb")
    assert {n: a["version"] for n, a in found.items()} == locked
    assert all("distro=ubuntu-24.04" in a["purl"] for a in found.values()), found
    direct = trivy_image(image, tmp_path / "trivy")
    # Trivy names Ubuntu from /etc/lsb-release alone (its os-release reader skips ID=ubuntu).
    assert direct["Metadata"]["OS"]["Family"] == "ubuntu"
    assert direct["Metadata"]["OS"]["Name"] == "24.04"
    packages = trivy_packages(direct)
    assert {n: trivy_version(p) for n, p in packages.items()} == locked
    assert all("distro=ubuntu-24.04" in p["Identifier"]["PURL"] for p in packages.values())


def test_selecting_a_slice_with_a_mutate_script_is_refused(ubuntu, tmp_path, capsys) -> None:
    tmp, primary, _ = ubuntu
    spec = tmp_path / "image.yaml"
    spec.write_text(f"distro: {tmp / 'release'}\narchs: [amd64]\n"
                    "contents:\n  packages: [hello_greeting]\n")
    code, _, err = run(["lock", str(spec), "--mirror", f"ubuntu={primary.url}",
                        "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 2
    assert "hello.yaml:" in err and "hello_greeting" in err and "mutate" in err
    assert "Traceback" not in err


def _unpack(tar: Path, dest: Path) -> Path:
    layout = dest / "layout"
    layout.mkdir()
    subprocess.run(["tar", "-C", str(layout), "-xf", str(tar)], check=True)
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:latest", str(dest / "bundle")],
                   check=True, capture_output=True)
    return dest / "bundle" / "rootfs"


def test_archive_priority_decides_over_versions(tmp_path, apt_key, capsys) -> None:
    """chisel's rule: a package comes from the highest-priority archive that has it."""
    high = AptRepo(tmp_path / "high", {"noble": [Pkg("tool", "1.0")]}, key=apt_key)
    low = AptRepo(tmp_path / "low", {"noble": [Pkg("tool", "2.0"), Pkg("other", "3.0")]},
                  key=apt_key)
    high.serve()
    low.serve()
    try:
        release = tmp_path / "release"
        (release / "slices").mkdir(parents=True)
        archives = textwrap.dedent("""\
            archives:
              ubuntu: {version: 24.04, suites: [noble], components: [main], priority: 20,
                       public-keys: [test-key]}
              extra: {version: 24.04, suites: [noble], components: [main], priority: 10,
                      public-keys: [test-key]}
            """)
        (release / "chisel.yaml").write_text(chisel_yaml(apt_key, "v3", archives))
        spec = tmp_path / "image.yaml"
        spec.write_text(f"distro: {release}\narchs: [amd64]\n"
                        "contents:\n  packages: [tool, other]\n")
        code, _, err = run(["lock", str(spec), "--mirror", f"ubuntu={high.url}",
                            "--mirror", f"extra={low.url}", "--cache-dir",
                            str(tmp_path / "cache"), "-q"], capsys)
        assert code == 0, err
        lock = json.loads(spec.with_name("image.lock.json").read_text())
        got = {p["name"]: p["version"] for p in lock["archs"]["amd64"]["packages"]}
        assert got == {"tool": "1.0", "other": "3.0"}
    finally:
        high.stop()
        low.stop()

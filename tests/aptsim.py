"""The host's own apt as a reference resolver and archive checker.

- `AptRoot(dir, sources)`: a private apt configuration (own lists, cache,
  empty dpkg status, no host apt.conf.d or sources) to run `apt-get update`
  and `apt-get -s install` against any archive, e.g. the served test archive.
- `host_mirrors()`: archive name -> URL, found as `assemble` finds it
  (assembler.distro.mirror: environment, then the host's deb822 and one-line apt sources).
- `apt_simulate(packages)`: {package: version} that apt installs from the real
  bookworm (+updates, +security) archive with an empty dpkg status and
  Recommends off. The apt root lives in a cache dir
  ($ASSEMBLER_APTSIM_DIR, else $XDG_CACHE_HOME/assembler-aptsim, else
  /tmp/assembler-aptsim) and `apt-get update` runs once per
  APTSIM_MAX_AGE seconds (default 1 day).

No mirror host name appears here: URLs come from the host's apt sources.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEFAULT_SUITES: tuple[tuple[str, str, str], ...] = (
    # (archive name, suite, components)
    ("debian", "bookworm", "main"),
    ("debian", "bookworm-updates", "main"),
    ("debian-security", "bookworm-security", "main"),
)
MAX_AGE = float(os.environ.get("APTSIM_MAX_AGE", 24 * 3600))

_INST = re.compile(r"^Inst (\S+)(?: \[[^\]]*\])? \((\S+) (.*?)(?: \[([^\]]+)\])?\)", re.M)


# --------------------------------------------------------------------------- mirrors


def host_mirrors(release: str = "bookworm") -> dict[str, str]:
    """{"debian": URL/, "debian-security": URL/}, found exactly as `assemble` finds them.

    Reusing assembler.distro.mirror (host apt sources, ASSEMBLER_MIRROR_*) guarantees that
    apt and assemble read the same mirror, so their resolutions are comparable.
    """
    from assembler.distro.definition import load_distro
    from assembler.distro.mirror import resolve_mirrors

    archives = load_distro(f"debian/{release}").archives
    return {name: url + "/" for name, url in resolve_mirrors(archives, {}, {}).items()}


# --------------------------------------------------------------------------- private apt root


class AptRoot:
    """A private apt setup below `root`: own sources, lists, cache, empty status.

    `sources` is deb822 text (written to etc/sources.list.d/test.sources).
    Host configuration (/etc/apt/apt.conf.d, preferences, sources, trusted
    keys) is not read.
    """

    def __init__(self, root: str | os.PathLike[str], sources: str, arch: str = "amd64",
                 extra_conf: str = "") -> None:
        self.root = Path(root)
        self.arch = arch
        etc = self.root / "etc"
        for d in ("etc/apt.conf.d", "etc/preferences.d", "etc/trusted.gpg.d",
                  "etc/sources.list.d", "state/lists/partial",
                  "cache/archives/partial", "log"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (etc / "sources.list.d" / "test.sources").write_text(sources)
        (etc / "sources.list").write_text("")
        status = self.root / "status"
        if not status.exists():
            status.write_text("")
        self.conf = self.root / "apt.conf"
        self.conf.write_text(
            f'Dir "/";\n'
            f'Dir::Etc "{etc}/";\n'
            f'Dir::Etc::main "{self.conf}";\n'
            f'Dir::Etc::parts "{etc}/apt.conf.d";\n'
            f'Dir::Etc::sourcelist "{etc}/sources.list";\n'
            f'Dir::Etc::sourceparts "{etc}/sources.list.d";\n'
            f'Dir::Etc::preferences "{etc}/preferences";\n'
            f'Dir::Etc::preferencesparts "{etc}/preferences.d";\n'
            f'Dir::Etc::trusted "{etc}/trusted.gpg";\n'
            f'Dir::Etc::trustedparts "{etc}/trusted.gpg.d";\n'
            f'Dir::State "{self.root}/state/";\n'
            f'Dir::State::status "{status}";\n'
            f'Dir::Cache "{self.root}/cache/";\n'
            f'Dir::Log "{self.root}/log/";\n'
            f'APT::Architecture "{arch}";\n'
            f'APT::Architectures {{ "{arch}"; }};\n'
            'APT::Sandbox::User "root";\n'
            'APT::Install-Recommends "false";\n'
            'APT::Install-Suggests "false";\n'
            'Acquire::Languages "none";\n'
            'Acquire::Retries "2";\n'
            'Acquire::http::Proxy "DIRECT";\n'
            'Debug::NoLocking "1";\n'
            'Binary::apt-get::Acquire::AllowInsecureRepositories "false";\n' + extra_conf
        )

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("APT_")}
        env.update(APT_CONFIG=str(self.conf), LC_ALL="C.UTF-8", LANG="C.UTF-8")
        env.pop("http_proxy", None)
        return env

    def run(self, *args: str, check: bool = False,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run apt-get with this root's config; stdout+stderr text captured."""
        cmd = ["apt-get", *args]
        cp = subprocess.run(cmd, env=self.env(), capture_output=True, text=True,
                            timeout=timeout)
        if check and cp.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({cp.returncode}):\n"
                               f"{cp.stdout}\n{cp.stderr}")
        return cp

    def update(self, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("update", check=check)

    def simulate(self, packages: Iterable[str], *extra: str,
                 check: bool = True) -> dict[str, str]:
        """{name: version} of the Inst lines of `apt-get -s install packages`."""
        cp = self.run("-s", "-q", "-y", "--no-install-recommends", "install", *extra,
                      *packages, check=check)
        return parse_inst(cp.stdout)

    def lists(self) -> list[Path]:
        return sorted(p for p in (self.root / "state" / "lists").iterdir() if p.is_file())


def parse_inst(output: str) -> dict[str, str]:
    """Parse 'Inst name [old] (version release [arch])' lines into {name: version}."""
    return {m.group(1): m.group(2) for m in _INST.finditer(output)}


def parse_inst_arch(output: str) -> dict[str, tuple[str, str]]:
    """Like parse_inst, with the architecture: {name: (version, arch)}."""
    return {m.group(1): (m.group(2), m.group(4) or "") for m in _INST.finditer(output)}


def signed_by_sources(url: str, suites: Sequence[str], components: Sequence[str],
                      key: str | os.PathLike[str]) -> str:
    """deb822 sources text for one archive."""
    return (f"Types: deb\nURIs: {url}\nSuites: {' '.join(suites)}\n"
            f"Components: {' '.join(components)}\nSigned-By: {key}\n")


# --------------------------------------------------------------------------- real archive


def cache_dir() -> Path:
    env = os.environ.get("ASSEMBLER_APTSIM_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "assembler-aptsim" if xdg else Path("/tmp/assembler-aptsim")


def real_apt_root(arch: str = "amd64",
                  suites: Sequence[tuple[str, str, str]] = DEFAULT_SUITES,
                  refresh: bool = False) -> AptRoot:
    """A private AptRoot for the real archive, updated at most every MAX_AGE seconds."""
    mirrors = host_mirrors()
    stanzas = []
    for archive, suite, comps in suites:
        if archive not in mirrors:
            raise RuntimeError(f"archive {archive!r} not found in the host's apt sources")
        stanzas.append(signed_by_sources(mirrors[archive], [suite], comps.split(),
                                         DEBIAN_KEYRING))
    sources = "\n".join(stanzas)
    tag = hashlib.sha256(f"{arch}\n{sources}".encode()).hexdigest()[:12]
    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    root = AptRoot(base / f"{arch}-{tag}", sources, arch=arch)
    stamp = root.root / "updated"
    with open(base / f".{tag}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fresh = stamp.exists() and time.time() - stamp.stat().st_mtime < MAX_AGE
        if refresh or not fresh:
            root.update(check=True)
            stamp.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return root


def apt_simulate(packages: list[str], arch: str = "amd64",
                 suites: Sequence[tuple[str, str, str]] = DEFAULT_SUITES) -> dict[str, str]:
    """{package: version} apt installs for `packages` on an empty system (no Recommends)."""
    return real_apt_root(arch, suites).simulate(packages)

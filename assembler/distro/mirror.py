"""Where each archive is served from: configuration, never code.

Order (first wins): --mirror NAME=URL, the spec's `mirrors:`, the environment
(ASSEMBLER_MIRROR_<NAME>), the host's apt sources (deb822 *.sources and
one-line *.list), else an error that says how to set one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from assembler.distro.definition import Archive, suite_matches
from assembler.errors import SpecError


@dataclass
class AptSource:
    uri: str
    suites: list[str]
    components: list[str]
    origin: str  # file:line, for messages


def env_var(name: str) -> str:
    return "ASSEMBLER_MIRROR_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def apt_dir() -> Path:
    return Path(os.environ.get("ASSEMBLER_APT_ETC", "/etc/apt"))


def _deb822_sources(path: Path) -> list[AptSource]:
    out: list[AptSource] = []
    text = path.read_text(errors="replace")
    for stanza_start, stanza in _stanzas(text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza:
            if line.startswith("#"):
                continue
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
                continue
            if ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            out.append(AptSource(uri.rstrip("/"), fields.get("suites", "").split(),
                                 fields.get("components", "").split(),
                                 f"{path}:{stanza_start}"))
    return out


def _stanzas(text: str) -> list[tuple[int, list[str]]]:
    stanzas: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 1
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            if not current:
                start = n
            current.append(line)
        elif current:
            stanzas.append((start, current))
            current = []
    if current:
        stanzas.append((start, current))
    return stanzas


def _one_line_sources(path: Path) -> list[AptSource]:
    out: list[AptSource] = []
    for n, raw in enumerate(path.read_text(errors="replace").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        rest = line[4:].strip()
        if rest.startswith("["):
            rest = rest[rest.index("]") + 1:].strip() if "]" in rest else ""
        parts = rest.split()
        if len(parts) >= 2:
            out.append(AptSource(parts[0].rstrip("/"), [parts[1]], parts[2:], f"{path}:{n}"))
    return out


def host_sources(root: Path | None = None) -> list[AptSource]:
    root = root or apt_dir()
    found: list[AptSource] = []
    main = root / "sources.list"
    if main.is_file():
        found += _one_line_sources(main)
    d = root / "sources.list.d"
    if d.is_dir():
        for p in sorted(d.iterdir()):
            if p.suffix == ".list":
                found += _one_line_sources(p)
            elif p.suffix == ".sources":
                found += _deb822_sources(p)
    return found


def _from_host(archive: Archive, sources: list[AptSource]) -> str | None:
    usable = [s for s in sources if s.uri.startswith(("http://", "https://", "file:"))]
    for s in usable:  # an entry listing one of our own suites is the surest match
        if set(s.suites) & set(archive.suites):
            return s.uri
    for s in usable:
        path = urlparse(s.uri).path.rstrip("/")
        if archive.host_path and not path.endswith(archive.host_path):
            continue
        if any(suite_matches(archive, suite) for suite in s.suites):
            return s.uri
    return None


def resolve_mirrors(archives: list[Archive], cli: dict[str, str], spec: dict[str, str],
                    spec_where: str = "the spec") -> dict[str, str]:
    """Map every archive name to a base URL, or fail saying how to configure it."""
    known = {a.name for a in archives}
    for source, given in (("--mirror", cli), (spec_where + " mirrors", spec)):
        for name in given:
            if name not in known:
                raise SpecError(f"{source} names archive {name!r}, which this distro does not "
                                "have; its archives are " + ", ".join(sorted(known)) + ".")
    sources: list[AptSource] | None = None
    out: dict[str, str] = {}
    for a in archives:
        url = cli.get(a.name) or spec.get(a.name) or os.environ.get(env_var(a.name)) or a.url
        if url:
            origin = ("--mirror" if a.name in cli else f"{spec_where} mirrors" if a.name in spec
                      else env_var(a.name) if os.environ.get(env_var(a.name))
                      else "the distro definition")
            check_url(url, f"{origin}: {a.name}")
        if not url:
            if sources is None:
                sources = host_sources()
            url = _from_host(a, sources)
        if not url:
            raise SpecError(
                f"no mirror is configured for archive {a.name!r}. Pass --mirror {a.name}=URL, "
                f"set {env_var(a.name)}=URL, add 'mirrors: {{{a.name}: URL}}' to the spec, "
                f"or add an apt source for it on this host ({apt_dir()}/sources.list.d/).")
        out[a.name] = url.rstrip("/")
    return out


def check_url(url: str, what: str) -> None:
    """A mirror URL must be http(s) with a host, or file: with a path; else say so now
    rather than after retrying a request that can never be made."""
    try:
        parsed = urlparse(url)
        ok = parsed.scheme in ("http", "https") and bool(parsed.hostname) or \
            parsed.scheme == "file" and bool(parsed.path)
        parsed.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        ok = False
    if not ok or any(c.isspace() for c in url):
        raise SpecError(f"{what}={url!r} is not a mirror URL; expected http://HOST/PATH, "
                        "https://HOST/PATH or file:///PATH.")


def parse_mirror_args(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, url = v.partition("=")
        if not sep or not name or not url:
            raise SpecError(f"--mirror {v!r}: expected NAME=URL, for example "
                            "--mirror debian=http://mirror.example/debian.")
        out[name] = url
    return out

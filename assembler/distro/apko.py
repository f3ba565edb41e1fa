"""An apko config's distro, inferred from its repositories (the spec stage reads the rest).

A repository URL that is a definition's default URL plus one of its repository paths
(`<alpine>/v3.22/main`, `<wolfi>/os`) names that definition; one on another host
ending in such a path names it too, the host part being a mirror. The untagged
repositories of that definition and mirror become its components; every other
repository (tagged, local, unknown) is a repository of its own. Nothing matched:
`apko/custom`, the repositories alone. The keyring is trusted for every archive.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assembler.distro.definition import Distro, available_distros, load_distro
from assembler.distro.keyring import key_name
from assembler.errors import SpecError
from assembler.spec.apko import RepoRef
from assembler.spec.document import Repository, Spec

CUSTOM = "apko/custom"


@dataclass
class _Match:
    distro: Distro
    name: str
    archive: str
    base: str
    component: str
    exact: bool


def resolve(spec: Spec) -> None:
    """Fill in an apko spec's distro, components, mirrors and own repositories (once)."""
    extras = spec.apko
    if extras is None or extras.resolved:
        return
    for url, where in extras.key_urls:
        try:
            key_name(url)
        except SpecError as e:
            raise SpecError(f"{where}: {e.message}") from None
    names = _keyring_names(extras.key_paths, [u for u, _ in extras.key_urls])
    defs = _definitions()
    matches = [_match(r.url, defs) for r in extras.repositories]
    pairs = list(zip(matches, extras.repositories, strict=True))
    main = next((m for m, r in pairs if m and not r.tag and m.exact), None) or \
        next((m for m, r in pairs if m and not r.tag), None)
    components: list[str] = []
    own: list[Repository] = []
    for m, r in pairs:
        if main and m and not r.tag and (m.name, m.archive, m.base) == \
                (main.name, main.archive, main.base):
            if m.component not in components:
                components.append(m.component)
            continue
        own.append(_own_repository(r, len(own), main, names, bool(extras.key_paths or
                                                                  extras.key_urls)))
    spec.distro = CUSTOM if main is None else main.name
    if main is not None:
        spec.components = components
        if not main.exact:
            spec.mirrors = {main.archive: main.base, **spec.mirrors}
    spec.repositories = own + spec.repositories
    extras.resolved = True


def trust(spec: Spec, distro: Distro) -> None:
    """Add the keyring to every archive; a definition's key URL whose file the keyring
    provides is not fetched, the keyring's copy is the trusted one."""
    extras = spec.apko
    if extras is None:
        return
    urls = [u for u, _ in extras.key_urls]
    names = _keyring_names(extras.key_paths, urls)
    for a in distro.archives:
        a.key_urls = [u for u in a.key_urls if key_name(u) not in names]
        a.keys = [k for k in a.keys if not (isinstance(k, Path) and k.name in names)]
        a.keys += [Path(p) for p in extras.key_paths]
        a.key_urls += urls


def _keyring_names(paths: list[str], urls: list[str]) -> set[str]:
    return {Path(p).name for p in paths} | {key_name(u) for u in urls}


def _definitions() -> list[tuple[str, Distro]]:
    out = []
    for name in available_distros():
        if name == CUSTOM:
            continue
        d = load_distro(name)
        # Only definitions that name where their repositories are can match a URL.
        if any(a.url for a in d.archives):
            out.append((name, d))
    return out


def _match(url: str, defs: list[tuple[str, Distro]]) -> _Match | None:
    """The definition a repository URL belongs to: its own URL first, else its layout."""
    best: _Match | None = None
    for name, d in defs:
        for a in d.archives:
            for suite in a.suites:
                for comp in a.available_components:
                    path = "/".join(p for p in (suite, comp) if p and p != ".")
                    origin = (a.url or "").rstrip("/")
                    if origin and url == f"{origin}/{path}":
                        return _Match(d, name, a.name, origin, comp, True)
                    if best is None and url.endswith("/" + path):
                        best = _Match(d, name, a.name, url[:-len(path) - 1], comp, False)
    return best


def _own_repository(r: RepoRef, i: int, main: _Match | None, keyring_names: set[str],
                    has_keyring: bool) -> Repository:
    """A repository the definition does not have. The keyring is added to every archive
    (trust); one on the definition's layout is also trusted with the definition's keys."""
    keys: list[Path] = []
    key_urls: list[str] = []
    if main is not None:
        archive = next(a for a in main.distro.archives if a.name == main.archive)
        keys = [k for k in archive.keys if isinstance(k, Path) and k.name not in keyring_names]
        key_urls = [u for u in archive.key_urls if key_name(u) not in keyring_names]
    if not keys and not key_urls and not has_keyring:
        raise SpecError(f"{r.where}: repository {r.url} matches no distro definition, and "
                        "the config has no keyring to verify it with; add its public key "
                        "under contents.keyring.")
    line = r.where.rpartition(":")[2]
    return Repository(name=f"apko-{i + 1}" + (f"-{r.tag}" if r.tag else ""), url=r.url,
                      suites=["."], components=["."], keys=keys, line=int(line),
                      key_urls=key_urls, tag=r.tag)

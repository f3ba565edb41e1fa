"""Alpine repositories as a package universe: APKINDEX fetched, verified, parsed, cached.

A repository is ``<mirror>/<branch>/<repo>/<arch>/`` (``.../v3.21/main/x86_64/``).
Its APKINDEX.tar.gz is fetched every run (it is the root of trust and small),
its RSA signature checked against the distro's keys for that architecture,
and only then parsed; the parse is cached under the sha256 of the verified
file. The index names each package by its control checksum (Q1) but not by a
file hash, so locking downloads the chosen packages once, verifies them
(signature, Q1, datahash) and records their sha256: from then on fetching
works like Debian's, by content address.

Cache writes happen only after every index of a load verified, so a refused
run leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from assembler.alpine.dependency import Dependency
from assembler.alpine.index import parse_index_tar, verify_index
from assembler.alpine.package import ApkPackage, open_apk
from assembler.alpine.record import PackageRecord, iter_stanzas, record_from_fields
from assembler.alpine.signing import gunzip
from assembler.alpine.version import version_key
from assembler.cache import atomic_write, sealed
from assembler.distro.definition import Archive, Distro
from assembler.errors import IntegrityError, MalformedError, NetworkError, SpecError
from assembler.lock.model import LockedPackage
from assembler.packages.universe import Dep, IndexLoader, Package, Universe
from assembler.transport import NotFound, fetch
from assembler.untrusted import index_size_limit, is_sha256

CACHE_FORMAT = "apk-index-2"   # 2: sealed (Cache.store_parsed)
WORKERS = 6

# Spec architecture names (Debian's or Alpine's) -> Alpine's.
APK_ARCH = {
    "amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64",
    "armhf": "armhf", "armv7": "armv7", "i386": "x86", "x86": "x86", "ppc64el": "ppc64le",
    "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
    "loongarch64": "loongarch64",
}  # fmt: skip


def apk_arch(arch: str) -> str:
    try:
        return APK_ARCH[arch]
    except KeyError:
        raise SpecError(f"Alpine has no architecture {arch!r}; it builds for "
                        + ", ".join(sorted(set(APK_ARCH.values()))) + ".") from None


def repository_path(suite: str, component: str) -> str:
    """``v3.21`` + ``main`` -> ``v3.21/main`` (mirror-relative, as in /etc/apk/repositories).
    ``.`` stands for no level: Wolfi's ``os`` has no component, a repository given by its
    full URL (apko's ``repositories``) neither."""
    return "/".join(p for p in (suite.strip("/"), component.strip("/")) if p and p != ".")


def repository_url(base: str, repo: str, *rest: str) -> str:
    return "/".join(p for p in (base.rstrip("/"), repo, *rest) if p)


@dataclass
class Trust:
    """What must vouch for an index or a package of one architecture."""

    keys: dict[str, bytes]  # key file name (as in .SIGN.RSA.<name>) -> PEM
    require_signatures: bool  # packages must carry a signature by one of `keys`


def trust_for(distro: Distro, archive: Archive, arch: str) -> Trust:
    """The keys of `archive` that sign `arch`. A key the distro's ``arch-keys``
    table assigns to other architectures is not trusted for this one; keys the
    table does not mention (a spec's own repository) sign for any."""
    table: dict[str, list[str]] = distro.extra.get("arch-keys") or {}
    assigned = {name for names in table.values() for name in names}
    mine = set(table.get(apk_arch(arch), ()))
    keys = {k.name: k.read_bytes() for k in archive.keys
            if isinstance(k, Path) and (k.name not in assigned or k.name in mine)}
    policy = distro.extra.get("package-signatures", "required")
    if policy not in ("required", "optional"):
        raise SpecError(f"{distro.path}: package-signatures must be 'required' or 'optional', "
                        f"not {policy!r}.")
    return Trust(keys, policy == "required")


def _atoms(values: list[str]) -> list[Dependency]:
    return [Dependency.parse(v) for v in values]


def _dep(d: Dependency) -> Dep:
    return Dep(d.name, d.op or None, d.version or None)


def make_package(rec: PackageRecord, source: dict) -> Package:
    """An index stanza as a format-neutral Package. Dep ops keep apk's spelling
    (``<`` is strict, ``~`` fuzzy, ``><`` a checksum): only the apk solver reads them."""
    depends: list[list[Dep]] = []
    conflicts: list[Dep] = []
    for d in _atoms(rec.depends):
        if d.conflict:
            conflicts.append(_dep(d))
        else:
            depends.append([_dep(d)])
    provides = [(d.name, d.version or None) for d in _atoms(rec.provides)]
    install_if = [_dep(d) for d in _atoms(rec.install_if) if not d.conflict]
    repo = source["repository"]
    return Package(
        name=rec.name, version=rec.version, arch=rec.arch, depends=depends,
        provides=provides, conflicts=conflicts, archive=source["archive"],
        suite=source["suite"],
        filename="/".join(p for p in (repo, source["apk-arch"], rec.filename) if p),
        size=rec.size or 0, source=rec.origin, provider_priority=rec.provider_priority or 0,
        install_if=install_if,
        extra={"checksum": rec.checksum, "repo_rank": source["rank"],
               "tag": source.get("tag", ""),
               "replaces": list(rec.replaces),
               "lock": {"repository": repo, "checksum": rec.checksum}},
    )


def parse_verified(signed: bytes, what: str) -> tuple[str, str, list, list]:
    """A verified index's description, date, compact records and install_if triggers."""
    description, records = parse_index_tar(gunzip(signed, what=what, limit=index_size_limit()),
                                           what=what)
    newest = max((r.build_time or 0 for r in records), default=0)
    try:
        date = datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        raise MalformedError(f"{what}: build time t:{newest} is not a date; refusing the "
                             "index.") from None
    items = [(r.name, " ".join(d.name for d in _atoms(r.provides)),
              "\n".join(r.header_lines())) for r in records]
    triggers = [(r.name, " ".join(d.name for d in _atoms(r.install_if)))
                for r in records if r.install_if]
    return description, date, items, triggers


# The package whose /etc/alpine-release and os-release name the release. Its version in
# the signed index is recorded in the lock: on edge the DESCRIPTION names a snapshot tag
# (v20250108-...) or the last stable tag, never the 3.22.0_alpha20250108 it ships.
RELEASE_PACKAGE = "alpine-release"


def release_package_version(items: list[tuple[str, str, str]]) -> str:
    """alpine-release's version (e.g. 3.21.3-r0) in an index's compact records, or ""."""
    found = [line[2:] for name, _, header in items if name == RELEASE_PACKAGE
             for line in header.split("\n") if line.startswith("V:")]
    return max(found, key=version_key) if found else ""


def _provided_names(text: str) -> list[str]:
    return text.split()


@dataclass
class _Verified:
    """One index that verified in this run, with what to cache once all did."""

    url: str
    raw: bytes
    sha256: str
    signer: str
    description: str
    date: str
    items: list[tuple[str, str, str]]
    triggers: list[tuple[str, str]]  # package name, names its install_if mentions
    writes: list[tuple[Path, bytes]] = field(default_factory=list)


class AlpineIndexLoader(IndexLoader):
    """APKINDEX per repository: fetch, verify with the arch's keys, parse, cache."""

    # -- indexes -------------------------------------------------------------------
    def _pointer(self, url: str) -> Path:
        return self.cache.derived_path("apkindex", hashlib.sha256(url.encode()).hexdigest())

    def _raw(self, url: str) -> bytes:
        if self.offline:
            data = self.cache.pointed_blob(self._pointer(url))
            if data is None:
                raise NetworkError(f"--offline: {url} is not in the cache; run once online.")
            return data
        t = time.perf_counter()
        try:
            data = fetch(url)
        except NotFound:
            raise NetworkError(f"{url} does not exist: is the mirror really an Alpine mirror "
                               "carrying this branch, repository and architecture?") from None
        self.timings.download += time.perf_counter() - t
        return data

    def _index(self, url: str, trust: Trust) -> _Verified:
        self.progress.status(f"fetching {url.rsplit('/', 4)[-4:-1]} APKINDEX")
        raw = self._raw(url)
        t = time.perf_counter()
        signed, signer = verify_index(raw, trust.keys, what=url)
        sha = hashlib.sha256(raw).hexdigest()
        self.timings.verify += time.perf_counter() - t
        parsed_path = self.cache.derived_path("index", f"{CACHE_FORMAT}-{sha}.marshal")
        writes: list[tuple[Path, bytes]] = []
        t = time.perf_counter()
        parsed = self.cache.load_parsed(parsed_path)
        if isinstance(parsed, tuple) and len(parsed) == 4:
            description, date, items, triggers = parsed
            self.timings.load += time.perf_counter() - t
        else:
            t = time.perf_counter()
            description, date, items, triggers = parse_verified(signed, url)
            self.timings.parse += time.perf_counter() - t
            writes.append((parsed_path, sealed((description, date, items, triggers))))
        if not self.offline:
            writes.append((self._pointer(url), sha.encode()))
        return _Verified(url, raw, sha, signer, description, date, items, triggers, writes)

    def load(self, arch: str) -> Universe:
        a = apk_arch(arch)
        sources: list[dict] = []
        universe = Universe(arch, version_key, lambda r: _make(r, sources))
        verified: list[_Verified] = []
        for archive in self.distro.archives:
            trust = trust_for(self.distro, archive, arch)
            if not trust.keys:
                raise SpecError(f"{self.distro.path}: archive {archive.name!r} has no key "
                                f"that signs for {a}; add the publisher's key to its keys.")
            for suite in archive.suites:
                for component in archive.components:
                    repo = repository_path(suite, component)
                    url = repository_url(self.mirrors[archive.name], repo, a,
                                         "APKINDEX.tar.gz")
                    v = self._index(url, trust)
                    verified.append(v)
                    source = {"archive": archive.name, "suite": suite, "repository": repo,
                              "apk-arch": a, "rank": len(sources), "tag": archive.tag}
                    sources.append(source)
                    universe.add_bulk(v.items, len(sources) - 1, _provided_names)
                    for pkg_name, names in v.triggers:
                        for n in names.split():
                            universe.triggers.setdefault(n, set()).add(pkg_name)
                    entry = {
                        "archive": archive.name, "suite": suite, "repository": repo,
                        "date": v.date, "description": v.description,
                        "apkindex-sha256": v.sha256, "signed-by": v.signer,
                    }
                    release = release_package_version(v.items)
                    if release:
                        entry[RELEASE_PACKAGE] = release
                    universe.sources.append(entry)
        # Everything verified: only now does anything reach the cache.
        for v in verified:
            self.cache.put_blob(v.raw, v.sha256, what=v.url)
            for path, data in v.writes:
                atomic_write(path, data)
        self.progress.done()
        return universe

    # -- packages (at lock time) -----------------------------------------------------
    def complete(self, arch: str, packages: list[Package]) -> None:
        """Give every chosen package its file sha256 and datahash, downloading and
        verifying it (signature, control checksum against the index, datahash)."""
        trusts = {a.name: trust_for(self.distro, a, arch) for a in self.distro.archives}
        todo = []
        for p in packages:
            memo = self._memo_path(p.extra["checksum"])
            try:
                known = json.loads(memo.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                known = None
            # a memo is only a shortcut: a damaged one means verifying the package again
            if (isinstance(known, dict) and is_sha256(known.get("sha256"))
                    and isinstance(known.get("datahash"), str)
                    and self.cache.has_blob(known["sha256"])):
                p.sha256 = known["sha256"]
                p.extra["lock"]["datahash"] = known["datahash"]
            else:
                todo.append(p)
        if not todo:
            return
        if self.offline:
            names = ", ".join(p.name for p in todo[:5])
            raise NetworkError(f"--offline: {len(todo)} package(s) were never downloaded "
                               f"({names}{', ...' if len(todo) > 5 else ''}); lock once online.")
        done = [0]

        def one(p: Package) -> None:
            url = repository_url(self.mirrors[p.archive], p.filename)
            data = fetch(url, p.size or None)
            if p.size and len(data) != p.size:
                raise IntegrityError(f"{url}: {len(data)} bytes, but the signed index says "
                                     f"{p.size}; the file was discarded.")
            apk = open_verified(data, trusts[p.archive], p.extra["checksum"], url,
                                self.distro.path)
            sha = hashlib.sha256(data).hexdigest()
            self.cache.put_blob(data, sha, what=url)
            atomic_write(self._memo_path(p.extra["checksum"]),
                         json.dumps({"sha256": sha, "datahash": apk.datahash}).encode())
            p.sha256 = sha
            p.extra["lock"]["datahash"] = apk.datahash
            done[0] += 1
            self.progress.status(f"verifying packages {done[0]}/{len(todo)}")

        with ThreadPoolExecutor(WORKERS) as pool:
            for f in [pool.submit(one, p) for p in sorted(todo, key=lambda p: -p.size)]:
                f.result()
        self.progress.done()

    def _memo_path(self, checksum: str) -> Path:
        # Q1 holds '/' and '+': name the memo after a hash of it instead
        key = hashlib.sha256(checksum.encode()).hexdigest()
        return self.cache.derived_path("apk-verified", key)


def _make(record: tuple, sources: list[dict]) -> Package:
    payload, tag = record
    rec = record_from_fields(next(iter_stanzas(payload)))
    return make_package(rec, sources[tag])


def open_verified(source: bytes | Path, trust: Trust, checksum: str, what: str,
                  policy_from: Path | None = None) -> ApkPackage:
    """Open an .apk the index names: its control must hash to the index's Q1 (which
    with datahash covers every byte), every signature by a trusted key must verify,
    and with `require_signatures` one such signature must exist."""
    apk = open_apk(source, trusted_keys=trust.keys, require_signature=False,
                   expected_checksum=checksum, name=what)
    if trust.require_signatures and apk.signed_by is None:
        by = ", ".join(s.key_name for s in apk.signatures)
        raise IntegrityError(
            f"{what} is not signed" + (f" by a trusted key (only by {by})" if by else "")
            + ", and a signature is required"
            + (f" (package-signatures: required in {policy_from})" if policy_from else "")
            + "; refusing it.")
    return apk


def verify_fetched(path: Path, entry: LockedPackage, trust: Trust) -> ApkPackage:
    """Open a locked .apk from the cache, checking it is the file the lock names."""
    for key in ("checksum", "datahash"):
        if not entry.extra.get(key):
            raise SpecError(f"the lock entry for {entry.name} lacks {key!r}; the "
                            "lockfile is damaged or not for Alpine. Run 'assemble lock --update'.")
    apk = open_verified(path, trust, str(entry.extra["checksum"]), entry.filename)
    if apk.datahash != entry.extra["datahash"]:
        raise IntegrityError(f"{entry.filename}: datahash {apk.datahash} differs from the "
                             f"lock's {entry.extra['datahash']}; refusing it.")
    return apk

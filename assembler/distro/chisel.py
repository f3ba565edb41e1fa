"""A chisel-releases `chisel.yaml` as a distro: format, archives, priorities and keys.

chisel-releases keeps one branch per Ubuntu release: `chisel.yaml` says which
archives packages come from (suites, components, a priority each, the
signing keys inline) and the slice format of `slices/`. `distro:` may name
that file (or the checkout holding it); this turns it into a Distro whose
archives carry the keys as given, checked against their declared IDs.

What differs from chisel: archives that need an Ubuntu Pro subscription
(`pro: ...`) are skipped with a note (we have no Pro credentials), and since
mirrors are never hard-coded, the URL of each archive comes from the user's
mirror configuration like any other archive's; Ubuntu serves arm64 and the
other non-x86 architectures from a separate "ports" archive, so each archive
becomes two, `<name>` for amd64/i386 and `<name>-ports` for the rest.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import pysequoia
import yaml

from assembler.distro.definition import REPOS_DIR, Archive, Distro
from assembler.errors import SpecError
from assembler.spec.document import compose_yaml

FORMATS = ("v1", "v2", "v3")
PRO = ("fips", "fips-updates", "esm-apps", "esm-infra")
PRIMARY_ARCHS = ["amd64", "i386"]
PORTS_ARCHS = ["arm64", "armhf", "ppc64el", "riscv64", "s390x"]


@dataclass
class ChiselRelease:
    path: Path
    format: str
    archives: list[Archive]
    pinnable: set[str]                       # archive names a package may pin
    version: str = ""
    codename: str = ""
    notes: list[str] = field(default_factory=list)
    maintenance: dict[str, str] = field(default_factory=dict)


def find_chisel_yaml(name: str, spec_dir: Path | None) -> Path | None:
    p = Path(name)
    if not p.is_absolute():
        p = (spec_dir or Path.cwd()) / p
    if p.is_dir() and (p / "chisel.yaml").is_file():
        return p / "chisel.yaml"
    if p.name == "chisel.yaml":
        return p
    return None


def _fail(path: Path, msg: str) -> SpecError:
    return SpecError(f"{path}: {msg}")


def _key_id(armor: str) -> str:
    cert = pysequoia.Cert.from_bytes(armor.encode())
    return cert.fingerprint.upper()[-16:]


def read_release(path: Path) -> ChiselRelease:
    _, text = compose_yaml(path, "release definition")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise _fail(path, f"cannot parse release definition ({e}).") from None
    if not isinstance(data, dict):
        raise _fail(path, "a release definition is a mapping (format, archives, public-keys).")
    fmt = data.get("format")
    if fmt not in FORMATS:
        raise _fail(path, f"unknown format {fmt!r} (known: {', '.join(FORMATS)}).")
    for section in ("archives", "v2-archives", "public-keys"):
        if not isinstance(data.get(section) or {}, dict):
            raise _fail(path, f"{section} must be a mapping of names to definitions.")
    archives = dict(data.get("archives") or {})
    v2 = data.get("v2-archives") or {}
    if v2 and fmt != "v1":
        raise _fail(path, "v2-archives is obsolete since format v2.")
    for name in v2:
        if name in archives:
            raise _fail(path, f"archive {name!r} defined twice.")
    archives.update(v2)
    if not archives:
        raise _fail(path, "no archives defined.")
    keys: dict[str, bytes] = {}
    for name, k in (data.get("public-keys") or {}).items():
        if not isinstance(k or {}, dict):
            raise _fail(path, f"public key {name!r} must be a mapping (id, armor).")
        armor = (k or {}).get("armor", "")
        try:
            got = _key_id(armor)
        except Exception:  # pysequoia raises bare errors on bad armor
            raise _fail(path, f"cannot decode public key {name!r}: cannot decode armored "
                              "data.") from None
        want = str((k or {}).get("id", "")).upper()
        if got != want:
            raise _fail(path, f"public key {name!r} armor has incorrect ID: expected "
                              f"{want!r}, got {got!r}.")
        keys[name] = armor.encode()
    release = ChiselRelease(path, fmt, [], set())
    release.maintenance = _maintenance(path, data.get("maintenance"))
    chosen: list[tuple[int, str, dict]] = []
    default = ""
    missing_priority = ""
    has_priority = False
    for name in sorted(archives):
        a = archives[name] or {}
        if not isinstance(a, dict):
            raise _fail(path, f"archive {name!r} must be a mapping (version, suites, "
                              "components, public-keys, priority).")
        if fmt != "v1" and a.get("default"):
            raise _fail(path, f"archive {name!r} has 'default' field which is obsolete since "
                              "format v2.")
        for key in ("version", "suites", "components"):
            if not a.get(key):
                raise _fail(path, f"archive {name!r} missing {key} field.")
        for key in ("suites", "components", "public-keys"):
            if key in a and not isinstance(a[key], list):   # a string is not its letters
                raise _fail(path, f"archive {name!r} {key} must be a list, such as "
                                  f"[{a[key]}], not {a[key]!r}.")
        pro = a.get("pro") or ""
        if pro and pro not in PRO:
            release.notes.append(f"archive {name!r} ignored: invalid pro value {pro!r}.")
            continue
        if a.get("default"):
            if default:
                raise _fail(path, f"more than one default archive: {default}, {name}.")
            default = name
        if not a.get("public-keys"):
            raise _fail(path, f"archive {name!r} missing public-keys field.")
        for k in a["public-keys"]:
            if k not in keys:
                raise _fail(path, f"archive {name!r} refers to undefined public key {k!r}.")
        priority = a.get("priority")
        if priority is None:
            missing_priority = missing_priority or name
        else:
            has_priority = True
            if not isinstance(priority, int) or priority == 0 or not -1000 <= priority <= 1000:
                raise _fail(path, f"archive {name!r} has invalid priority value of {priority}.")
        chosen.append((priority or 0, name, a))
    if (has_priority and missing_priority) or \
            (not has_priority and not default and len(chosen) > 1):
        raise _fail(path, f"archive {missing_priority!r} is missing the priority setting.")
    if default and not has_priority:   # v1's `default`: the others only when pinned
        chosen = [(1 if n == default else -1 - i, n, a) for i, (_, n, a) in enumerate(chosen)]
    seen: dict[int, str] = {}
    for priority, name, _ in chosen:
        if priority in seen:
            a, b = sorted((seen[priority], name))
            raise _fail(path, f"archives {a!r} and {b!r} have the same priority value of "
                              f"{priority}.")
        seen[priority] = name
    release.pinnable = {n for _, n, _ in chosen}
    for priority, name, a in sorted(chosen, key=lambda c: -c[0]):
        if a.get("pro"):
            release.notes.append(f"archive {name!r} (Ubuntu Pro {a['pro']}) skipped: it needs "
                                 "a Pro subscription, which assembler does not use.")
            continue
        if priority < 0:
            release.notes.append(f"archive {name!r} skipped: with a default archive it is only "
                                 "used by packages pinned to it, which assembler does not "
                                 "support.")
            continue
        release.version = release.version or str(a["version"])
        release.codename = release.codename or str(a["suites"][0])
        key_data: list[Path | bytes] = [keys[k] for k in a["public-keys"]]
        for suffix, archs, host_path in (("", PRIMARY_ARCHS, f"/{name}"),
                                         ("-ports", PORTS_ARCHS, f"/{name}-ports")):
            release.archives.append(Archive(
                name=name + suffix, suites=[str(s) for s in a["suites"]],
                components=[str(c) for c in a["components"]],
                available_components=[str(c) for c in a["components"]], keys=key_data,
                host_suite="|".join(str(s) for s in a["suites"]), host_path=host_path,
                archs=list(archs), priority=priority))
    return release


def _maintenance(path: Path, m: object) -> dict[str, str]:
    if not m:
        return {}
    if not isinstance(m, dict):
        raise _fail(path, "cannot parse maintenance: it must be a mapping of dates.")
    for key in ("standard", "end-of-life"):
        if not m.get(key):
            raise _fail(path, f"cannot parse maintenance: {key!r} is unset.")
    out = {}
    for key, value in m.items():
        if key not in ("standard", "expanded", "legacy", "end-of-life"):
            continue
        if not isinstance(value, dt.date):
            try:
                value = dt.date.fromisoformat(str(value))
            except ValueError:
                raise _fail(path, f"cannot parse maintenance: expected format for {key!r} is "
                                  "YYYY-MM-DD.") from None
        out[key] = value.isoformat()
    return out


def chisel_distro(path: Path) -> Distro:
    release = read_release(path)
    # Ubuntu packages are Debian packages: the deb format reads them. Paths stay as
    # the slices write them (chisel merges nothing; base-files' slices make the links).
    extra = {"version": release.version, "chisel-format": release.format,
             "notes": release.notes, "maintenance": release.maintenance}
    known = _ubuntu_definition(release)
    if known is not None:
        # Its version as written ("26.10"): chisel.yaml's unquoted 26.10 reads as 26.1.
        # The file's path, as a string value, is among the files a cached build is
        # keyed by (image/recipe.py), so editing its template rebuilds.
        extra["version"], extra["os-release"], extra["identity-from"] = known
    return Distro(family="ubuntu", release=release.codename, path=path, format="deb",
                  archives=release.archives, merged_usr=False,
                  slices_dir=path.parent / "slices", extra=extra)


def _ubuntu_definition(release: ChiselRelease) -> tuple[str, dict, str] | None:
    """The version, os-release template and path of repos/ubuntu/<codename>.yaml when it
    is this release: chisel.yaml names the release but not its OS identity, which an
    image needs whether or not it takes base-files' slices."""
    if not re.fullmatch(r"[a-z]+", release.codename):
        return None
    own = REPOS_DIR / "ubuntu" / f"{release.codename}.yaml"
    try:
        data = yaml.safe_load(own.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("os-release"), dict):
        return None
    version = str(data.get("version", ""))
    if not _same_version(version, release.version):
        return None
    return version, data["os-release"], str(own)


def _same_version(a: str, b: str) -> bool:
    try:
        return a == b or float(a) == float(b)
    except ValueError:
        return False

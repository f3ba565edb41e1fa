"""apko's lockfile (`apko.lock.json`, format "v1") as the starting point of `assemble lock`.

A migrating user keeps their pins: every package apko's lock names, per
architecture, is preferred at exactly its version while resolving, and the
result must be the same package set. Nothing is taken on trust from the file:
the indexes are fetched and verified as usual, each package is downloaded and
verified (signature, control checksum, datahash), and the lock's `checksum`
(apk's Q1 identity) and data checksum must equal what was verified. Any
difference is an error naming the package; nothing is written then.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assembler.errors import IntegrityError, SpecError
from assembler.lock.model import Lock

APKO_LOCK_VERSION = "v1"
# Our architecture names -> the apk names apko's lock uses (apko's Architecture.ToAPK).
APK_ARCHS = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64",
             "armhf": "armhf", "armv7": "armv7", "i386": "x86", "x86": "x86",
             "ppc64el": "ppc64le", "ppc64le": "ppc64le", "s390x": "s390x",
             "riscv64": "riscv64", "loongarch64": "loongarch64"}


def apk_arch(arch: str, path: Path) -> str:
    if arch not in APK_ARCHS:
        raise SpecError(f"{path}: apko locks name apk architectures; the spec's {arch!r} "
                        "has none.")
    return APK_ARCHS[arch]


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    arch: str          # apk's name: x86_64, aarch64
    checksum: str      # Q1...: the control part's sha1, apk's package identity
    datahash: str      # hex sha256 of the data part ("" when the lock does not say)


def looks_like_apko_lock(path: Path) -> bool:
    """Is the file at `path` apko's lock rather than ours? (apko.yaml's lock and ours
    have the same name, apko.lock.json.)"""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "lockfile-version" not in data and \
        isinstance(data.get("contents"), dict) and "version" in data


def read_pins(path: Path) -> dict[str, list[Pin]]:
    """apk arch -> the packages apko's lock pins for it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SpecError(f"{path}: cannot read apko's lock ({e}).") from None
    if not isinstance(data, dict) or data.get("version") != APKO_LOCK_VERSION:
        got = data.get("version") if isinstance(data, dict) else None
        raise SpecError(f"{path}: apko lock version {got!r} is not one this assembler reads "
                        f"({APKO_LOCK_VERSION!r}); regenerate it with a current apko, or "
                        "delete it and run 'assemble lock'.")
    packages = data.get("contents", {}).get("packages")
    if not isinstance(packages, list):
        raise SpecError(f"{path}: apko's lock has no contents.packages list.")
    out: dict[str, list[Pin]] = {}
    for i, p in enumerate(packages):
        pin = _pin(p, f"{path}: contents.packages[{i}]")
        out.setdefault(pin.arch, []).append(pin)
    return out


def _pin(p: Any, where: str) -> Pin:
    if not isinstance(p, dict):
        raise SpecError(f"{where} is not an object.")
    for key in ("name", "version", "architecture", "checksum"):
        if not isinstance(p.get(key), str) or not p[key]:
            raise SpecError(f"{where} lacks {key!r}.")
    datahash = ""
    data = p.get("data")
    if isinstance(data, dict) and isinstance(data.get("checksum"), str):
        algo, _, value = data["checksum"].partition("-")
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if algo != "sha256" or len(raw) != 32:
            raise SpecError(f"{where}: data checksum {data['checksum']!r} is not "
                            "'sha256-<base64>'.")
        datahash = raw.hex()
    return Pin(p["name"], p["version"], p["architecture"], p["checksum"], datahash)


def preferences(pins: dict[str, list[Pin]], archs: dict[str, str], path: Path
                ) -> dict[str, dict[str, str]]:
    """Spec arch -> {package name: version} to prefer. `archs` maps each spec arch to
    apk's name for it."""
    out = {}
    for arch, apk in archs.items():
        if apk not in pins:
            raise SpecError(f"{path}: apko's lock has no packages for {apk} (it has "
                            + ", ".join(sorted(pins)) + f"), but the spec builds {arch}.")
        out[arch] = {p.name: p.version for p in pins[apk]}
    return out


def check_same(lock: Lock, pins: dict[str, list[Pin]], archs: dict[str, str],
               path: Path) -> None:
    """The new lock holds exactly apko's packages, each the very file apko verified."""
    for arch, apk in archs.items():
        ours = {p.name: p.to_json() for p in lock.archs[arch].packages}
        theirs = {p.name: p for p in pins[apk]}
        problems = []
        for name in sorted(set(theirs) - set(ours)):
            problems.append(f"{name} {theirs[name].version} is pinned but no longer needed")
        for name in sorted(set(ours) - set(theirs)):
            problems.append(f"{name} {ours[name]['version']} is needed but not pinned")
        for name in sorted(set(ours) & set(theirs)):
            if ours[name]["version"] != theirs[name].version:
                problems.append(f"{name} is pinned at {theirs[name].version}, which the "
                                f"repositories no longer offer (they have "
                                f"{ours[name]['version']})")
        if problems:
            raise SpecError(f"{path}: importing apko's lock for {apk} does not give the same "
                            "packages: " + "; ".join(problems) + ". Nothing was written; "
                            "run 'assemble lock --update' to resolve afresh.")
        for name, pin in theirs.items():
            entry = ours[name]
            if entry.get("checksum") != pin.checksum or \
                    (pin.datahash and entry.get("datahash") != pin.datahash):
                raise IntegrityError(
                    f"{path}: {name} {pin.version} for {apk} is not the package apko locked: "
                    f"the repository's has checksum {entry.get('checksum')} and datahash "
                    f"{entry.get('datahash')}, apko's lock says {pin.checksum} and "
                    f"{pin.datahash or '(none)'}. The package was rebuilt or replaced; "
                    "nothing was written.")

"""What changed between two locks (or two images' packages), in terms a reviewer reads.

A lock bump in a pull request is a wall of JSON; this is the summary: packages
added, removed and changed with versions and sizes, grouped over the
architectures where the change is the same, and the indexes whose signed date
moved. `assemble diff` prints it, and so does `assemble lock --update`.
The JSON form is documented in docs/inspect.md.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from assembler.errors import SpecError
from assembler.lock.lockfile import lock_path, read_lock
from assembler.lock.model import Lock

# arch -> package name -> {"version", "arch", "size", "slices", "sha256"}
PackageSets = dict[str, dict[str, dict[str, Any]]]


def is_lock_or_spec(path: Path) -> bool:
    return path.name.endswith((".json", ".yaml", ".yml"))


def load_lock(path: Path) -> Lock:
    """A lock named directly, or the committed lock of a spec."""
    if path.name.endswith((".yaml", ".yml")):
        if not path.is_file():
            raise SpecError(f"{path}: no such spec.")
        return read_lock(lock_path(path))
    return read_lock(path)


def only_arch(a: Lock, b: Lock, arch: str, names: tuple[Path, Path]) -> tuple[Lock, Lock]:
    """Both locks narrowed to `arch` (amd64, or a platform such as linux/amd64)."""
    arch = arch.rpartition("/")[2] if arch.startswith("linux/") else arch
    if arch not in a.archs and arch not in b.archs:
        have = sorted(set(a.archs) | set(b.archs))
        raise SpecError(f"neither {names[0]} nor {names[1]} locks {arch}; they lock "
                        f"{', '.join(have)}.")
    return (replace(a, archs={k: v for k, v in a.archs.items() if k == arch}),
            replace(b, archs={k: v for k, v in b.archs.items() if k == arch}))


def lock_packages(lock: Lock) -> PackageSets:
    return {arch: {p.name: p.to_json() for p in entry.packages}
            for arch, entry in lock.archs.items()}


def _slices(p: dict[str, Any] | None) -> tuple[str, ...]:
    return tuple(p.get("slices") or ()) if p else ()


def diff_packages(a: PackageSets, b: PackageSets) -> dict[str, Any]:
    """Added, removed and changed packages; one entry per change, with the archs it is on."""
    # (kind, name, from version, to version, from slices, to slices) -> archs and sizes
    groups: dict[tuple[str, str, str, str, tuple[str, ...], tuple[str, ...]],
                 dict[str, Any]] = {}
    for arch in sorted(set(a) | set(b)):
        old, new = a.get(arch, {}), b.get(arch, {})
        for name in sorted(set(old) | set(new)):
            x, y = old.get(name), new.get(name)
            if x is not None and y is not None:
                if (x["version"], x.get("sha256"), _slices(x)) == \
                        (y["version"], y.get("sha256"), _slices(y)):
                    continue
                key = ("changed", name, x["version"], y["version"], _slices(x), _slices(y))
                size: int | list[int] = [x["size"], y["size"]]
            elif x is None and y is not None:
                key = ("added", name, "", y["version"], (), _slices(y))
                size = y["size"]
            elif x is not None:
                key = ("removed", name, x["version"], "", _slices(x), ())
                size = x["size"]
            else:
                continue
            g = groups.setdefault(key, {"archs": [], "size": {}})
            g["archs"].append(arch)
            g["size"][arch] = size
    out: dict[str, Any] = {"added": [], "removed": [], "changed": []}
    for (kind, name, was, now, slices_was, slices_now), g in groups.items():
        entry: dict[str, Any] = {"name": name}
        if kind == "changed":
            entry |= {"from": was, "to": now}
            if slices_was != slices_now:
                entry["slices"] = {"from": list(slices_was), "to": list(slices_now)}
        else:
            entry["version"] = now or was
            if slices_was or slices_now:
                entry["slices"] = list(slices_was or slices_now)
        out[kind].append(entry | g)
    for kind in ("added", "removed", "changed"):
        out[kind].sort(key=lambda e: e["name"])
    out["totals"] = {arch: {side: {"packages": len(s.get(arch, {})),
                                   "size": sum(p["size"] for p in s.get(arch, {}).values())}
                            for side, s in (("from", a), ("to", b))}
                     for arch in sorted(set(a) | set(b))}
    return out


def diff_locks(a: Lock, b: Lock) -> dict[str, Any]:
    indexes: list[dict[str, str]] = []
    for arch in sorted(set(a.archs) & set(b.archs)):
        old = {(i.archive, i.suite): i for i in a.archs[arch].indexes}
        for i in b.archs[arch].indexes:
            o = old.get((i.archive, i.suite))
            if o and o.date != i.date and \
                    not any(x["suite"] == i.suite and x["archive"] == i.archive
                            for x in indexes):
                indexes.append({"archive": i.archive, "suite": i.suite, "from": o.date,
                                "to": i.date})
    return {"kind": "locks",
            "archs": {"added": sorted(set(b.archs) - set(a.archs)),
                      "removed": sorted(set(a.archs) - set(b.archs))},
            "indexes": indexes,
            "packages": diff_packages(lock_packages(a), lock_packages(b))}


def size(n: int) -> str:
    n = abs(n)
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _delta(n: int) -> str:
    return ("+" if n >= 0 else "-") + size(n)


def format_packages(d: dict[str, Any], what: str = "packages") -> list[str]:
    out = []
    for arch, t in d["totals"].items():
        f, to = t["from"], t["to"]
        out.append(f"{arch}: {f['packages']} -> {to['packages']} {what}, "
                   f"{size(f['size'])} -> {size(to['size'])} ({_delta(to['size'] - f['size'])})")
    for e in d["added"]:
        out.append(f"  + {e['name']} {e['version']}{_slice_text(e.get('slices'))} "
                   f"({', '.join(e['archs'])}; {size(max(e['size'].values()))})")
    for e in d["removed"]:
        out.append(f"  - {e['name']} {e['version']}{_slice_text(e.get('slices'))} "
                   f"({', '.join(e['archs'])})")
    for e in d["changed"]:
        growth = max((new - old for old, new in e["size"].values()), key=abs)
        sl = e.get("slices")
        slices = f", slices {'+'.join(sl['from']) or 'whole'} -> {'+'.join(sl['to']) or 'whole'}" \
            if sl else ""
        version = f"{e['from']} -> {e['to']}" if e["from"] != e["to"] else \
            f"{e['from']} (rebuilt)"
        out.append(f"  ~ {e['name']} {version}{slices} ({', '.join(e['archs'])}; "
                   f"{_delta(growth)})")
    if not (d["added"] or d["removed"] or d["changed"]):
        out.append(f"  no {what} changed")
    return out


def _slice_text(slices: list[str] | None) -> str:
    return f" [{', '.join(slices)}]" if slices else ""


def format_lock_diff(d: dict[str, Any]) -> str:
    out = []
    for k in ("added", "removed"):
        if d["archs"][k]:
            out.append(f"architectures {k}: {', '.join(d['archs'][k])}")
    for i in d["indexes"]:
        out.append(f"index {i['archive']} {i['suite']}: {i['from']} -> {i['to']}")
    out += format_packages(d["packages"])
    return "\n".join(out) + "\n"

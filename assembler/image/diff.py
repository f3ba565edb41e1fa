"""What changed between two images: layer sizes, packages, and files added, removed, changed.

Images are read with inspect.py, so any OCI archive, layout or docker save
works; platforms are paired by name (or the only one with the only one).
The JSON form is documented in docs/inspect.md.
"""

from __future__ import annotations

from typing import Any

from assembler.image.inspect import FileInfo, Inspection
from assembler.lock.diff import PackageSets, diff_packages, format_packages, size

_COMPARED = ("kind", "mode", "uid", "gid", "size", "sha256", "link")


def _packages(i: Inspection | None, key: str) -> PackageSets:
    if i is None:
        return {}
    sizes = i.package_sizes()
    return {key: {p.name: {"version": p.version, "arch": p.arch, "size": sizes.get(p.name, 0),
                           "slices": p.slices} for p in i.database.packages.values()}}


def _file(f: FileInfo) -> dict[str, Any]:
    return {"path": "/" + f.path, "type": f.kind, "size": f.size}


def _fields(f: FileInfo, keys: list[str]) -> dict[str, Any]:
    out = {}
    for k in keys:
        v = getattr(f, k)
        out["type" if k == "kind" else k] = f"{v:04o}" if k == "mode" else v
    return out


def diff_files(a: dict[str, FileInfo], b: dict[str, FileInfo]) -> dict[str, list]:
    changed = []
    for path in sorted(set(a) & set(b)):
        keys = [k for k in _COMPARED if getattr(a[path], k) != getattr(b[path], k)]
        if keys:
            changed.append({"path": "/" + path, "from": _fields(a[path], keys),
                            "to": _fields(b[path], keys)})
    return {"added": [_file(b[p]) for p in sorted(set(b) - set(a))],
            "removed": [_file(a[p]) for p in sorted(set(a) - set(b))],
            "changed": changed}


def _pairs(a: list[Inspection], b: list[Inspection]) -> list[tuple[Inspection | None,
                                                                   Inspection | None]]:
    if len(a) == 1 and len(b) == 1:
        return [(a[0], b[0])]
    old = {i.platform: i for i in a}
    new = {i.platform: i for i in b}
    return [(old.get(p), new.get(p)) for p in sorted(set(old) | set(new))]


def _layers(i: Inspection | None) -> list[dict[str, Any]]:
    return [{"digest": x.digest, "compressed-size": x.compressed, "size": x.size}
            for x in (i.layers if i else [])]


def diff_images(a: list[Inspection], b: list[Inspection]) -> dict[str, Any]:
    platforms = []
    for x, y in _pairs(a, b):
        either = y or x
        assert either is not None
        key = either.platform or "image"
        platforms.append({
            "platform": either.platform,
            "in": "both" if x and y else "from" if x else "to",
            "layers": {"from": _layers(x), "to": _layers(y)},
            "packages": diff_packages(_packages(x, key), _packages(y, key)),
            "files": diff_files(x.files if x else {}, y.files if y else {}),
        })
    return {"kind": "images", "platforms": platforms}


def format_image_diff(d: dict[str, Any]) -> str:
    out: list[str] = []
    for p in d["platforms"]:
        out.append(f"# {p['platform'] or 'platform unknown'}"
                   + ("" if p["in"] == "both" else f" (only in {p['in']})"))
        for side in ("from", "to"):
            layers = p["layers"][side]
            out.append(f"layers {side}: " + (", ".join(
                f"{x['digest'][:19]} {size(x['compressed-size'])} stored/"
                f"{size(x['size'])}" for x in layers) or "none"))
        out += format_packages(p["packages"])
        f = p["files"]
        out.append(f"files: {len(f['added'])} added, {len(f['removed'])} removed, "
                   f"{len(f['changed'])} changed")
        out += [f"  + {e['path']} ({e['type']}, {size(e['size'])})" for e in f["added"]]
        out += [f"  - {e['path']}" for e in f["removed"]]
        for e in f["changed"]:
            what = ", ".join(f"{k} {_short(e['from'][k])} -> {_short(e['to'][k])}"
                             for k in e["from"])
            out.append(f"  ~ {e['path']}: {what}")
    return "\n".join(out) + "\n"


def _short(v: object) -> str:
    s = str(v)
    return s[:12] if len(s) == 64 else s

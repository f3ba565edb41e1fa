"""The image manifest in chisel's format: jsonwall, zstd-compressed, at <dir>/manifest.wall.

jsonwall is one JSON object per line, a header first, the rest sorted
bytewise; each object's keys in a fixed order (chisel's Go structs), which
is why the lines are built by hand rather than with sort_keys. Tools that
read chisel manifests (scanners, SBOM generators) read ours.

Every path a package put in the image is listed with the slices it came
from; a package taken whole appears as the pseudo-slice `<package>_whole`.
Files the build generated without a slice (passwd, status.d, the manifest
itself) are not listed: no package vouches for them.
"""

from __future__ import annotations

import json
import re

import zstandard

from assembler.lock.model import LockedPackage
from assembler.rootfs.tree import GENERATED, Tree

SCHEMA = "1.0"
FILENAME = "manifest.wall"
WHOLE = "whole"


# A byte of a package path that is not UTF-8 (kept as a surrogate by surrogateescape).
_RAW_BYTE = re.compile("[\udc80-\udcff]")


def _line(fields: list[tuple[str, object]]) -> str:
    # Go's encoding/json escapes <, > and & (HTML safety) and writes each byte that is
    # not UTF-8 as \ufffd; match it byte for byte.
    body = ",".join(f"{json.dumps(k)}:{json.dumps(v, ensure_ascii=False)}"
                    for k, v in fields if v not in (None, "", [], 0))
    body = _RAW_BYTE.sub(lambda _: "\\ufffd", body)
    return ("{" + body + "}").replace("<", "\\u003c").replace(">", "\\u003e") \
        .replace("&", "\\u0026")


def jsonwall(tree: Tree, packages: list[LockedPackage], owners: dict[str, set[str]]) -> bytes:
    """`owners`: image path (as in the tree) -> slice names; whole packages need none."""
    lines: list[str] = []
    sliced = {p.name for p in packages if p.slices}
    slices: set[str] = set()
    for p in packages:
        lines.append(_line([("kind", "package"), ("name", p.name),
                            ("version", p.version), ("sha256", p.sha256),
                            ("arch", p.arch)]))
        for s in p.slices or [WHOLE]:
            slices.add(f"{p.name}_{s}")
    for s in sorted(slices):
        lines.append(_line([("kind", "slice"), ("name", s)]))
    for e in tree.entries():
        if e.origin == GENERATED and e.path not in owners:
            continue
        names = owners.get(e.path)
        if not names:
            if e.origin in sliced or e.origin == GENERATED:
                continue
            names = {f"{e.origin}_{WHOLE}"}
        path = "/" + e.path + ("/" if e.kind == "dir" else "")
        for s in sorted(names):
            lines.append(_line([("kind", "content"), ("slice", s), ("path", path)]))
        is_file = e.kind in ("file", "hardlink")
        lines.append(_line([
            ("kind", "path"), ("path", path), ("mode", f"0{e.mode & 0o1777:o}"),
            ("slices", sorted(names)), ("sha256", e.sha256 if is_file else None),
            ("size", e.size if is_file else None),
            ("link", e.link if e.kind == "symlink" else None)]))
    lines.sort()
    header = _line([("jsonwall", "1.0"), ("schema", SCHEMA)])[:-1] + \
        f',"count":{len(lines) + 1}}}'
    return ("\n".join([header, *lines]) + "\n").encode()


def write_manifest(tree: Tree, directory: str, packages: list[LockedPackage],
                   owners: dict[str, set[str]]) -> None:
    data = jsonwall(tree, packages, owners)
    # Level and no checksum/size fields fixed: the bytes are part of the layer digest.
    blob = zstandard.ZstdCompressor(level=9, write_content_size=True,
                                    write_checksum=False).compress(data)
    tree.add_file(directory.rstrip("/") + "/" + FILENAME, blob, 0o644, replace=True)


MAX_MANIFEST = 256 << 20   # bytes of jsonwall text read back; a bigger one is not read


def read_manifest(blob: bytes) -> tuple[dict[str, tuple[str, str, list[str]]],
                                        dict[str, set[str]]] | None:
    """A manifest read back (for inspect): package -> (version, arch, slice names), and
    path (no leading slash) -> the slices that put it there. None if unreadable."""
    try:
        # A bounded stream read, whatever size the frame header claims.
        with zstandard.ZstdDecompressor().stream_reader(blob) as reader:
            data = reader.read(MAX_MANIFEST + 1)
        if len(data) > MAX_MANIFEST:
            return None
        entries = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
    except (zstandard.ZstdError, ValueError, UnicodeDecodeError):
        return None
    packages: dict[str, tuple[str, str, list[str]]] = {}
    slices: dict[str, list[str]] = {}
    paths: dict[str, set[str]] = {}
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("name", e.get("path")), str):
            continue
        if e.get("kind") == "package":
            packages[e["name"]] = (str(e.get("version", "")), str(e.get("arch", "")), [])
        elif e.get("kind") == "slice":
            package, _, part = e["name"].partition("_")
            slices.setdefault(package, []).append(part)
        elif e.get("kind") == "path":
            paths[e["path"].strip("/")] = {s for s in e.get("slices", []) if isinstance(s, str)}
    for name, parts in slices.items():
        if name in packages:
            packages[name][2].extend(sorted(parts))
    return packages, paths

"""`assemble inspect`: what is inside an image, for any OCI archive, layout or docker save.

The layers are applied the way a container runtime stacks them (whiteouts and
opaque directories included) into a table of final paths, each with its size,
sha256 and the layer that put it there. Package databases in the image say
which package or slice owns each path (pkgdb.py); the configuration says who
runs what. The JSON form is documented in docs/inspect.md.
"""

from __future__ import annotations

import hashlib
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from assembler.errors import AssemblerError
from assembler.image.pkgdb import MAX_FILE, MAX_TOTAL, Database, is_database, read_databases
from assembler.image.reader import (
    OPAQUE,
    WHITEOUT,
    ImageFile,
    LayerStats,
    PlatformImage,
    open_image,
)
from assembler.rootfs.tree import normalize

BIGGEST = 20
_KINDS = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir",
          tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink", tarfile.CHRTYPE: "chardev",
          tarfile.BLKTYPE: "blockdev", tarfile.FIFOTYPE: "fifo", tarfile.CONTTYPE: "file"}


@dataclass
class FileInfo:
    path: str          # relative to the root, no leading slash
    kind: str
    mode: int          # permission bits with setuid/setgid/sticky
    uid: int
    gid: int
    size: int
    sha256: str        # files (and hardlinks: their target's)
    link: str          # symlink target, or hardlinked path
    layer: int         # index of the layer that put it there


@dataclass
class Layer:
    digest: str
    compressed: int    # bytes as stored
    size: int          # bytes of file content in the layer
    entries: int       # tar members, whiteouts included


@dataclass
class Inspection:
    platform: str
    layers: list[Layer]
    files: dict[str, FileInfo]
    database: Database
    config: dict[str, Any] = field(default_factory=dict)

    def owners(self, path: str) -> list[str]:
        return sorted(self.database.owners.get(path, ()))

    def package_sizes(self) -> dict[str, int]:
        """Bytes each package's files (whole or sliced) take in this image."""
        out: dict[str, int] = {}
        for f in self.files.values():
            if f.kind == "file":
                for owner in {o.partition("_")[0] for o in self.owners(f.path)}:
                    out[owner] = out.get(owner, 0) + f.size
        return out


def inspect_image(path: Path | str, arch: str | None = None) -> list[Inspection]:
    """One Inspection per platform image in the file (only `arch`'s if given)."""
    with open_image(path) as image_file:
        return [_inspect(image_file, i) for i in image_file.images_for(arch)]


def _inspect(image_file: ImageFile, image: PlatformImage) -> Inspection:
    files: dict[str, FileInfo] = {}
    contents: dict[str, bytes] = {}
    layers = []
    budget = image_file.budget()   # every file of every layer is listed: bound them together
    for i, (name, digest) in enumerate(image.layers):
        stats = LayerStats()
        size = entries = 0
        opaque: list[str] = []
        for info, f in image_file.layer_members(name, digest, stats, budget):
            entries += 1
            try:
                path = normalize(info.name)
            except AssemblerError:
                continue   # '..': nothing a runtime would put inside the root
            parent, _, base = path.rpartition("/")
            if base == OPAQUE:
                opaque.append(parent)
                continue
            if base.startswith(WHITEOUT):
                _remove(files, contents, (parent + "/" if parent else "") + base[len(WHITEOUT):],
                        below=i)
                continue
            entry = _entry(info, f, path, i, files, contents)
            size += entry.size if entry.kind == "file" else 0
            if entry.kind != "dir":
                _remove(files, contents, path, below=i)
            files[path] = entry
        for directory in opaque:
            for p in [p for p in files if p.startswith(directory + "/") and files[p].layer < i]:
                del files[p]
                contents.pop(p, None)
        layers.append(Layer(digest or stats.digest, stats.compressed, size, entries))
    files.pop("", None)
    return Inspection(image.platform, layers, files, read_databases(contents),
                      image_file.config(image))


def _remove(files: dict[str, FileInfo], contents: dict[str, bytes], path: str,
            below: int) -> None:
    """What a lower layer had at `path` (and under it) is gone."""
    if path in files and files[path].layer < below:
        del files[path]
        contents.pop(path, None)
    prefix = path + "/"
    for p in [p for p in files if p.startswith(prefix) and files[p].layer < below]:
        del files[p]
        contents.pop(p, None)


def _entry(info: tarfile.TarInfo, f: IO[bytes] | None, path: str, layer: int,
           files: dict[str, FileInfo], contents: dict[str, bytes]) -> FileInfo:
    kind = _KINDS.get(info.type, "file")
    sha, size, link = "", 0, ""
    if kind == "file" and f is not None:
        h = hashlib.sha256()
        keep = is_database(path) and info.size <= MAX_FILE and \
            sum(map(len, contents.values())) + info.size <= MAX_TOTAL
        kept = []
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
            if keep:
                kept.append(chunk)
        sha = h.hexdigest()
        if keep:
            contents[path] = b"".join(kept)
        else:
            contents.pop(path, None)
    elif kind == "symlink":
        link = info.linkname
    elif kind == "hardlink":
        try:
            link = normalize(info.linkname)
        except AssemblerError:
            link = info.linkname
        target = files.get(link)
        if target is not None:
            sha, size = target.sha256, target.size
    return FileInfo(path, kind, stat.S_IMODE(info.mode), info.uid, info.gid, size, sha, link,
                    layer)


# -- the report ----------------------------------------------------------------------


def _config(doc: dict[str, Any]) -> dict[str, Any]:
    raw = doc.get("config")
    c: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return {"user": c.get("User") or "", "entrypoint": c.get("Entrypoint") or [],
            "cmd": c.get("Cmd") or [], "env": c.get("Env") or [],
            "working-dir": c.get("WorkingDir") or "", "labels": c.get("Labels") or {},
            "created": doc.get("created", ""), "os": doc.get("os", ""),
            "architecture": doc.get("architecture", "")}


def _mode(m: int) -> str:
    return f"{m:04o}"


def to_json(inspections: list[Inspection], image: str) -> dict[str, Any]:
    return {"image": image, "platforms": [_platform_json(i) for i in inspections]}


def _platform_json(i: Inspection) -> dict[str, Any]:
    sizes = i.package_sizes()
    files = sorted(i.files.values(), key=lambda f: f.path)
    regular = [f for f in files if f.kind == "file"]
    return {
        "platform": i.platform,
        "config": _config(i.config),
        "layers": [{"digest": x.digest, "compressed-size": x.compressed, "size": x.size,
                    "entries": x.entries} for x in i.layers],
        "size": sum(f.size for f in regular),
        "package-databases": ["/" + p for p in i.database.sources],
        "packages": [{"name": p.name, "version": p.version, "arch": p.arch,
                      "installed-size": p.installed_size, "size-in-image": sizes.get(p.name, 0),
                      "slices": p.slices}
                     for p in sorted(i.database.packages.values(), key=lambda p: p.name)],
        "biggest": [{"path": "/" + f.path, "size": f.size, "owners": i.owners(f.path)}
                    for f in sorted(regular, key=lambda f: (-f.size, f.path))[:BIGGEST]],
        "setuid-setgid": [_flagged(i, f) for f in files
                          if f.kind == "file" and f.mode & 0o6000],
        "world-writable": [_flagged(i, f) for f in files
                           if f.kind not in ("symlink", "hardlink") and f.mode & 0o002],
        "unowned": ["/" + f.path for f in regular if not i.owners(f.path)],
        "files": [{"path": "/" + f.path, "type": f.kind, "mode": _mode(f.mode), "uid": f.uid,
                   "gid": f.gid, "size": f.size, "sha256": f.sha256 or None,
                   "link": f.link or None, "layer": f.layer, "owners": i.owners(f.path)}
                  for f in files],
    }


def _flagged(i: Inspection, f: FileInfo) -> dict[str, Any]:
    return {"path": "/" + f.path, "type": f.kind, "mode": _mode(f.mode), "uid": f.uid,
            "gid": f.gid, "owners": i.owners(f.path)}


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def format_text(doc: dict[str, Any], all_files: bool = False) -> str:
    out: list[str] = []
    for p in doc["platforms"]:
        c = p["config"]
        out.append(f"# {doc['image']} ({p['platform'] or 'platform unknown'}): "
                   f"{len(p['files'])} paths, {_mb(p['size'])} of files")
        out.append(f"user: {c['user'] or '(root)'}   entrypoint: {c['entrypoint']}   "
                   f"cmd: {c['cmd']}   working-dir: {c['working-dir'] or '/'}")
        out.append("env: " + " ".join(c["env"]))
        out.append("layers:")
        for n, x in enumerate(p["layers"], 1):
            out.append(f"  {n}. {x['digest'][:19]}  {_mb(x['compressed-size'])} stored, "
                       f"{_mb(x['size'])} of files, {x['entries']} entries")
        dbs = ", ".join(p["package-databases"]) or "none found"
        out.append(f"packages ({len(p['packages'])}; from {dbs}):")
        for pk in p["packages"]:
            slices = f"  slices: {', '.join(pk['slices'])}" if pk["slices"] else ""
            out.append(f"  {pk['name']} {pk['version']} {pk['arch']}  "
                       f"{_mb(pk['size-in-image'])} in image{slices}")
        out.append("biggest files:")
        for f in p["biggest"]:
            out.append(f"  {_mb(f['size']):>9}  {f['path']}  ({', '.join(f['owners']) or '-'})")
        for key in ("setuid-setgid", "world-writable"):
            out.append(f"{key} ({len(p[key])}):")
            out += [f"  {f['mode']} {f['uid']}:{f['gid']}  {f['path']}" for f in p[key]]
        out.append(f"files no package database claims: {len(p['unowned'])}")
        if all_files:
            out.append("files:")
            out += [f"  {f['mode']} {f['uid']}:{f['gid']} {f['size']:>9}  {f['path']}  "
                    f"({', '.join(f['owners']) or '-'})" for f in p["files"]]
    return "\n".join(out) + "\n"

"""An image's recipe: everything one platform's layers depend on, digested before any work.

An unchanged rebuild should cost only verifying the cached layers and writing
the output. The recipe key covers every input that can reach the layer bytes:
the spec file and its lockfile (byte for byte), the distro definition, the
slice catalog when the spec cuts slices, the architecture, the compression,
SOURCE_DATE_EPOCH, and the assembler's own code (its version and a digest of
its sources, so a changed tool never reuses an old result). A hit names the
layer blobs (each re-hashed before use) and what the build learned on the way
(whether a CA bundle exists, its warnings, the layers' history). A spec that copies
local files into the image has no recipe; anything new that reads host files into
the image must be digested here or do the same.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from assembler import __version__
from assembler.cache import Cache, atomic_write
from assembler.distro.definition import Distro
from assembler.image.layer import Layer, compression_params
from assembler.image.layercache import LayerCache, Recorded
from assembler.lock.lockfile import lock_path
from assembler.spec.document import Spec

FORMAT = 2
_PACKAGE = Path(__file__).resolve().parents[1]


@cache
def tool_digest() -> str:
    """sha256 over the assembler's own source files and data (paths and bytes)."""
    h = hashlib.sha256(__version__.encode())
    for path in sorted(p for p in _PACKAGE.rglob("*") if p.is_file()
                       and p.suffix in (".py", ".yaml", ".yml", ".json", ".asc", ".gpg")
                       and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(_PACKAGE)).encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _settings() -> list[list[str]]:
    where = ("ASSEMBLER_MIRROR_", "ASSEMBLER_SNAPSHOT_MIRROR", "ASSEMBLER_TEST_")
    return sorted([k, v] for k, v in os.environ.items()
                  if k.startswith("ASSEMBLER_") and not k.startswith(where))


def _definition_files(distro: Distro) -> list[list[str]]:
    named = {k for a in distro.archives for k in a.keys if isinstance(k, Path)}
    named |= {distro.path.parent / v for v in distro.extra.values()
              if isinstance(v, str) and (distro.path.parent / v).is_file()}
    return [[str(p), hashlib.sha256(p.read_bytes()).hexdigest()] for p in sorted(named)]


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def recipe_key(spec: Spec, distro: Distro, arch: str, compression: str,
               source_date_epoch: int) -> str | None:
    """None when an input cannot be read back, or when the spec copies local files
    (`paths` with `source:`): those are not digested here, so such an image is always
    rebuilt, its unchanged layers still coming from the layer cache."""
    if spec.has_app:
        return None
    try:
        return _recipe_key(spec, distro, arch, compression, source_date_epoch)
    except OSError:
        return None


def _recipe_key(spec: Spec, distro: Distro, arch: str, compression: str,
                source_date_epoch: int) -> str:
    slices = distro.slices_dir is not None and distro.slices_dir.is_dir() \
        and any(r.slice for r in spec.packages)
    doc = {
        "format": FORMAT,
        "tool": tool_digest(),
        "spec": hashlib.sha256(spec.path.read_bytes()).hexdigest(),
        "lock": hashlib.sha256(lock_path(spec.path).read_bytes()).hexdigest(),
        "distro": hashlib.sha256(distro.path.read_bytes()).hexdigest(),
        # What the definition names besides itself: keys, tables such as the
        # alternatives (in a checkout repos/ is not under the package, so tool_digest
        # does not see them).
        "definition-files": _definition_files(distro),
        "name": spec.path.stem,                    # the SBOMs' document name
        # Read from files beside the spec when it was loaded: host content.
        "certificates": [[c["name"], c["content"]] for c in spec.certificates],
        # Limits and switches read from the environment decide whether a build is
        # allowed at all: a result made under one setting must not answer another.
        "environment": _settings(),
        "slices": _tree_digest(distro.slices_dir) if slices and distro.slices_dir else None,
        "arch": arch,
        "compression": compression,
        # The compressor libraries' versions: pinned, but a checkout may hold others.
        "compressor": compression_params(compression),
        "sde": source_date_epoch,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


@dataclass
class Made:
    """What a recipe made: its layers and what the build noticed on the way."""

    layers: list[Layer]
    has_certs: bool
    warnings: list[str]
    history: list[str] | None = None     # the layers' descriptions (layering), if any
    sboms: dict[str, bytes] = field(default_factory=dict)   # format -> document


class Recipes:
    """`images/<key>.json`: the layers (by digest) each recipe made."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.layers = LayerCache(cache)

    def _path(self, key: str) -> Path:
        return self.cache.derived_path("images", key + ".json")

    def get(self, key: str) -> Made | None:
        """The recipe's result if every layer blob is intact; else None (rebuild)."""
        try:
            doc = json.loads(self._path(key).read_bytes())
            found = [Recorded.from_json(d) for d in doc["layers"]]
            history = doc.get("history")
            made = Made([], bool(doc["has_certs"]), [str(w) for w in doc["warnings"]],
                        None if history is None else [str(h) for h in history],
                        {str(f): str(t).encode() for f, t in doc["sboms"].items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        for r in found:
            blob = self.layers.intact(r)
            if blob is None:
                return None
            made.layers.append(Layer(r.digest, r.diff_id, r.size, r.media_type, blob))
        return made

    def put(self, key: str, made: Made) -> None:
        doc = {"layers": [{"digest": x.digest, "diff_id": x.diff_id, "size": x.size,
                           "media_type": x.media_type} for x in made.layers],
               "has_certs": made.has_certs, "warnings": made.warnings,
               "history": made.history,
               "sboms": {f: t.decode() for f, t in made.sboms.items()}}
        with suppress(OSError):   # a cache that takes no new entries: just not remembered
            atomic_write(self._path(key), json.dumps(doc, sort_keys=True).encode())

"""What chosen slices make besides package members: text, symlinks, directories,
and the declarative generators that stand in for chisel's mutate scripts."""

from __future__ import annotations

from pathlib import Path

from assembler.errors import AssemblerError, SpecError
from assembler.lock.model import LockedPackage
from assembler.rootfs.tree import Tree
from assembler.slices.catalog import Catalog, PathSpec, Slice


def catalog_slices(packages: list[LockedPackage], catalog_dir: Path | None,
                    lock_file: str = "the lockfile") -> dict[str, list[Slice]]:
    sliced = [p for p in packages if p.slices]
    if not sliced:
        return {}
    catalog = Catalog.open(catalog_dir) if catalog_dir else Catalog([])
    return {p.name: catalog.chosen([f"{p.name}_{n}" for n in p.slices or ()], lock_file)
            for p in sliced}


def make_paths(tree: Tree, made: list[tuple[Slice, PathSpec]], owners: dict[str, set[str]]
                ) -> dict[str, list[tuple[str, Slice]]]:
    """Create the text/symlink/directory paths of the chosen slices; return the generators."""
    generators: dict[str, list[tuple[str, Slice]]] = {}
    for s, p in made:
        where = s.where(p.line)
        try:
            if p.kind == "text":
                tree.add_file(p.path, (p.text or "").encode(), p.mode or 0o644, origin=s.package,
                              replace=True)
            elif p.kind == "symlink":
                tree.add_symlink(p.path, p.link or "", origin=s.package, replace=True)
            elif p.kind == "dir":
                tree.add_dir(p.path, p.mode or 0o755, origin=s.package)
            elif p.generate:
                generators.setdefault(p.generate, []).append((p.path, s))
        except AssemblerError as e:
            raise SpecError(f"{where}: {s.full}: {e.message}") from None
        owners.setdefault(p.path, set()).add(s.full)
    return generators


def masters(tree: Tree, generated: dict[str, list[tuple[str, Slice]]]) -> dict[str, bytes]:
    """base-passwd's master files, for slices that generate /etc/passwd or /etc/group."""
    out = {}
    for kind in ("passwd", "group"):
        if kind in generated:
            master = f"usr/share/base-passwd/{kind}.master"
            if tree.get(master) is None:
                path, s = generated[kind][0]
                raise SpecError(f"{s.where()}: {s.full} generates {path} from /{master}, "
                                "which no chosen slice provides (add it with until: mutate).")
            out[f"{kind}_master"] = tree.read(master)
    return out

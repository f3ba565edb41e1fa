"""Which tree entries go in which layer.

`single` (the default): every package and generated file in one layer, as
before layering existed, so existing specs keep their digests. `origin`:
packages are grouped by source package (libc6 and libc-bin are glibc's). With
no more groups than the budget, each group is a layer. With more, the
budget-1 largest groups (bytes in the image, counted in powers of two) stand
alone and the small rest share the last package layer, where a bump re-sends
little. Layers are ordered by dependency height, foundations lowest: a group
that needs nothing outside itself (base-files, tzdata, glibc with gcc's
libgcc-s1, its dependency cycle) has height 0, every other group sits one
above the highest group it needs; ties go by name.

Neither the grouping nor the sizes' powers of two move when a version changes
(short of a package doubling or halving), so bumping one package changes only
the layer holding it; and a group's layer holds that group's files only, so the
foundations most images of a family share come out as identical layers that
registries store once.

On top of the packages: one layer of generated files (accounts, CA bundle,
the spec's own paths), then, when the spec copies local content (`source:`),
the app layer, so a new app build changes that layer only. A package's
status.d entry goes with the package, so its scanners' record moves with it.

A package layer's entries carry their own newest mtime as the epoch for
everything in it without one (its directories, status.d), not the image's
SOURCE_DATE_EPOCH, which follows the lock's newest index: a layer's bytes then
depend on its packages alone, and a relock leaves unchanged packages' layers
as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from assembler.image.layer import Compression, Layer, clamp_mtime, write_layer
from assembler.image.layercache import LayerCache
from assembler.progress import Progress
from assembler.rootfs.paths import APP_ORIGIN
from assembler.rootfs.tree import Tree
from assembler.spec.document import Layering

STATUS_DIR = "var/lib/dpkg/status.d/"


@dataclass(frozen=True)
class Member:
    """What layering needs of a locked package."""

    name: str
    source: str
    needed_by: tuple[str, ...]   # packages of the image that depend on it


@dataclass
class LayerPlan:
    """One layer to write: its entries (parents ride along) and how to date them."""

    description: str
    paths: list[str]
    # The epoch entries without an mtime get, and directories' mtime; None: the image's.
    epoch: int | None = None


def plan_layers(tree: Tree, members: Sequence[Member], layering: Layering,
                source_date_epoch: int) -> list[LayerPlan] | None:
    """The layers, bottom first; None for the one-layer image of old (nothing to split)."""
    has_app = any(e.origin == APP_ORIGIN for e in tree.entries())
    if layering.strategy == "single" and not has_app:
        return None
    by_name = {m.name: m for m in members}
    package_paths: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}   # bytes each package puts in the image
    generated: list[str] = []
    app: list[str] = []
    for e in tree.entries():
        owner = e.origin if e.origin in by_name else _status_owner(e.path, by_name)
        if e.origin == APP_ORIGIN:
            app.append(e.path)
        elif owner is not None and layering.strategy == "origin":
            package_paths.setdefault(owner, []).append(e.path)
            sizes[owner] = sizes.get(owner, 0) + e.size
        else:
            generated.append(e.path)
    plans: list[LayerPlan] = []
    if layering.strategy == "origin":
        for names in group_packages(members, layering.budget, sizes):
            paths = [p for n in names for p in package_paths.get(n, [])]
            if paths:
                plans.append(LayerPlan("packages: " + ", ".join(names), sorted(paths),
                                       _content_epoch(tree, paths, source_date_epoch)))
        # Its directories (and the app layer's) are packages' too (usr/ for /usr/bin/java):
        # dated in the tree by the newest package, a bump would change these layers too.
        plans.append(LayerPlan("generated: accounts, certificates, paths", generated,
                               source_date_epoch))
    else:
        plans.append(LayerPlan("packages and generated files", generated))
    if app:
        plans.append(LayerPlan("app: paths with source", app, source_date_epoch))
    return plans


def group_packages(members: Sequence[Member], budget: int, sizes: dict[str, int]
                   ) -> list[list[str]]:
    """Package names per layer, bottom first, at most `budget` layers.

    `sizes` are the bytes each package puts in the image."""
    groups: dict[str, list[Member]] = {}
    for m in members:
        groups.setdefault(m.source or m.name, []).append(m)
    heights = _heights(groups)
    size = {g: sum(sizes.get(m.name, 0) for m in ms) for g, ms in groups.items()}
    own = set(groups)
    if len(groups) > budget:
        # The big groups stand alone; small ones share a layer, where a bump re-sends
        # little. Sizes count in powers of two so a bump's few bytes rarely move a group.
        by_size = sorted(groups, key=lambda g: (-size[g].bit_length(), heights[g], g))
        own = set(by_size[:budget - 1])
    out = [sorted(m.name for m in groups[g])
           for g in sorted(own, key=lambda g: (heights[g], g))]
    rest = sorted(m.name for g in groups if g not in own for m in groups[g])
    if rest:
        out.append(rest)
    return out


def _heights(groups: dict[str, list[Member]]) -> dict[str, int]:
    """Each group's dependency height; a cycle between groups is one level."""
    group_of = {m.name: g for g, ms in groups.items() for m in ms}
    needs: dict[str, set[str]] = {g: set() for g in groups}
    for g, ms in groups.items():
        for m in ms:
            for dependent in m.needed_by:
                dg = group_of.get(dependent)
                if dg is not None and dg != g:
                    needs[dg].add(g)
    reach = {g: _reach(g, needs) for g in groups}
    scc = {g: frozenset({g} | {x for x in reach[g] if g in reach[x]}) for g in groups}
    memo: dict[frozenset[str], int] = {}

    def height(c: frozenset[str]) -> int:
        # Longest path over the condensation (a DAG): groups in one cycle share a level.
        if c not in memo:
            memo[c] = max((height(scc[d]) + 1 for x in sorted(c) for d in sorted(needs[x])
                           if d not in c), default=0)
        return memo[c]

    return {g: height(scc[g]) for g in sorted(groups)}


def _reach(start: str, needs: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for d in needs[todo.pop()]:
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


def _status_owner(path: str, by_name: dict[str, Member]) -> str | None:
    if not path.startswith(STATUS_DIR):
        return None
    name = path[len(STATUS_DIR):].removesuffix(".md5sums")
    return name if name in by_name else None


def _content_epoch(tree: Tree, paths: list[str], source_date_epoch: int) -> int:
    dated = [clamp_mtime(e.mtime, source_date_epoch) for p in paths
             if (e := tree.get(p)) is not None and e.kind != "dir" and e.mtime is not None]
    return max(dated, default=source_date_epoch)


def write_layers(tree: Tree, members: Sequence[Member], layering: Layering, stem: Path,
                 compression: Compression, sde: int, progress: Progress,
                 cache: LayerCache | None = None) -> tuple[list[Layer], list[str] | None]:
    """The image's layers, bottom first, as blobs beside `stem`, and their history texts
    (None for the one layer of old, whose config has always said "assembler")."""
    plans = plan_layers(tree, members, layering, sde)
    if plans is None:
        progress.status(f"writing {stem.name} layer", force=True)
        layer = write_layer(tree, stem.with_name(f"layer-{stem.name}"), compression, sde,
                            cache=cache)
        progress.done()
        return [layer], None
    layers = []
    for i, plan in enumerate(plans):
        progress.status(f"writing {stem.name} layer {i + 1}/{len(plans)}", force=True)
        layers.append(write_layer(tree, stem.with_name(f"layer-{stem.name}-{i}"), compression,
                                  sde if plan.epoch is None else plan.epoch, paths=plan.paths,
                                  dir_mtime=plan.epoch, cache=cache))
    progress.done()
    return layers, [p.description for p in plans]

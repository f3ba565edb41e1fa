"""`assemble build`: lock -> fetch -> unpack -> rootfs -> layer -> OCI image.

Orchestration only: the package format installs into the tree (debian/install.py,
alpine/format.py), rootfs/finish.py does what maintainer scripts would have done,
and the image stage writes layers and documents; nothing from a package runs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from assembler.cache import sweep_temps
from assembler.distro import snapshot
from assembler.distro.definition import Distro
from assembler.distro.mirror import resolve_mirrors
from assembler.errors import AssemblerError, SpecError
from assembler.image.configcheck import check_config
from assembler.image.layer import Compression
from assembler.image.layercache import LayerCache
from assembler.image.layering import Member, write_layers
from assembler.image.oci import (
    DEFAULT_PATH,
    Image,
    ImageConfig,
    Platform,
    manifest_digest,
    platform_for,
    write_image_tar,
    write_oci_dir,
)
from assembler.image.recipe import Made, Recipes, recipe_key
from assembler.lock.lockfile import load_or_lock, lock_path
from assembler.lock.model import Lock
from assembler.options import Options
from assembler.packages.format import PackageFormat, format_for
from assembler.packages.universes import distro_for
from assembler.progress import Progress, info
from assembler.rootfs.accounts import run_as
from assembler.rootfs.certs import BUNDLE
from assembler.rootfs.osrelease import identity_for, write_identity
from assembler.rootfs.tree import Tree
from assembler.sbom.files import FORMATS as SBOM_FORMATS
from assembler.sbom.files import render, write_all
from assembler.slices.catalog import Catalog
from assembler.spec.document import Spec

MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z: what image configs' dates can hold


def source_date_epoch(lock: Lock) -> int:
    """SOURCE_DATE_EPOCH from the environment, else the newest index date in the lock."""
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        try:
            value = int(env)
        except ValueError:
            raise SpecError(f"SOURCE_DATE_EPOCH={env!r} is not a whole number of seconds.") \
                from None
        if not 0 <= value <= MAX_EPOCH:
            raise SpecError(f"SOURCE_DATE_EPOCH={env!r} is out of range (0 to {MAX_EPOCH}, "
                            "the end of year 9999).")
        return value
    dates = lock.dates()
    return int(max(dates).timestamp()) if dates else 0


def _providers(distro: Distro, fmt: PackageFormat, mirrors: dict[str, str],
               options: Options, arch: str) -> Callable[[str], str | None]:
    """What would provide a missing file: a catalog slice, or the package the format's
    own index says ships it. Only consulted when the link check fails."""
    state: dict[str, object] = {}

    def lookup(name: str) -> str | None:
        filename = name.rpartition("/")[2]
        found = []
        if distro.slices_dir is not None and distro.slices_dir.is_dir():
            if "catalog" not in state:
                state["catalog"] = Catalog.open(distro.slices_dir)
            catalog = state["catalog"]
            assert isinstance(catalog, Catalog)
            slices = catalog.providers_of(filename, arch)
            if slices:
                found.append(("slice " if len(slices) == 1 else "slices ")
                             + ", ".join(s.full for s in slices[:3]))
        if "format" not in state:
            state["format"] = fmt.providers(distro, mirrors, options.cache, arch,
                                            options.offline)
        package_of = state["format"]
        if callable(package_of):
            package = package_of(filename)
            if package:
                found.append(package)
        return " or ".join(found) or None
    return lookup


def image_config(spec: Spec, has_certs: bool) -> ImageConfig:
    env = {"PATH": DEFAULT_PATH}
    if has_certs:
        env["SSL_CERT_FILE"] = "/" + BUNDLE
    env.update(spec.environment)
    return ImageConfig(entrypoint=spec.entrypoint, cmd=spec.cmd, env=env,
                       working_dir=spec.work_dir or "",
                       # apko passes run-as through as written
                       user=spec.apko.run_as or "" if spec.apko is not None
                       else run_as(spec.accounts),
                       labels={**spec.annotations, **spec.labels},
                       stop_signal=spec.stop_signal, exposed_ports=spec.ports,
                       volumes=spec.volumes)


@dataclass
class Request:
    """What `assemble build` was asked to make, beside the spec and the environment."""

    output: Path
    format: str = "tar"                   # "tar" (OCI archive + docker load) or "oci-dir"
    tags: Sequence[str] = ()
    compression: Compression = "gzip"
    locked: bool = False                  # refuse to re-resolve a stale or missing lock
    archs: list[str] | None = None        # a subset of the spec's archs
    # SBOM formats written beside the image, one document per platform each ([]: none)
    sboms: Sequence[str] = ("spdx", "cyclonedx")


def build(spec: Spec, options: Options, request: Request) -> str:
    output, fmt, tags = request.output, request.format, request.tags
    compression, archs = request.compression, request.archs
    check_output(output, fmt, spec)
    lock, _ = load_or_lock(spec, options, locked=request.locked)
    distro = distro_for(spec, options)
    package_format = format_for(distro)
    mirrors = resolve_mirrors(distro.archives, options.mirrors, spec.mirrors, str(spec.path))
    snapshot_base = snapshot.snapshot_base(options.snapshot_mirror, spec.snapshot_mirror,
                                           str(spec.path))
    snapshot_archives = {a.name for a in distro.archives
                         if a.url is None and package_format.has_snapshots}
    sde = source_date_epoch(lock)
    progress = Progress(options.quiet)
    wanted_archs = archs or spec.archs
    for a in wanted_archs:
        if a not in lock.archs:
            raise SpecError(f"--arch {a}: the spec builds " + ", ".join(spec.archs) + ".")
        for p in lock.archs[a].packages:
            if p.archive not in mirrors:
                raise SpecError(f"{lock_path(spec.path)}: {p.name} for {a} comes from "
                                f"archive {p.archive!r}, which {spec.distro} does not have "
                                "(it has " + ", ".join(sorted(mirrors)) + "); restore the lock "
                                "from git or run 'assemble lock --update'.")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        # What killed builds left beside the output (never younger than any build).
        name = output.name
        # (.old-<name>-* may hold the only copy of an oci-dir: write_oci_dir recovers it)
        sweep_temps(output.parent, (".assemble-*", f".tmp-*.{name}", f".tmp-{name}-*"))
        workdir = tempfile.TemporaryDirectory(prefix=".assemble-", dir=output.parent)
    except OSError as e:
        raise SpecError(f"-o {output}: cannot write there ({e.strerror or e}).") from None
    images = []
    recipes = Recipes(options.cache)
    documents: dict[str, dict[str, bytes]] = {}

    def fallback_for(arch: str) -> dict:
        return snapshot.fallbacks([i.fields for i in lock.archs[arch].indexes],
                                  snapshot_base, snapshot_archives)

    with workdir as tmp:
        for arch in wanted_archs:
            key = recipe_key(spec, distro, arch, compression, sde)
            made = recipes.get(key) if key else None
            if made is None:
                made = _make(spec, options, lock, arch, mirrors, fallback_for, distro,
                             package_format, progress, Path(tmp), compression, sde)
                if key and all(layer.path.is_relative_to(options.cache.root)
                               for layer in made.layers):
                    recipes.put(key, made)
            else:
                for w in made.warnings:
                    info(f"warning: {w}", options.quiet)
            images.append(_image(spec, distro, arch, made, sde))
            documents[images[-1].platform.tag_suffix] = {
                f: made.sboms[f] for f in request.sboms}
        try:
            if fmt == "oci-dir":
                digest = write_oci_dir(output, images, tags)
            else:
                digest = write_image_tar(output, images, tags)
            write_all(output, {a: d for a, d in documents.items() if d})
        except OSError as e:
            raise AssemblerError(f"writing {output} failed ({e.strerror or e}); nothing was "
                                 "written.") from None
    return digest


def platform_of(distro: Distro, arch: str) -> Platform:
    """The OCI platform of `arch` in this distro: its definition's `platforms` label
    (Alpine's armhf is ARMv6, Debian's ARMv7), else the common table's."""
    label = (distro.extra.get("platforms") or {}).get(arch)
    if not label:
        return platform_for(arch)
    architecture, _, variant = str(label).partition("/")
    return Platform("linux", architecture, variant)


def _os_identity(tree: Tree, distro: Distro, signed_version: str) -> list[str]:
    """Give the image its OS identity; what could not be given is a warning."""
    identity = identity_for(distro, signed_version)
    if identity is None:
        if tree.get("etc/os-release") is not None or tree.get("usr/lib/os-release") is not None:
            return []  # a package (wolfi-baselayout, a custom one) names the OS
        return [f"{distro.path} has no os-release template: the image names no OS, so "
                "scanners match no vulnerabilities against it."]
    write_identity(tree, identity)
    if identity.missing_version:
        return [f"the lock records no signed {distro.release} version (it predates that), so "
                f"{distro.extra['os-release'].get('version-file')} is left out; run "
                "'assemble lock --update' to record it."]
    return []


def _make(spec: Spec, options: Options, lock: Lock, arch: str, mirrors: dict[str, str],
          fallback_for: Callable[[str], dict], distro: Distro, package_format: PackageFormat,
          progress: Progress, tmp: Path, compression: Compression, sde: int) -> Made:
    """Fetch, install, link-check and write one platform's layers."""
    # Here, not at the top: a rebuild whose recipe is cached never downloads or checks
    # anything, and need not import the HTTP stack or the ELF reader.
    from assembler.fetch.packagefiles import Wanted, fetching
    from assembler.linkcheck.check import require_links

    packages = lock.archs[arch].packages
    fallback = fallback_for(arch)
    items = [Wanted(p.name, mirrors[p.archive], p.filename, p.sha256, p.size,
                    fallback.get((p.archive, p.suite)), (p.archive, p.suite) in fallback)
             for p in packages]
    # Each package unpacks as soon as its file is in, while the rest still download.
    with fetching(items, options.cache, options.offline, progress,
                  lambda sha: package_format.reads_package_file(options.cache, sha)) as files:
        tree, warnings = package_format.install(spec, packages, files, distro, arch,
                                                options.cache, progress,
                                                str(lock_path(spec.path)))
    signed = package_format.release_version(distro, lock.archs[arch].indexes)
    warnings += _os_identity(tree, distro, signed)
    for w in warnings:
        info(f"warning: {w}", options.quiet)
    with tree:
        # Before anything is written: an image that cannot start is not an output.
        check_config(tree, spec, spec.environment.get("PATH", DEFAULT_PATH))
        require_links(tree, spec.link_check_ignore, what=f"the {arch} image",
                      providers=_providers(distro, package_format, mirrors, options, arch))
        members = [Member(p.name, p.source or p.name, tuple(p.reason)) for p in packages]
        layers, history = write_layers(tree, members, spec.layering, tmp / arch, compression,
                                       sde, progress, LayerCache(options.cache))
        made = Made(layers, tree.get(BUNDLE) is not None, list(warnings), history)
        # Every format, whatever this build asked for: the recipe cache keeps them, so
        # an unchanged rebuild writes the SBOMs it would have made without the tree.
        made.sboms = render(list(SBOM_FORMATS), spec.path.stem,
                            manifest_digest(_image(spec, distro, arch, made, sde)), arch,
                            package_format, packages, tree, sde)
        return made


def _image(spec: Spec, distro: Distro, arch: str, made: Made, sde: int) -> Image:
    return Image(platform=platform_of(distro, arch), layers=made.layers,
                 config=image_config(spec, made.has_certs), created=sde,
                 annotations=dict(spec.annotations), history=made.history)


def check_output(output: Path, fmt: str, spec: Spec) -> None:
    """Refuse, before any work, an output that would destroy an input or cannot be one."""
    target = output.resolve()
    for what, path in (("spec", spec.path), ("lockfile", lock_path(spec.path))):
        if target == path.resolve():
            raise SpecError(f"-o {output} is the {what}; building would overwrite it. Choose "
                            "another output path (the default is image.tar beside the spec).")
    if fmt == "tar" and output.is_dir():
        raise SpecError(f"-o {output} is a directory; give a file name such as "
                        f"{output / 'image.tar'} (or --format oci-dir for a layout directory).")
    for parent in output.parents:
        if parent.exists():
            if not parent.is_dir():
                raise SpecError(f"-o {output}: {parent} is not a directory.")
            break

"""`assemble build`: lock -> fetch -> unpack -> rootfs -> layer -> OCI image.

Everything an installer's maintainer scripts would do is done declaratively
here (accounts, CA bundle, /tmp, package database); nothing from a package runs.
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from assembler.cache import Cache
from assembler.debian import deb
from assembler.debian.statusd import write_status
from assembler.distro.definition import Distro
from assembler.distro.mirror import resolve_mirrors
from assembler.errors import AssemblerError, SpecError
from assembler.fetch.packagefiles import Wanted, fetch_all
from assembler.fetch.unpacked import SYMLINK, Unpacked, unpacked
from assembler.image.layer import write_layer
from assembler.image.oci import (
    DEFAULT_PATH,
    Image,
    ImageConfig,
    manifest_digest,
    platform_for,
    write_image_tar,
    write_oci_dir,
)
from assembler.linkcheck.check import require_links
from assembler.lock.lockfile import load_or_lock, lock_path
from assembler.packages.universes import Options, distro_for
from assembler.progress import Progress, info
from assembler.rootfs.accounts import run_as, write_accounts
from assembler.rootfs.certs import BUNDLE, write_ca_bundle
from assembler.rootfs.osrelease import identity_for, write_identity
from assembler.rootfs.tree import Tree
from assembler.sbom.files import render, write_all
from assembler.slices.catalog import Catalog, PathSpec, Slice
from assembler.slices.cut import cut, member_path
from assembler.slices.manifest import write_manifest
from assembler.spec.document import Spec

# What a container never reads; copyright files stay (licences travel with binaries).
STRIP = {
    "docs": ["usr/share/doc/*"],
    "man": ["usr/share/man", "usr/share/man/*"],
    "info": ["usr/share/info", "usr/share/info/*"],
    "locales": ["usr/share/locale", "usr/share/locale/*"],
    "lintian": ["usr/share/lintian", "usr/share/lintian/*"],
}
KEEP = ["usr/share/doc/*/copyright"]
# Two cores is the common CI box; more workers only queue behind the tree.
UNPACK_WORKERS = min(4, os.cpu_count() or 1)
MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z: what image configs' dates can hold


def source_date_epoch(lock: dict) -> int:
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
    dates = [i["date"] for a in lock["archs"].values() for i in a.get("indexes", [])]
    if not dates:
        return 0
    return int(max(datetime.strptime(d, "%Y-%m-%dT%H:%M:%S%z") for d in
                   (d.replace("Z", "+0000") for d in dates)).timestamp())


def stripped(path: str, patterns: list[str], symlink: bool = False) -> bool:
    # /usr/share/doc/<pkg> as a symlink (libgcc-s1 -> gcc-12-base) is how a package
    # points at its copyright file: it stays, or the licence is lost with it.
    if symlink and path.startswith("usr/share/doc/") and path.count("/") == 3:
        return False
    return any(fnmatch.fnmatchcase(path, p) for p in patterns) and \
        not any(fnmatch.fnmatchcase(path, k) for k in KEEP)


def _unpack(cache: Cache, package: dict, path: Path) -> Unpacked:
    return unpacked(cache, package["sha256"], lambda: deb.iter_data(path),
                    lambda: {"control": deb.read_control(path)})


def _catalog_slices(packages: list[dict], catalog_dir: Path | None,
                    lock_file: str = "the lockfile") -> dict[str, list[Slice]]:
    sliced = [p for p in packages if p.get("slices")]
    if not sliced:
        return {}
    catalog = Catalog.load(catalog_dir) if catalog_dir else Catalog([])
    return {p["name"]: [catalog.get(f"{p['name']}_{n}", lock_file) for n in p["slices"]]
            for p in sliced}


def build_tree(spec: Spec, packages: list[dict], files: dict[str, Path], merged_usr: bool,
               cache: Cache, progress: Progress, arch: str = "",
               catalog_dir: Path | None = None,
               lock_file: str = "the lockfile") -> tuple[Tree, list[str]]:
    patterns = [p for key in spec.strip for p in STRIP[key]]
    tree = Tree(merged_usr=merged_usr, allow_setuid=spec.allow_setuid)
    warnings: list[str] = []
    controls: dict[str, bytes] = {}
    by_package = _catalog_slices(packages, catalog_dir, lock_file)
    chosen = [s for slices in by_package.values() for s in slices]
    # prefer: a path two packages' slices both claim comes from the preferred one only.
    preferred = {spec_.path: spec_.prefer for s in chosen for spec_ in s.contents.values()
                 if spec_.prefer}
    owners: dict[str, set[str]] = {}
    transient: set[str] = set()
    made: list[tuple[Slice, PathSpec]] = []
    # Unpacking the next packages (decompression and hashing release the GIL)
    # overlaps with adding this one to the tree; the tree sees them in lock order.
    with ThreadPoolExecutor(UNPACK_WORKERS) as pool:
        jobs = [pool.submit(_unpack, cache, p, files[p["sha256"]]) for p in packages]
        for i, (p, job) in enumerate(zip(packages, jobs, strict=True)):
            name = p["name"]
            progress.status(f"unpacking {i + 1}/{len(packages)} {name}")
            got = job.result()
            controls[name] = got.extras["control"]
            store = tree.attach(got.path)
            before = len(tree.warnings)
            if name in by_package:
                c = cut(name, p["version"], by_package[name], got.members, arch)
                for member in c.members:
                    path = member_path(member)
                    if preferred.get(path, name) != name:
                        continue
                    tree.add_member(member, store, name)
                    if path in c.owners:
                        owners[path] = c.owners[path]
                transient |= c.transient
                made += c.made
            else:
                for member in got.members:
                    if patterns and stripped(member[0].lstrip("./").rstrip("/"), patterns,
                                             member[1] == SYMLINK):
                        continue
                    tree.add_member(member, store, name)
            warnings += tree.warnings[before:]
    generated = _make_paths(tree, made, owners)
    for path, slice_ in generated.get("ca-bundle", []):
        write_ca_bundle(tree, path, slice_.package)
    masters = _masters(tree, generated)   # read before until: mutate paths leave
    for path in sorted(transient):
        entry = tree.get(path)
        # Directories stay: something that is kept may live in them.
        if entry is not None and entry.kind != "dir":
            tree.remove(path, missing_ok=True)
    write_status(tree, controls)
    finish_tree(tree, spec, packages, progress, masters)
    # Owners are in package spelling; the manifest speaks the image's (merged /usr).
    image_owners: dict[str, set[str]] = {}
    for path, names in owners.items():
        entry = tree.get(path)
        if entry is not None:
            image_owners.setdefault(entry.path, set()).update(names)
    for path, _ in generated.get("manifest", []):
        write_manifest(tree, path.removesuffix("**"), packages, image_owners)
    return tree, warnings


def build_apk_tree(spec: Spec, packages: list[dict], files: dict[str, Path], distro: Distro,
                   arch: str, progress: Progress) -> tuple[Tree, list[str]]:
    """build_tree for Alpine: .apk data, then apk's database and /etc/apk."""
    from assembler.alpine import install
    from assembler.alpine.repository import apk_arch, trust_for

    patterns = [p for key in spec.strip for p in STRIP[key]]
    tree = Tree(merged_usr=distro.merged_usr, allow_setuid=spec.allow_setuid)
    setup = install.ApkSetup(
        arch=apk_arch(arch),
        trusts={a.name: trust_for(distro, a, arch) for a in distro.archives},
        world=install.world_atoms([r.text or r.name for r in spec.packages]),
        # The spec's mirror or the definition's default, never a --mirror/env one:
        # those are this machine's business and must not change the image digest.
        repositories=apk_repositories(distro, spec))
    warnings = install.install_packages(
        tree, packages, files, setup, lambda n: bool(patterns) and stripped(n, patterns),
        progress)
    finish_tree(tree, spec, packages, progress)
    return tree, warnings


def apk_repositories(distro: Distro, spec: Spec) -> list[str]:
    from assembler.alpine.repository import repository_path

    out = []
    for a in distro.archives:
        base = spec.mirrors.get(a.name) or a.url
        if base:
            out += [f"{base.rstrip('/')}/{repository_path(s, c)}"
                    for s in a.suites for c in a.components]
    return out


def finish_tree(tree: Tree, spec: Spec, packages: list[dict], progress: Progress,
                masters: dict[str, bytes] | None = None) -> None:
    """What every format's maintainer scripts would do after unpacking."""
    # Alpine's ca-certificates-bundle ships the bundle; only generate a missing one.
    if any(p["name"] == "ca-certificates" and not p.get("slices") for p in packages) \
            and tree.get(BUNDLE) is None:
        write_ca_bundle(tree)
    write_accounts(tree, spec.accounts, **(masters or {}))
    apply_paths(tree, spec)
    progress.done()


def _providers(distro: Distro, mirrors: dict[str, str], options: Options, arch: str
               ) -> Callable[[str], str | None]:
    """What would provide a missing file: a catalog slice, or the package the archive's
    Contents index says ships it. Only consulted when the link check fails."""
    state: dict[str, object] = {}

    def lookup(name: str) -> str | None:
        filename = name.rpartition("/")[2]
        found = []
        if distro.slices_dir is not None and distro.slices_dir.is_dir():
            if "catalog" not in state:
                state["catalog"] = Catalog.load(distro.slices_dir)
            slices = state["catalog"].providers_of(filename, arch)  # type: ignore[attr-defined]
            if slices:
                found.append(("slice " if len(slices) == 1 else "slices ")
                             + ", ".join(s.full for s in slices[:3]))
        if distro.family == "debian":
            from assembler.debian.contents import LibraryIndex

            if "index" not in state:
                state["index"] = LibraryIndex(distro, mirrors, options.cache, arch,
                                              options.offline)
            package = state["index"](filename)  # type: ignore[operator]
            if package:
                found.append(package)
        return " or ".join(found) or None
    return lookup


def _make_paths(tree: Tree, made: list[tuple[Slice, PathSpec]], owners: dict[str, set[str]]
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


def _masters(tree: Tree, generated: dict[str, list[tuple[str, Slice]]]) -> dict[str, bytes]:
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


def apply_paths(tree: Tree, spec: Spec) -> None:
    for p in spec.paths:
        where = spec.where(p["line"])
        path, kind = p["path"], p["type"]
        uid, gid = p.get("uid", 0), p.get("gid", 0)
        try:
            if kind == "directory":
                tree.add_dir(path, p.get("mode", 0o755), uid, gid)
            elif kind in ("file", "empty-file"):
                tree.add_file(path, p.get("content", "").encode(), p.get("mode", 0o644), uid, gid,
                              replace=True)
            elif kind == "symlink":
                tree.add_symlink(path, p["target"], uid, gid, replace=True)
            elif kind == "hardlink":
                tree.add_hardlink(path, p["target"])
            elif kind == "permissions":
                entry = tree.get(path)
                if entry is None:
                    raise SpecError(f"{where}: permissions for {path}, which is not in the image.")
                if "mode" in p:
                    entry.mode = p["mode"]
                entry.uid, entry.gid = uid, gid
        except KeyError as e:
            raise SpecError(f"{where}: a {kind} path needs {e.args[0]!r}.") from None
        except AssemblerError as e:
            raise SpecError(f"{where}: {e.message}") from None


def image_config(spec: Spec, has_certs: bool) -> ImageConfig:
    env = {"PATH": DEFAULT_PATH}
    if has_certs:
        env["SSL_CERT_FILE"] = "/" + BUNDLE
    env.update(spec.environment)
    return ImageConfig(entrypoint=spec.entrypoint, cmd=spec.cmd, env=env,
                       working_dir=spec.work_dir or "", user=run_as(spec.accounts),
                       labels=dict(spec.annotations))


def build(spec: Spec, options: Options, output: Path, fmt: str = "tar", tags: list[str] = (),
          compression: str = "gzip", locked: bool = False,
          archs: list[str] | None = None, sboms: list[str] | None = None) -> str:
    """Build the image at `output`, and beside it an SBOM per platform in each of
    `sboms` (default SPDX and CycloneDX; [] for none)."""
    sboms = ["spdx", "cyclonedx"] if sboms is None else sboms
    check_output(output, fmt, spec)
    lock, _ = load_or_lock(spec, options, locked=locked)
    distro = distro_for(spec)
    mirrors = resolve_mirrors(distro.archives, options.mirrors, spec.mirrors, str(spec.path))
    sde = source_date_epoch(lock)
    progress = Progress(options.quiet)
    wanted_archs = archs or spec.archs
    for a in wanted_archs:
        if a not in lock["archs"]:
            raise SpecError(f"--arch {a}: the spec builds " + ", ".join(spec.archs) + ".")
        for p in lock["archs"][a]["packages"]:
            if p["archive"] not in mirrors:
                raise SpecError(f"{lock_path(spec.path)}: {p['name']} for {a} comes from "
                                f"archive {p['archive']!r}, which {spec.distro} does not have "
                                "(it has " + ", ".join(sorted(mirrors)) + "); restore the lock "
                                "from git or run 'assemble lock --update'.")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        workdir = tempfile.TemporaryDirectory(prefix=".assemble-", dir=output.parent)
    except OSError as e:
        raise SpecError(f"-o {output}: cannot write there ({e.strerror or e}).") from None
    images = []
    documents: dict[str, dict[str, bytes]] = {}
    with workdir as tmp:
        for arch in wanted_archs:
            packages = lock["archs"][arch]["packages"]
            items = [Wanted(p["name"], mirrors[p["archive"]], p["filename"], p["sha256"],
                            p["size"]) for p in packages]
            files = fetch_all(items, options.cache, options.offline, progress)
            if distro.family == "alpine":
                tree, warnings = build_apk_tree(spec, packages, files, distro, arch, progress)
            else:
                tree, warnings = build_tree(spec, packages, files, distro.merged_usr,
                                            options.cache, progress, arch, distro.slices_dir,
                                            str(lock_path(spec.path)))
            warnings += _os_identity(tree, distro, lock["archs"][arch].get("indexes", []))
            for w in warnings:
                info(f"warning: {w}", options.quiet)
            with tree:
                # Before anything is written: an image that cannot start is not an output.
                require_links(tree, spec.link_check_ignore, what=f"the {arch} image",
                              providers=_providers(distro, mirrors, options, arch))
                progress.status(f"writing {arch} layer", force=True)
                layer = write_layer(tree, Path(tmp) / f"layer-{arch}", compression, sde)
                progress.done()
                images.append(Image(platform=platform_for(arch), layers=[layer],
                                    config=image_config(spec, tree.get(BUNDLE) is not None),
                                    created=sde, annotations=dict(spec.annotations)))
                documents[arch] = render(sboms, spec.path.stem, manifest_digest(images[-1]),
                                         arch, distro.family, packages, tree, sde)
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


def _os_identity(tree: Tree, distro: Distro, indexes: list[dict]) -> list[str]:
    """Give the image its OS identity; what could not be given is a warning."""
    identity = identity_for(distro, indexes)
    if identity is None:
        return [f"{distro.path} has no os-release template: the image names no OS, so "
                "scanners match no vulnerabilities against it."]
    write_identity(tree, identity)
    if identity.missing_version:
        return [f"the lock records no signed {distro.release} version (it predates that), so "
                f"{distro.extra['os-release'].get('version-file')} is left out; run "
                "'assemble lock --update' to record it."]
    return []


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

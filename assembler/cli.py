"""The `assemble` command line. Every user mistake ends in one paragraph and exit code 2."""

from __future__ import annotations

import argparse
import os
import select
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from assembler import __version__
from assembler.errors import AssemblerError, SpecError
from assembler.progress import info

# Only argparse-level imports up here: `--version`, `--help` and argument mistakes must
# not pay for the pipeline (requests, cryptography, pysequoia, yaml). Each command
# imports what it uses; these names are for the type checker only.
if TYPE_CHECKING:
    from assembler.cache import Cache
    from assembler.lock.model import Lock
    from assembler.options import Options
    from assembler.spec.document import Spec

# push.registry.DEFAULT_CHUNK as text, which argparse converts with _chunk_size
# (tests/test_cli_startup.py checks that the two agree).
DEFAULT_CHUNK_TEXT = "16M"


def _cache(args: argparse.Namespace) -> Cache:
    from assembler.cache import Cache

    cache = Cache(Path(args.cache_dir) if args.cache_dir else None)
    try:
        cache.root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        where = "--cache-dir" if args.cache_dir else "the cache directory"
        raise SpecError(f"{where} {cache.root}: cannot use it ({e.strerror or e}); pass "
                        "--cache-dir DIR or set ASSEMBLER_CACHE to a writable directory."
                        ) from None
    cache.sweep()
    return cache


def _options(args: argparse.Namespace) -> Options:
    from assembler.distro.mirror import check_url, parse_mirror_args
    from assembler.distro.snapshot import parse_timestamp
    from assembler.options import Options

    stamp = getattr(args, "snapshot", None)
    snapshot_mirror = getattr(args, "snapshot_mirror", None)
    if snapshot_mirror is not None:
        check_url(snapshot_mirror, "--snapshot-mirror")   # '' too: never silently unset
    return Options(cache=_cache(args),
                   mirrors=parse_mirror_args(args.mirror or []),
                   offline=getattr(args, "offline", False), quiet=args.quiet,
                   snapshot_mirror=snapshot_mirror,
                   snapshot=parse_timestamp(stamp) if stamp is not None else None)


def _spec_path(args: argparse.Namespace) -> Path:
    return Path(args.spec or "image.yaml")


def cmd_lock(args: argparse.Namespace) -> int:
    from assembler.lock.diff import diff_locks, format_lock_diff
    from assembler.lock.lockfile import load_or_lock, lock_path
    from assembler.spec.document import load_spec

    spec = load_spec(_spec_path(args))
    options = _options(args)
    path = lock_path(spec.path)
    before = _previous_lock(path)
    lock, changed = load_or_lock(spec, options, update=args.update or bool(args.snapshot),
                                 apko_lock=args.from_apko_lock)
    n = sum(len(a.packages) for a in lock.archs.values())
    info(f"{path}: {'written' if changed else 'unchanged'} ({n} packages, "
         f"{', '.join(lock.archs)}).", options.quiet)
    if changed and before is not None and not options.quiet:
        print(format_lock_diff(diff_locks(before, lock)), end="")
    return 0


def _previous_lock(path: Path) -> Lock | None:
    """The lock as it was, for the summary of what an update changed (none if unreadable)."""
    from assembler.lock.lockfile import read_lock

    try:
        return read_lock(path) if path.exists() else None
    except SpecError:
        return None


def _lock_for_query(args: argparse.Namespace) -> tuple[Spec, Lock]:
    from assembler.lock.lockfile import load_or_lock
    from assembler.spec.document import load_spec

    spec = load_spec(_spec_path(args))
    lock, _ = load_or_lock(spec, _options(args))
    return spec, lock


def cmd_show_packages(args: argparse.Namespace) -> int:
    import json

    from assembler.packages.format import format_for
    from assembler.packages.universes import distro_for

    spec, lock = _lock_for_query(args)
    if args.json:
        out = {arch: [p.to_json() for p in entry.packages]
               for arch, entry in lock.archs.items()}
        print(json.dumps(out, indent=2))
        return 0
    noun = format_for(distro_for(spec, quiet=args.quiet)).file_noun
    for arch, entry in lock.archs.items():
        rows = [(p.name, p.version, p.arch, p.suite, str(p.size), ", ".join(p.reason))
                for p in entry.packages]
        head = ("PACKAGE", "VERSION", "ARCH", "SUITE", "SIZE", "WHY")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
        print(f"# {arch}: {len(rows)} packages, "
              f"{sum(p.size for p in entry.packages) / 1e6:.1f} MB of {noun}")
        for r in [head, *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=False)) + "  " + r[5])
    return 0


def cmd_why(args: argparse.Namespace) -> int:
    from assembler.lock.lockfile import why

    spec, lock = _lock_for_query(args)
    arch = args.arch or spec.archs[0]
    if arch not in lock.archs:
        raise SpecError(f"the lock has no architecture {arch!r}; it has "
                        + ", ".join(lock.archs) + ".")
    names = {p.name for p in lock.archs[arch].packages}
    if args.package not in names:
        from assembler.spec.document import did_you_mean

        excluded = lock.archs[arch].excluded
        if args.package in excluded:
            print(f"{args.package} is excluded by the spec; wanted by "
                  + ", ".join(excluded[args.package]))
            return 0
        raise SpecError(f"{args.package!r} is not in the image for {arch}."
                        + did_you_mean(args.package, names))
    for chain in why(lock, arch, args.package):
        print(" -> ".join(chain))
    return 0


def _catalog(args: argparse.Namespace):
    from assembler.distro.definition import load_distro
    from assembler.slices.catalog import Catalog
    from assembler.spec.document import load_spec

    if args.distro:
        distro = load_distro(args.distro, Path.cwd())
    else:
        path = Path(args.spec or "image.yaml")
        if not args.spec and not path.exists():
            raise SpecError(f"{args.command} needs a distro: pass --distro (for example "
                            "--distro debian/bookworm) or --spec SPEC; there is no image.yaml "
                            "here to take it from.")
        spec = load_spec(path)
        from assembler.distro.apko import resolve

        resolve(spec)  # an apko config's distro comes from its repositories
        distro = load_distro(spec.distro, spec.path.parent)
    if distro.slices_dir is None:
        raise SpecError(f"{distro.path}: this distro has no slice catalog.")
    if not distro.slices_dir.is_dir():
        raise SpecError(f"{distro.path}: its slice catalog {distro.slices_dir} is not a "
                        "directory.")
    return Catalog.open(distro.slices_dir)


def cmd_info(args: argparse.Namespace) -> int:
    print(_catalog(args).describe(args.names), end="")
    return 0


def cmd_find(args: argparse.Namespace) -> int:
    found = _catalog(args).find(" ".join(args.query))
    if not found:
        print("no matching slices", file=sys.stderr)
        return 1
    width = max(len(s.full) for s in found)
    for s in found:
        print(f"{s.full:{width}}  {s.file.name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--mirror", action="append", metavar="NAME=URL",
                        help="archive mirror, e.g. debian=http://mirror/debian (repeatable)")
    common.add_argument("--snapshot-mirror", metavar="URL",
                        help="snapshot archive base URL, for locked files the mirror dropped")
    common.add_argument("--cache-dir", help="cache directory (default $XDG_CACHE_HOME/assembler)")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress or info output")
    common.add_argument("--offline", action="store_true", help="use only the cache")

    p = argparse.ArgumentParser(prog="assemble", description="Build minimal, reproducible OCI "
                                "images straight from Debian and Alpine packages.")
    p.add_argument("--version", action="version", version=f"assemble {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    lk = sub.add_parser("lock", parents=[common], help="resolve the spec and write its lockfile")
    lk.add_argument("spec", nargs="?", help="spec file (default image.yaml)")
    lk.add_argument("--update", action="store_true", help="re-resolve even if the lock is fresh")
    lk.add_argument("--from-apko-lock", metavar="FILE", type=Path,
                    help="start from apko's lock (apko.lock.json): the same packages, "
                    "verified again (found by itself where our lock goes)")
    lk.add_argument("--snapshot", metavar="TIMESTAMP",
                    help="resolve against the snapshot archive at TIMESTAMP (YYYYmmddTHHMMSSZ)")
    lk.set_defaults(func=cmd_lock)

    sp = sub.add_parser("show-packages", parents=[common], help="list the locked packages")
    sp.add_argument("spec", nargs="?", help="spec file (default image.yaml)")
    sp.add_argument("--json", action="store_true", help="the package sets as JSON")
    sp.set_defaults(func=cmd_show_packages)

    wy = sub.add_parser("why", parents=[common], help="why a package is in the image")
    wy.add_argument("package", help="a package name, as in show-packages")
    wy.add_argument("--spec", dest="spec", help="spec file (default image.yaml)")
    wy.add_argument("--arch", help="this architecture's lock (default: the spec's first arch)")
    wy.set_defaults(func=cmd_why)
    for name, func, what in (("info", cmd_info, "show slice definitions (PKG or PKG_SLICE)"),
                             ("find", cmd_find, "search the slice catalog")):
        c = sub.add_parser(name, help=what)
        c.add_argument("names" if name == "info" else "query", nargs="+",
                       help="packages or slices (libc6, libc6_libs)" if name == "info"
                       else "words every slice name found must contain")
        c.add_argument("--distro", help="e.g. debian/bookworm (default: the spec's)")
        c.add_argument("--spec", help="spec whose distro to use (default image.yaml)")
        c.set_defaults(func=func)
    _add_build_command(sub, common)
    _add_push_command(sub, common)
    sb = sub.add_parser("sbom", help="write SPDX and CycloneDX SBOMs for a built image",
                        description="Write the SBOMs of an image 'assemble build' made, "
                        "beside it (image.spdx.json, image.cdx.json; one pair per platform "
                        "for multi-arch). TARGET is the image (the spec is image.yaml beside "
                        "it, or --spec) or the spec (the image is image.tar beside it, or "
                        "--image). The image must have been built from the spec's lock.")
    sb.add_argument("target", nargs="?", metavar="IMAGE|SPEC",
                    help="the built image, or its spec (default image.yaml)")
    sb.add_argument("--spec", help="the spec the image was built from")
    sb.add_argument("--image", help="the image built from SPEC")
    sb.add_argument("--format", action="append", choices=["spdx", "cyclonedx"],
                    help="only this format (repeatable; default both)")
    sb.set_defaults(func=cmd_sbom)

    ck = sub.add_parser("check", help="check that an image's ELF files find their interpreter "
                        "and libraries", description="Link-check an image: every dynamically "
                        "linked ELF file must find its interpreter and each DT_NEEDED library "
                        "inside the image. IMAGE is an image tar (assemble build, docker save, "
                        "OCI archive) or an OCI layout directory. Exit 0: all found; 1: "
                        "something is missing; 2: IMAGE is not a readable image.")
    ck.add_argument("image", metavar="IMAGE", help="image tar or OCI layout directory")
    ck.add_argument("--arch", help="check only this platform's image (e.g. arm64)")
    ck.add_argument("--ignore", action="append", default=[], metavar="GLOB",
                    help="do not check ELF files whose absolute path matches GLOB (repeatable)")
    ck.add_argument("-q", "--quiet", action="store_true", help="print only what is missing")
    ck.set_defaults(func=cmd_check)

    df = sub.add_parser("diff", help="what changed between two locks, specs or images",
                        description="Packages added, removed and changed (versions, sizes, "
                        "architectures) between two lockfiles, or two specs' committed locks; "
                        "for two images also their layers and the files added, removed and "
                        "changed.")
    df.add_argument("a", metavar="A", help="the old lockfile, spec or image")
    df.add_argument("b", metavar="B", help="the new one, of the same kind")
    df.add_argument("--arch", help="only this architecture or platform (amd64, linux/arm64)")
    df.add_argument("--json", action="store_true", help="the diff as JSON (docs/inspect.md)")
    df.set_defaults(func=cmd_diff)

    ins = sub.add_parser("inspect", help="show what is inside an image", description="Layers, "
                         "packages (installed size, slices), biggest files, which package or "
                         "slice owns each file, setuid/setgid and world-writable files and the "
                         "config of IMAGE: an image tar (assemble build, docker save, OCI "
                         "archive) or an OCI layout directory.")
    ins.add_argument("image", metavar="IMAGE", help="image tar or OCI layout directory")
    ins.add_argument("--arch", help="only this platform's image (e.g. arm64)")
    ins.add_argument("--json", action="store_true", help="the report as JSON (docs/inspect.md)")
    ins.add_argument("--files", action="store_true", help="list every path with its owners")
    ins.set_defaults(func=cmd_inspect)
    return p


def cmd_check(args: argparse.Namespace) -> int:
    from assembler.image.reader import open_image
    from assembler.linkcheck.check import explain, scan_tree

    with open_image(args.image) as image_file:
        failed = False
        for image in image_file.images_for(args.arch):
            label = f"{args.image} ({image.platform or 'platform unknown'})"
            with image_file.load_tree(image) as tree:
                report = scan_tree(tree, args.ignore)
            for path, why in report.unreadable:
                info(f"warning: {path} looks like ELF but is not readable ({why}); "
                     "not checked.", args.quiet)
            if report.missing:
                failed = True
                print(explain(report.missing, what=label))
                for m in report.missing:
                    print(f"  {m.path}: {m.kind} {m.name}" + (f" ({m.note})" if m.note else ""))
            elif not args.quiet:
                n = report.checked
                print(f"{label}: {n} dynamically linked ELF file{'' if n == 1 else 's'}; every "
                      "interpreter and library needed is in the image.")
    return 1 if failed else 0


def cmd_diff(args: argparse.Namespace) -> int:
    import json

    from assembler.image.diff import diff_images, format_image_diff
    from assembler.image.inspect import inspect_image
    from assembler.image.reader import open_image
    from assembler.lock.diff import (
        diff_locks,
        format_lock_diff,
        is_lock_or_spec,
        load_lock,
        only_arch,
    )

    a, b = Path(args.a), Path(args.b)
    if is_lock_or_spec(a) != is_lock_or_spec(b):
        with open_image(b if is_lock_or_spec(a) else a):   # a file that is no image says so
            pass
        raise SpecError(f"diff compares two locks (or specs) or two images; {a} and {b} are "
                        "one of each.")
    if is_lock_or_spec(a):
        locks = load_lock(a), load_lock(b)
        if args.arch:
            locks = only_arch(*locks, args.arch, (a, b))
        doc = diff_locks(*locks)
        text = format_lock_diff(doc)
    else:
        doc = diff_images(inspect_image(a, args.arch), inspect_image(b, args.arch))
        text = format_image_diff(doc)
    if args.json:
        print(json.dumps({"from": str(a), "to": str(b), **doc}, indent=2, ensure_ascii=False))
    else:
        print(text, end="")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    import json

    from assembler.image.inspect import format_text, inspect_image, to_json

    doc = to_json(inspect_image(args.image, args.arch), str(args.image))
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print(format_text(doc, args.files), end="")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from assembler.build import Request, build
    from assembler.image.oci import parse_tag
    from assembler.spec.document import load_spec

    paths = _build_specs(args.spec)
    if len(paths) > 1 or (args.spec and Path(args.spec[0]).is_dir()):
        return _build_many(paths, args)
    spec = load_spec(paths[0])
    options = _options(args)
    default = "image" if args.format == "oci-dir" else "image.tar"
    output = Path(args.output) if args.output else spec.path.parent / default
    # Without --tag the image is still named, so loaders and umoci can find it.
    tags = args.tag or [f"{spec.path.stem.lower()}:latest"]
    for tag in tags:   # refuse a bad name now, not after the build
        parse_tag(tag)
    if args.digest_file:
        _check_digest_file(args.digest_file)
    if args.push:
        # Only here: the registry client (HTTP, credentials) costs a build that does not push.
        from assembler.push.registry import parse_reference

        # Refuse a bad destination before spending minutes on the build.
        for ref in args.push:
            parse_reference(ref)
        _check_push_files(args)
    digest = build(spec, options, Request(output, args.format, tags, args.compression,
                                          args.locked, args.arch, _sbom_formats(args.sbom)))
    info(f"{output}: {digest}", options.quiet)
    if args.push:
        pushed = _push(output, args.push, args, options.cache)
        if pushed != digest:
            raise AssemblerError(f"{output} holds {pushed}, not the {digest} just built.")
    elif args.digest_file:
        _write_digest_file(args.digest_file, digest)
    print(digest)
    return 0


def _sbom_formats(chosen: list[str] | None) -> list[str]:
    if not chosen:
        return ["spdx", "cyclonedx"]
    if "none" in chosen:
        if len(set(chosen)) > 1:
            raise SpecError("--sbom none cannot be combined with a format.")
        return []
    return sorted(set(chosen), key=["spdx", "cyclonedx"].index)


def cmd_sbom(args: argparse.Namespace) -> int:
    """SBOMs for an image already built: IMAGE (with the spec beside it, or --spec) or
    SPEC (with the image.tar beside it)."""
    from assembler.build import source_date_epoch
    from assembler.distro.definition import load_distro
    from assembler.lock.lockfile import lock_path, read_lock
    from assembler.packages.format import format_for
    from assembler.sbom.files import for_image
    from assembler.spec.document import load_spec

    target = Path(args.target or "image.yaml")
    if target.suffix in (".yaml", ".yml"):
        spec_path, image = target, Path(args.image or target.parent / "image.tar")
    else:
        image = target
        spec_path = Path(args.spec) if args.spec else target.parent / "image.yaml"
    if not image.exists():
        raise SpecError(f"{image} does not exist; build it first ('assemble build "
                        f"{spec_path}'), or name it with --image.")
    spec = load_spec(spec_path)
    lock = read_lock(lock_path(spec.path))
    distro = load_distro(spec.distro, spec.path.parent)
    formats = _sbom_formats(args.format) or ["spdx", "cyclonedx"]
    for path in for_image(image, lock, format_for(distro), spec.path.stem, formats,
                          source_date_epoch(lock)):
        print(path)
    return 0


def _build_specs(words: list[str]) -> list[Path]:
    """The spec files named: files as given, a directory's *.yaml in name order."""
    paths: list[Path] = []
    for word in words or ["image.yaml"]:
        path = Path(word)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                raise SpecError(f"{path} is a directory without spec files (*.yaml).")
            paths += found
        else:
            paths.append(path)
    return paths


def _build_many(paths: list[Path], args: argparse.Namespace) -> int:
    """Several specs in one process: one image each, named after its spec."""
    from assembler.build import Request, build
    from assembler.packages.universes import shared_indexes
    from assembler.spec.document import load_spec

    for flag, value in (("--tag", args.tag), ("--push", args.push),
                        ("--digest-file", args.digest_file)):
        if value:
            raise SpecError(f"{flag} names one image, and {len(paths)} specs were given; "
                            "build that spec on its own to use it.")
    outdir = Path(args.output) if args.output else None
    if outdir is not None and outdir.exists() and not outdir.is_dir():
        raise SpecError(f"-o {outdir}: with several specs, -o names a directory (each "
                        "image is written there as SPEC-NAME.tar).")
    specs = [load_spec(p) for p in paths]   # every spec is readable before any build starts
    options = _options(args)
    suffix = "" if args.format == "oci-dir" else ".tar"
    outputs = [(outdir or s.path.parent) / (s.path.stem + suffix) for s in specs]
    clash = sorted({str(o) for o in outputs if outputs.count(o) > 1})
    if clash:
        raise SpecError(f"two specs would both write {clash[0]}; build them into "
                        "different directories.")
    with shared_indexes():
        for spec, output in zip(specs, outputs, strict=True):
            digest = build(spec, options, Request(output, args.format,
                                                  [f"{spec.path.stem.lower()}:latest"],
                                                  args.compression, args.locked, args.arch,
                                                  _sbom_formats(args.sbom)))
            print(f"{digest}  {output}")
    return 0


def _check_digest_file(path: str) -> None:
    """Before building or pushing: will the digest file be writable afterwards?"""
    import tempfile

    target = Path(path)
    try:
        if target.is_dir():
            raise IsADirectoryError(path)
        # A real probe: access() says yes to root where the kernel says no (/proc).
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".digest-probe-"):
            pass
    except OSError:
        raise SpecError(f"--digest-file {path}: cannot write there (a directory, or a missing "
                        "or read-only parent); nothing was built or pushed.") from None


def _write_digest_file(path: str, digest: str) -> None:
    # No newline, like skopeo's and buildah's --digestfile.
    try:
        Path(path).write_text(digest)
    except OSError as e:
        raise AssemblerError(f"cannot write the digest file {path}: {e.strerror}.") from None


def _chunk_size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    try:
        n = int(t[:-1]) * units[t[-1]] if t and t[-1] in units else int(t)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 16M, 512K or 1048576")
    return n


def _check_push_files(args: argparse.Namespace) -> None:
    """--ca-cert and --authfile name usable files: checked before a build or upload."""
    if args.ca_cert:
        import ssl

        if not Path(args.ca_cert).is_file():
            raise SpecError(f"--ca-cert {args.ca_cert}: no such file.")
        try:
            ssl.create_default_context(cafile=args.ca_cert)
        except (ssl.SSLError, ValueError):
            raise SpecError(f"--ca-cert {args.ca_cert}: not a PEM certificate file.") from None
    if args.authfile and not Path(args.authfile).is_file():
        raise SpecError(f"--authfile {args.authfile}: no such file (log in with 'docker login' "
                        "or 'podman login', or leave --authfile out).")
    if args.digest_file:
        _check_digest_file(args.digest_file)


def _push(image: Path, refs: list[str], args: argparse.Namespace, cache: Cache) -> str:
    from assembler.progress import Progress
    from assembler.push.registry import PushOptions, push

    options = PushOptions(plain_http=args.plain_http, ca_cert=args.ca_cert,
                          authfile=args.authfile, chunk_size=args.chunk_size,
                          hints_path=cache.root / "registry" / "mount-hints.json")
    _check_push_files(args)
    progress = Progress(args.quiet)

    def log(text: str) -> None:
        progress.done()
        info(text, args.quiet)

    from assembler.sbom.files import attachments

    sboms = attachments(image)
    try:
        result = push(image, refs, options, log=log, progress=progress.status,
                      attachments=sboms)
    finally:
        progress.done()
    s = result.stats
    info(f"blobs: {s.uploaded} uploaded ({s.uploaded_bytes / 1e6:.1f} MB), {s.mounted} "
         f"mounted, {s.existing} already there; {s.manifests} manifests", args.quiet)
    if args.digest_file:
        _write_digest_file(args.digest_file, result.digest)
    return result.digest


def cmd_push(args: argparse.Namespace) -> int:
    words = list(args.args)
    first = words[0]
    # The first word is the image (or spec) when it names something on disk, or
    # looks like a path: a reference never ends in .tar/.yaml or starts with / or ./.
    looks_like_path = first.endswith((".tar", ".yaml", ".yml")) or \
        first.startswith(("/", "./", "../"))
    if Path(first).exists() or looks_like_path:
        if len(words) == 1:
            raise SpecError(f"{first} is an image or spec; push also needs a destination, "
                            f"e.g. 'assemble push {first} registry.example/app:1.0'.")
        source = Path(words.pop(0))
        if not source.exists():
            raise SpecError(f"{source} does not exist; build the image first "
                            "('assemble build -o FILE'; the default output is image.tar).")
    else:
        source = Path("image.tar")
    if source.suffix in (".yaml", ".yml"):
        # A spec: push what 'assemble build SPEC' wrote beside it by default.
        source = source.parent / "image.tar"
        if not source.exists():
            raise SpecError(f"{source} does not exist; build it first with 'assemble build "
                            f"{args.args[0]}' (or use 'assemble build --push REF').")
    options = _options(args)
    print(_push(source, words, args, options.cache))
    return 0


def _add_push_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plain-http", action="store_true",
                   help="talk HTTP, not HTTPS, to the registry (a local test registry)")
    p.add_argument("--ca-cert", metavar="FILE", help="trust this CA (PEM) for the registry")
    p.add_argument("--authfile", metavar="FILE",
                   help="registry credentials file (default: REGISTRY_AUTH_FILE, podman's "
                   "auth.json, ~/.docker/config.json)")
    p.add_argument("--digest-file", metavar="FILE", help="write the image digest to FILE")
    p.add_argument("--chunk-size", type=_chunk_size, default=DEFAULT_CHUNK_TEXT, metavar="SIZE",
                   help="upload larger blobs in chunks of SIZE (default 16M)")


def _add_push_command(sub, common) -> None:
    p = sub.add_parser("push", parents=[common], help="push a built image to registries",
                       usage="assemble push [options] [IMAGE | SPEC] REF [REF ...]",
                       description="Push an image (the tar or OCI directory 'assemble build' "
                       "wrote; default image.tar) to one or more references. A SPEC pushes "
                       "the image.tar beside it.")
    p.add_argument("args", nargs="+", metavar="ARG",
                   help="the image, then destinations like registry.example/app:1.0")
    _add_push_options(p)
    p.set_defaults(func=cmd_push)


def _add_build_command(sub, common) -> None:
    b = sub.add_parser("build", parents=[common], help="build the image from the spec and lock")
    b.add_argument("spec", nargs="*", metavar="SPEC",
                   help="spec file (default image.yaml); several, or a directory of them, "
                   "build one image each (SPEC-NAME.tar) in one process")
    b.add_argument("-o", "--output", help="output path (default image.tar beside the spec; "
                   "with several specs a directory, default beside each spec)")
    b.add_argument("--format", choices=["tar", "oci-dir"], default="tar",
                   help="an OCI archive (default) or an OCI layout directory")
    b.add_argument("--tag", action="append", help="docker RepoTags entry (repeatable)")
    b.add_argument("--compression", choices=["gzip", "zstd", "none"], default="gzip",
                   help="of the layers (default gzip)")
    b.add_argument("--locked", action="store_true",
                   help="fail if the lockfile is missing or stale (like cargo --locked)")
    b.add_argument("--arch", action="append", help="build only this arch (repeatable)")
    b.add_argument("--push", action="append", metavar="REF",
                   help="push the built image to REF (repeatable), its SBOMs attached")
    b.add_argument("--sbom", action="append", choices=["spdx", "cyclonedx", "none"],
                   help="SBOM formats to write beside the image (repeatable; default spdx "
                   "and cyclonedx; none for no SBOM)")
    _add_push_options(b)
    b.set_defaults(func=cmd_build)


def _stdout_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (poll reports an error)."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poll.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("RUST_BACKTRACE", "0")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AssemblerError as e:
        print(f"assemble: error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:
        # The reader of our output went away (`assemble diff A B | head`): stop quietly,
        # as tools killed by SIGPIPE do. A broken socket elsewhere is not this case.
        if not _stdout_gone():
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # a silent exit flush
        return 141
    except OSError as e:
        from assembler.cache import DISK_ERRNOS, disk_error

        # A write the code does not wrap itself failing for the machine's reasons.
        if e.errno not in DISK_ERRNOS:
            raise
        err = disk_error(e, e.filename or "a file", "read or write")
        print(f"assemble: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("assemble: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

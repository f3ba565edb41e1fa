"""The `assemble` command line. Every user mistake ends in one paragraph and exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__
from .archives import Options
from .build import build
from .cache import Cache
from .errors import AssemblerError, SpecError
from .lock import load_or_lock, lock_path, why
from .mirror import parse_mirror_args
from .progress import info
from .spec import Spec, load_spec


def _options(args: argparse.Namespace) -> Options:
    return Options(cache=Cache(Path(args.cache_dir) if args.cache_dir else None),
                   mirrors=parse_mirror_args(args.mirror or []),
                   offline=getattr(args, "offline", False), quiet=args.quiet)


def _spec_path(args: argparse.Namespace) -> Path:
    return Path(args.spec or "image.yaml")


def cmd_lock(args: argparse.Namespace) -> int:
    spec = load_spec(_spec_path(args))
    options = _options(args)
    lock, changed = load_or_lock(spec, options, update=args.update)
    path = lock_path(spec.path)
    n = sum(len(a["packages"]) for a in lock["archs"].values())
    info(f"{path}: {'written' if changed else 'unchanged'} ({n} packages, "
         f"{', '.join(lock['archs'])}).", options.quiet)
    return 0


def _lock_for_query(args: argparse.Namespace) -> tuple[Spec, dict]:
    spec = load_spec(_spec_path(args))
    lock, _ = load_or_lock(spec, _options(args))
    return spec, lock


def cmd_show_packages(args: argparse.Namespace) -> int:
    spec, lock = _lock_for_query(args)
    if args.json:
        out = {arch: entry["packages"] for arch, entry in lock["archs"].items()}
        print(json.dumps(out, indent=2))
        return 0
    for arch, entry in lock["archs"].items():
        rows = [(p["name"], p["version"], p["arch"], p["suite"], str(p["size"]),
                 ", ".join(p["reason"])) for p in entry["packages"]]
        head = ("PACKAGE", "VERSION", "ARCH", "SUITE", "SIZE", "WHY")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
        print(f"# {arch}: {len(rows)} packages, "
              f"{sum(p['size'] for p in entry['packages']) / 1e6:.1f} MB of .debs")
        for r in [head, *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=False)) + "  " + r[5])
    return 0


def cmd_why(args: argparse.Namespace) -> int:
    spec, lock = _lock_for_query(args)
    arch = args.arch or spec.archs[0]
    if arch not in lock["archs"]:
        raise SpecError(f"the lock has no architecture {arch!r}; it has "
                        + ", ".join(lock["archs"]) + ".")
    names = {p["name"] for p in lock["archs"][arch]["packages"]}
    if args.package not in names:
        from .spec import did_you_mean

        excluded = lock["archs"][arch].get("excluded", {})
        if args.package in excluded:
            print(f"{args.package} is excluded by the spec; wanted by "
                  + ", ".join(excluded[args.package]))
            return 0
        raise SpecError(f"{args.package!r} is not in the image for {arch}."
                        + did_you_mean(args.package, names))
    for chain in why(lock, arch, args.package):
        print(" -> ".join(chain))
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--mirror", action="append", metavar="NAME=URL",
                        help="archive mirror, e.g. debian=http://mirror/debian (repeatable)")
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
    lk.set_defaults(func=cmd_lock)

    sp = sub.add_parser("show-packages", parents=[common], help="list the locked packages")
    sp.add_argument("spec", nargs="?")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_show_packages)

    wy = sub.add_parser("why", parents=[common], help="why a package is in the image")
    wy.add_argument("package")
    wy.add_argument("--spec", dest="spec")
    wy.add_argument("--arch")
    wy.set_defaults(func=cmd_why)
    _add_build_command(sub, common)
    return p


def cmd_build(args: argparse.Namespace) -> int:
    spec = load_spec(_spec_path(args))
    options = _options(args)
    default = "image" if args.format == "oci-dir" else "image.tar"
    output = Path(args.output) if args.output else spec.path.parent / default
    # Without --tag the image is still named, so loaders and umoci can find it.
    tags = args.tag or [f"{spec.path.stem.lower()}:latest"]
    digest = build(spec, options, output, args.format, tags, args.compression,
                   args.locked, args.arch)
    info(f"{output}: {digest}", options.quiet)
    print(digest)
    return 0


def _add_build_command(sub, common) -> None:  # noqa: ANN001
    b = sub.add_parser("build", parents=[common], help="build the image from the spec and lock")
    b.add_argument("spec", nargs="?", help="spec file (default image.yaml)")
    b.add_argument("-o", "--output", help="output path (default image.tar beside the spec)")
    b.add_argument("--format", choices=["tar", "oci-dir"], default="tar")
    b.add_argument("--tag", action="append", help="docker RepoTags entry (repeatable)")
    b.add_argument("--compression", choices=["gzip", "zstd", "none"], default="gzip")
    b.add_argument("--locked", action="store_true",
                   help="fail if the lockfile is missing or stale (like cargo --locked)")
    b.add_argument("--arch", action="append", help="build only this arch (repeatable)")
    b.set_defaults(func=cmd_build)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("RUST_BACKTRACE", "0")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AssemblerError as e:
        print(f"assemble: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("assemble: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The `assemble` command line. Every user mistake ends in one paragraph and exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__
from .archives import Archives, Options
from .cache import Cache
from .errors import AssemblerError, ResolveError, SpecError
from .lock import build_lock, lock_path, read_lock, staleness, why, write_lock
from .mirror import parse_mirror_args
from .progress import info
from .resolve import Resolver, Want
from .spec import Spec, load_spec


def _options(args: argparse.Namespace) -> Options:
    return Options(cache=Cache(Path(args.cache_dir) if args.cache_dir else None),
                   mirrors=parse_mirror_args(args.mirror or []),
                   offline=getattr(args, "offline", False), quiet=args.quiet)


def _spec_path(args: argparse.Namespace) -> Path:
    return Path(args.spec or "image.yaml")


def resolve_spec(spec: Spec, archives: Archives) -> dict:
    """Resolve every arch of `spec` and return the lock document."""
    resolutions = {}
    indexes = {}
    for arch in spec.archs:
        universe = archives.universe(arch)
        wants = []
        for r in spec.packages:
            if r.slice:
                raise SpecError(f"{spec.where(r.line)}: {r.name}_{r.slice} names a slice; "
                                "slices are not supported yet, name the whole package "
                                f"{r.name!r}.")
            wants.append(Want(r.name, r.op, r.version, spec.where(r.line), r.arch))
        exclude = {e.value for e in spec.exclude}
        for e in spec.exclude:
            if e.value not in universe:
                raise SpecError(f"{spec.where(e.line)}: excluded package {e.value!r} does not "
                                "exist in the archive." + _dym(e.value, universe))
        try:
            resolutions[arch] = Resolver(universe, wants, exclude,
                                         spec.include_essential).resolve()
        except ResolveError as e:
            raise ResolveError(f"cannot resolve {spec.path} for {arch}: {e.message}") from None
        indexes[arch] = universe.sources
    return build_lock(spec, resolutions, indexes)


def _dym(name: str, universe) -> str:  # noqa: ANN001
    from .spec import did_you_mean

    return did_you_mean(name, universe.names())


def load_or_lock(spec: Spec, options: Options, update: bool = False,
                 locked: bool = False) -> tuple[dict, bool]:
    """The lock for `spec`: the file when fresh, else a new resolution (written)."""
    path = lock_path(spec.path)
    if not update and path.exists():
        lock = read_lock(path)
        reason = staleness(lock, spec)
        if reason is None:
            return lock, False
        if locked:
            raise SpecError(f"{path} is stale: {reason}. Run 'assemble lock' (without "
                            "--locked) to update it.")
        info(f"{path} is stale ({reason}); re-resolving.", options.quiet)
    elif locked:
        raise SpecError(f"{path} does not exist and --locked was given; run 'assemble lock'.")
    lock = resolve_spec(spec, Archives(spec, options))
    changed = write_lock(path, lock)
    return lock, changed


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
    _add_build_commands(sub, common)
    return p


def _add_build_commands(sub, common) -> None:  # noqa: ANN001
    try:
        from .build import add_commands
    except ImportError:
        return
    add_commands(sub, common)


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

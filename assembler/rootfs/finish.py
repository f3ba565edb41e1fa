"""What every format's maintainer scripts would do after unpacking, and the spec's paths."""

from __future__ import annotations

from assembler.errors import AssemblerError, SpecError
from assembler.lock.model import LockedPackage
from assembler.progress import Progress
from assembler.rootfs.accounts import write_accounts
from assembler.rootfs.certs import BUNDLE, write_ca_bundle
from assembler.rootfs.tree import Tree
from assembler.spec.document import Spec


def finish_tree(tree: Tree, spec: Spec, packages: list[LockedPackage], progress: Progress,
                masters: dict[str, bytes] | None = None) -> None:
    """What every format's maintainer scripts would do after unpacking."""
    # Alpine's ca-certificates-bundle ships the bundle; only generate a missing one.
    if any(p.name == "ca-certificates" and not p.slices for p in packages) \
            and tree.get(BUNDLE) is None:
        write_ca_bundle(tree)
    write_accounts(tree, spec.accounts, **(masters or {}))
    apply_paths(tree, spec)
    progress.done()


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

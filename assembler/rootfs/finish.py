"""What every format's maintainer scripts would do after unpacking, and the spec's paths."""

from __future__ import annotations

from assembler.lock.model import LockedPackage
from assembler.progress import Progress
from assembler.rootfs.accounts import write_accounts
from assembler.rootfs.certs import BUNDLE, write_ca_bundle
from assembler.rootfs.paths import apply_paths
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

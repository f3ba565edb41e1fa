"""What every format's maintainer scripts would do after unpacking, and the spec's paths."""

from __future__ import annotations

from collections.abc import Callable

from assembler.lock.model import LockedPackage
from assembler.progress import Progress
from assembler.rootfs.accounts import write_accounts
from assembler.rootfs.certs import BUNDLE, add_local_certificates, write_ca_bundle
from assembler.rootfs.paths import apply_paths
from assembler.rootfs.tree import Tree
from assembler.rootfs.truststore import needs_truststore, write_truststore
from assembler.spec.document import Spec


def finish_tree(tree: Tree, spec: Spec, packages: list[LockedPackage], progress: Progress,
                masters: dict[str, bytes] | None = None,
                scripts: Callable[[Tree], list[str]] | None = None) -> list[str]:
    """What every format's maintainer scripts would do after unpacking; `scripts` is the
    format's own part (before accounts and the spec's paths, which win). Returns the
    warnings these steps raised."""
    before = len(tree.warnings)
    # Alpine's ca-certificates-bundle ships the bundle; only generate a missing one.
    if any(p.name == "ca-certificates" and not p.slices for p in packages) \
            and tree.get(BUNDLE) is None:
        write_ca_bundle(tree)
    add_local_certificates(tree, spec.certificates, str(spec.path))
    if needs_truststore(tree, packages):
        write_truststore(tree)
    if scripts is not None:
        tree.warnings.extend(scripts(tree))
    write_accounts(tree, spec.accounts, **(masters or {}))
    apply_paths(tree, spec)
    progress.done()
    return tree.warnings[before:]

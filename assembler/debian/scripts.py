"""What Debian packages' maintainer scripts would do, declaratively, after unpacking:
update-alternatives (the release's table), update-ca-certificates' hashed directory,
libc-bin's nsswitch.conf and /run, and py3compile's standard-library bytecode."""

from __future__ import annotations

from assembler.cache import Cache
from assembler.distro.definition import Distro
from assembler.errors import SpecError
from assembler.rootfs.alternatives import apply_alternatives, load_table
from assembler.rootfs.bytecode import compile_stdlib
from assembler.rootfs.certhash import write_hash_links
from assembler.rootfs.skeleton import write_skeleton
from assembler.rootfs.tree import Tree
from assembler.spec.document import Spec


def run_scripts(tree: Tree, spec: Spec, distro: Distro | None,
                cache: Cache | None = None) -> list[str]:
    """The stand-ins, in the order dpkg's triggers would leave things; returns warnings."""
    write_hash_links(tree)
    write_skeleton(tree)
    table = distro.extra.get("alternatives") if distro is not None else None
    if distro is not None and table:
        apply_alternatives(tree, load_table(distro.path.parent / table), spec.alternatives,
                           str(spec.path))
    elif spec.alternatives:
        raise SpecError(f"{spec.path}: alternatives: {spec.distro} has no alternatives table "
                        "(repos/debian/<release>/alternatives.yaml, named by the definition's "
                        "'alternatives:'); create the links under paths instead.")
    return compile_stdlib(tree, cache) if spec.python_bytecode else []

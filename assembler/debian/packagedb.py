"""What an image's dpkg database (status.d) and copyright files say about a package,
for its SBOM; and the point release the lock's signed Release recorded."""

from __future__ import annotations

from assembler.debian.copyright import MAX_COPYRIGHT, license_expression
from assembler.debian.dpkgdb import STATUS_D, paragraphs
from assembler.lock.model import LockedIndex
from assembler.packages.installed import text
from assembler.rootfs.tree import Tree, read_small
from assembler.sbom.licenses import NOASSERTION


def release_version(main_archive: str, main_suite: str, indexes: list[LockedIndex]) -> str:
    """The main suite's signed Release Version (e.g. 12.15), "" when the lock has none."""
    for i in indexes:
        if i.archive == main_archive and i.suite == main_suite:
            return str(i.fields.get("version", ""))
    return ""


def _control(data: bytes) -> dict[str, str]:
    found = paragraphs(data)
    return found[0] if found else {}


class StatusD:
    """The distroless-style dpkg database of an image tree."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree

    def has(self, name: str, version: str) -> bool:
        record = read_small(self.tree, f"{STATUS_D}{name}")
        return record is not None and _control(record).get("version") == version

    def package_facts(self, name: str) -> tuple[str, str]:
        """(supplier, licence expression or NOASSERTION) of an installed package."""
        record = read_small(self.tree, f"{STATUS_D}{name}")
        supplier = _control(record).get("maintainer", "") if record else ""
        copyright_ = read_small(self.tree, f"usr/share/doc/{name}/copyright", MAX_COPYRIGHT)
        expr = license_expression(copyright_) if copyright_ is not None else None
        return supplier, expr or NOASSERTION

    def package_files(self, name: str) -> list[str]:
        """The paths the image has of the package, as its md5sums lists them."""
        data = read_small(self.tree, f"{STATUS_D}{name}.md5sums", 64 << 20)
        if not data:
            return []
        return sorted(line.partition("  ")[2] for line in text(data).splitlines()
                      if "  " in line)

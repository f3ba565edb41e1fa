"""What an image's /lib/apk/db/installed says about a package, for its SBOM; and the
release the lock's signed APKINDEX DESCRIPTION names."""

from __future__ import annotations

import re

from assembler.alpine.installed import parse_installed
from assembler.lock.model import LockedIndex
from assembler.rootfs.tree import Tree, read_small
from assembler.sbom.licenses import NOASSERTION, spdx_expression

# "v3.21.3-45-g1a2b3c4d5e": what Alpine's builders write as an index's DESCRIPTION.
_DESCRIPTION = re.compile(r"v(\d+(?:\.\d+)+)\b")


def release_version(main_archive: str, main_suite: str, indexes: list[LockedIndex],
                    description_names_release: bool = True) -> str:
    """The release the main repository's signed index names: the version of the
    alpine-release it lists (what that package's files say; 3.21.3, 3.22.0_alpha20250108),
    else its DESCRIPTION's tag when that names the branch's release (not on edge, whose
    tags are snapshots or the last stable release); "" when neither does."""
    for i in indexes:
        if i.archive == main_archive and i.suite == main_suite:
            package = str(i.fields.get("alpine-release", ""))
            if package:
                return package.rsplit("-r", 1)[0]
            m = _DESCRIPTION.match(str(i.fields.get("description", "")))
            return m.group(1) if m and description_names_release else ""
    return ""


class InstalledDb:
    def __init__(self, tree: Tree) -> None:
        data = read_small(tree, "lib/apk/db/installed", 256 << 20)
        installed = parse_installed(data.decode("utf-8", "replace")) if data else []
        self.records = {p.record.name: p.record for p in installed}

    def has(self, name: str, version: str) -> bool:
        r = self.records.get(name)
        return r is not None and r.version == version

    def package_facts(self, name: str) -> tuple[str, str]:
        r = self.records.get(name)
        if r is None:
            return "", NOASSERTION
        # apk's license field is meant as SPDX (abuild checks it); empty says nothing.
        return r.maintainer, spdx_expression(r.license) or NOASSERTION

    def package_files(self, name: str) -> list[str]:
        return []   # apk has no slices: a package is whole, its file is the lock's

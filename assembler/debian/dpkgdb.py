"""dpkg's databases in an image, read back: status.d (distroless, ours) and status.

status.d holds one control paragraph per package plus `<pkg>.md5sums` (regular
files only); a Debian system has /var/lib/dpkg/status and info/<pkg>.list.
"""

from __future__ import annotations

from assembler.packages.installed import Installed, text

STATUS_D = "var/lib/dpkg/status.d/"
STATUS = "var/lib/dpkg/status"
INFO = "var/lib/dpkg/info/"


def is_database(path: str) -> bool:
    return path.startswith(STATUS_D) or path == STATUS or \
        path.startswith(INFO) and path.endswith(".list")


def paragraphs(data: bytes) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    key = ""
    for line in [*text(data).splitlines(), ""]:
        if not line.strip():
            if fields:
                out.append(fields)
            fields, key = {}, ""
        elif line[0] in " \t":
            if key:
                fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
    return out


def _installed(fields: dict[str, str]) -> Installed | None:
    status = fields.get("status", "")
    if not fields.get("package") or "not-installed" in status or "config-files" in status:
        return None
    size = fields.get("installed-size", "")
    return Installed(fields["package"], fields.get("version", ""),
                     fields.get("architecture", ""), int(size) * 1024 if size.isdigit() else None)


def read_installed(files: dict[str, bytes]) -> tuple[list[Installed], list[str]]:
    """Packages from whichever dpkg database `files` holds, and the databases read."""
    out: list[Installed] = []
    sources: list[str] = []
    for path in sorted(files):
        if path.startswith(STATUS_D) and not path.endswith(".md5sums"):
            for pkg in filter(None, map(_installed, paragraphs(files[path]))):
                for line in text(files.get(path + ".md5sums", b"")).splitlines():
                    owned = line.partition("  ")[2].strip("/")
                    if owned:
                        pkg.files.append(owned)
                out.append(pkg)
            if STATUS_D.rstrip("/") not in sources:
                sources.append(STATUS_D.rstrip("/"))
        elif path == STATUS:
            for pkg in filter(None, map(_installed, paragraphs(files[path]))):
                listed = files.get(f"{INFO}{pkg.name}.list") or \
                    files.get(f"{INFO}{pkg.name}:{pkg.arch}.list") or b""
                pkg.files += [p.strip("/") for p in text(listed).splitlines() if p.strip("/")]
                out.append(pkg)
            sources.append(path)
    return out, sources

"""The package database scanners read: /var/lib/dpkg/status.d/<pkg> (+ .md5sums).

Trivy, Syft and Grype read distroless-style status.d entries. Each holds the
package's control paragraph with a Status line; its md5sums list what this
image really contains of the package (after doc stripping), so every line
matches a file in the image.
"""

from __future__ import annotations

from assembler.rootfs.tree import Tree


def control_with_status(control: bytes) -> bytes:
    text = control.decode("utf-8", "replace").rstrip("\n")
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        if i == 0 and line.startswith("Package:"):
            out.append("Status: install ok installed")
    return ("\n".join(out) + "\n").encode()


def write_status(tree: Tree, controls: dict[str, bytes]) -> None:
    """status.d/<pkg> and <pkg>.md5sums for every package in `controls` (name -> control)."""
    files: dict[str, list[str]] = {}
    for e in tree.entries():
        if e.kind == "file" and e.origin in controls:
            files.setdefault(e.origin, []).append(f"{e.md5}  {e.path}\n")
    for name, control in controls.items():
        base = f"var/lib/dpkg/status.d/{name}"
        tree.add_file(base, control_with_status(control), 0o644, replace=True)
        if name in files:
            # A name that is not UTF-8 holds its bytes as surrogates: write them back, as dpkg
            # lists them.
            tree.add_file(base + ".md5sums",
                          "".join(files[name]).encode("utf-8", "surrogateescape"), 0o644,
                          replace=True)

"""chisel's Starlark `mutate` scripts that a declarative generator already does.

We never execute a script from a definition. A slice with one loads (so a
chisel-releases checkout loads as it is), but selecting it is refused unless
its script is one of those below, recognised by the SHA-256 of its text (each
line stripped, blank lines dropped): a script that changes in any way is no
longer recognised, and refused again, rather than half-understood.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from assembler.slices.model import Slice

# script digest -> {mutable path the script writes: the generator that writes it}
COVERED: dict[str, dict[str, str]] = {
    # base-passwd_data: copy passwd.master and group.master to /etc (every release).
    "00d0881515a976a065c520ff701ee462731f63bee8741a00b5df9a71bf7059fe":
        {"/etc/passwd": "passwd", "/etc/group": "group"},
    # ca-certificates_data: concatenate /usr/share/ca-certificates/mozilla/* into the bundle.
    "b1da82304a7285980e21f419c2eaf83761768fe0f18a0ef06120acc4c80c7653":
        {"/etc/ssl/certs/ca-certificates.crt": "ca-bundle"},
}


def script_digest(script: str) -> str:
    text = "\n".join(line.strip() for line in script.splitlines() if line.strip())
    return hashlib.sha256(text.encode()).hexdigest()


def cover(s: Slice) -> None:
    """Replace the paths a known script writes by their generators; mark the slice covered."""
    if not s.mutate:
        return
    paths = COVERED.get(script_digest(s.mutate))
    if paths is None or not all(p in s.contents and s.contents[p].mutable for p in paths):
        return
    for path, generator in paths.items():
        s.written[path] = s.contents[path]
        s.contents[path] = replace(s.contents[path], kind="generate", generate=generator,
                                   text=None)
    s.covered = True


def refusal(s: Slice) -> str | None:
    """Why `s` cannot be selected, or None."""
    if s.mutate and not s.covered:
        return (f"{s.where(s.mutate_line)}: slice {s.full} has a Starlark 'mutate' script, "
                "which assembler does not run (it executes nothing from a definition), and "
                "no declarative generator does what this script does. Choose another slice, "
                "take the package whole, or write the result with a 'text' path or the "
                "spec's 'paths'.")
    return None

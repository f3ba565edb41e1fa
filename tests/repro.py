"""Building one spec in different environments, for the reproducibility tests.

`Variant` is what may differ between two builds that must give one digest:
the cache directory (cold or warm), umask, TZ, locale, working directory,
PYTHONHASHSEED and the number of gzip threads. `build()` runs `assemble build`
in a fresh interpreter with that environment and returns the printed digest
and the sha256 of the output file.

`latin1_env()` makes a real non-UTF-8 locale (ISO-8859-1) with localedef into
a private LOCPATH, so Python's filesystem and default text encodings really
are Latin-1 in the child; it returns None where the locale sources are absent.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LATIN1 = "en_US.ISO-8859-1"

# The child applies the gzip thread count before building; nothing else changes.
_RUNNER = (
    "import os, sys\n"
    "import assembler.image.layer as layer\n"
    "layer.GZIP_THREADS = int(os.environ.get('REPRO_GZIP_THREADS') or layer.GZIP_THREADS)\n"
    "from assembler.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@dataclass
class Variant:
    cache: Path
    umask: int = 0o022
    tz: str = "UTC"
    lang: str = "C.UTF-8"
    seed: int = 0
    cwd: Path | None = None
    threads: int = 1
    env: dict[str, str] = field(default_factory=dict)


def build(spec: Path, out: Path, v: Variant, *extra: str, locked: bool = True
          ) -> tuple[str, str]:
    """`assemble build SPEC -o OUT` under `v`; returns (printed digest, sha256 of OUT)."""
    cwd = v.cwd or out.parent
    cwd.mkdir(parents=True, exist_ok=True)
    env = {k: val for k, val in os.environ.items()
           if k not in ("SOURCE_DATE_EPOCH", "LC_CTYPE", "LC_MESSAGES", "LANGUAGE")}
    env.update(TZ=v.tz, LANG=v.lang, LC_ALL=v.lang, PYTHONHASHSEED=str(v.seed),
               PYTHONPATH=str(ROOT), REPRO_GZIP_THREADS=str(v.threads))
    env.update(v.env)
    argv = [sys.executable, "-c", _RUNNER, "build", str(spec), "-o", str(out), "-q",
            "--cache-dir", str(v.cache), *(["--locked"] if locked else []), *extra]
    r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd,
                       preexec_fn=lambda: os.umask(v.umask), timeout=600)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip(), hashlib.sha256(out.read_bytes()).hexdigest()


def latin1_env(where: Path) -> dict[str, str] | None:
    """LOCPATH, LANG and LC_ALL for a generated ISO-8859-1 locale, or None if none can be made."""
    localedef = shutil.which("localedef")
    if localedef is None or not Path("/usr/share/i18n/locales/en_US").is_file():
        return None
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([localedef, "-i", "en_US", "-f", "ISO-8859-1", str(where / LATIN1)],
                       capture_output=True, text=True)
    env = {"LOCPATH": str(where), "LANG": LATIN1, "LC_ALL": LATIN1}
    probe = subprocess.run([sys.executable, "-c", "import sys; print(sys.getfilesystemencoding())"],
                           capture_output=True, text=True, env={**os.environ, **env})
    if r.returncode not in (0, 1) or probe.stdout.strip() != "iso8859-1":
        return None
    return env


def seed_cache(warm: Path, cold: Path) -> Path:
    """A cache holding `warm`'s downloads and parsed indexes but no unpacked packages.

    Entries are hardlinked (cache files are immutable once in place), so it is
    cheap; what the build must then redo is exactly the unpacked-package cache.
    """
    for kind in ("blobs", "index", "inrelease", "apkindex", "apk-verified"):
        src = warm / kind
        if not src.is_dir():
            continue
        for f in src.rglob("*"):
            if f.is_file() and not f.name.startswith(".tmp-"):
                dest = cold / f.relative_to(warm)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.link(f, dest)
    return cold

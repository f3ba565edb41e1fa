"""`assemble --version`, `--help` and argument mistakes do not load the pipeline."""

from __future__ import annotations

import subprocess
import sys

from assembler import cli
from assembler.push.registry import DEFAULT_CHUNK

# What a start-up must not pay for: each costs tens of milliseconds to import.
HEAVY = ("requests", "cryptography", "pysequoia", "yaml", "zstandard", "urllib3")


def _imported_by(statement: str) -> set[str]:
    """Top-level module names a fresh interpreter imports to run `statement`."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", statement],
                          capture_output=True, text=True, check=True)
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_importing_the_cli_loads_no_pipeline_module():
    names = _imported_by("import assembler.cli")
    assert "assembler" in names      # the probe sees our own imports
    assert not names & set(HEAVY), sorted(names & set(HEAVY))


def test_help_and_version_load_no_pipeline_module():
    statement = ("import sys, assembler.cli as c\n"
                 "for argv in (['--version'], ['--help'], ['build', '--help']):\n"
                 "    try: c.main(argv)\n"
                 "    except SystemExit: pass\n")
    assert not _imported_by(statement) & set(HEAVY)


def test_the_default_chunk_size_is_the_push_default():
    args = cli.build_parser().parse_args(["push", "x.tar", "r.example/a:1"])
    assert args.chunk_size == DEFAULT_CHUNK

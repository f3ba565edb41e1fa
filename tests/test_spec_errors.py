"""Must-show: bad specs give a one-paragraph error with file and line, exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
from aptrepo import Pkg
from hermetic import run, write_distro, write_spec

from assembler.errors import SpecError
from assembler.spec.document import load_spec

BASE = "distro: debian/bookworm\ncontents:\n  packages: [python3]\n"


def _err(tmp_path, text: str) -> str:
    p = write_spec(tmp_path, text)
    with pytest.raises(SpecError) as e:
        load_spec(p)
    return str(e.value)


def test_unknown_key_with_suggestion(tmp_path):
    msg = _err(tmp_path, BASE + "entrypont: [/bin/sh]\n")
    assert "image.yaml:4:" in msg and "'entrypont'" in msg and "Did you mean 'entrypoint'" in msg


def test_unknown_nested_key(tmp_path):
    msg = _err(tmp_path, "distro: debian/bookworm\ncontents:\n  packages: [a]\n  exlude: [b]\n")
    assert "image.yaml:4:" in msg and "'exclude'" in msg


def test_malformed_yaml(tmp_path):
    msg = _err(tmp_path, BASE + "cmd: [unclosed\nfoo: bar\n")
    assert "image.yaml:" in msg and "malformed YAML" in msg


def test_bad_types_and_values(tmp_path):
    assert "must be a list" in _err(tmp_path, "distro: x\ncontents:\n  packages: python3\n")
    assert "unknown architecture 'amd46'" in _err(tmp_path, BASE + "archs: [amd46]\n")
    msg = _err(tmp_path, BASE + "paths: [{path: /a, type: dir}]\n")
    assert "image.yaml:4:" in msg and "'directory'" in msg


def test_two_different_pins_of_one_package(tmp_path):
    msg = _err(tmp_path, "distro: x\ncontents:\n  packages:\n    - a=1\n    - a=2\n")
    assert "image.yaml:5:" in msg and "twice" in msg


def test_requested_and_excluded(tmp_path):
    msg = _err(tmp_path, "distro: x\ncontents:\n  packages: [a]\n  exclude: [a]\n")
    assert "image.yaml:4:" in msg and "excluded" in msg


def test_unknown_distro_suggests(tmp_path, capsys):
    p = write_spec(tmp_path, "distro: debian/bookwork\ncontents:\n  packages: [a]\n")
    code, _, err = run(["lock", str(p), "-q"], capsys)
    assert code == 2 and "image.yaml:1:" in err and "debian/bookworm" in err


@pytest.mark.integration
class TestAgainstArchive:
    @pytest.fixture
    def env(self, tmp_path, apt_repo, apt_key):
        repo = apt_repo({"stable": [
            Pkg("app", "1.0-1", depends="libfoo (>= 2)"),
            Pkg("libfoo", "1.5-1"),
            Pkg("tool", "1.0-1"),
            Pkg("other", "1.0-1", conflicts="tool"),
        ]})
        distro = write_distro(tmp_path, apt_key.public_path, ["stable"])
        return tmp_path, distro, ["--mirror", f"test={repo.url}",
                                  "--cache-dir", str(tmp_path / "c"), "-q"]

    def _lock(self, env, capsys, packages: str):
        tmp, distro, extra = env
        p = write_spec(tmp, f"distro: {distro}\narchs: [amd64]\ncontents:\n"
                       f"  packages:\n{packages}")
        return run(["lock", str(p), *extra], capsys)

    def test_misspelled_package(self, env, capsys):
        code, _, err = self._lock(env, capsys, "    - tol\n")
        assert code == 2 and "image.yaml:5:" in err and "'tol'" in err
        assert "Did you mean 'tool'" in err and "Traceback" not in err

    def test_impossible_pin(self, env, capsys):
        code, _, err = self._lock(env, capsys, "    - tool=9.9\n")
        assert code == 2 and "image.yaml:5:" in err and "1.0-1" in err

    def test_unsatisfiable_chain_explained(self, env, capsys):
        code, _, err = self._lock(env, capsys, "    - app\n")
        assert code == 2
        assert "app=1.0-1 needs libfoo (>= 2), but only libfoo 1.5-1 is available" in err

    def test_two_conflicting_requests(self, env, capsys):
        code, _, err = self._lock(env, capsys, "    - tool\n    - other\n")
        assert code == 2 and "other=1.0-1 conflicts with tool=1.0-1" in err
        assert len(err.strip().splitlines()) == 1


def test_cli_exit_code_and_no_traceback(tmp_path):
    """The installed console entry point, as a user runs it."""
    p = write_spec(tmp_path, BASE + "bogus: 1\n")
    r = subprocess.run([sys.executable, "-m", "assembler.cli", "lock", str(p)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "image.yaml:4:" in r.stderr


@pytest.mark.parametrize("entry, words", [
    ("{path: /srv, type: dir}", ["image.yaml:5:", "unknown path type 'dir'",
                                 "Did you mean 'directory'", "Types: directory, file"]),
    ("{path: /srv}", ["image.yaml:5:", "a path entry needs 'path' and 'type'"]),
])
def test_path_entry_type(tmp_path, entry, words):
    msg = _err(tmp_path, BASE + f"paths:\n  - {entry}\n")
    assert all(w in msg for w in words), msg


def test_apko_path_entry_type_names_apkos_types(tmp_path):
    p = tmp_path / "apko.yaml"
    p.write_text("contents:\n  repositories: [https://127.0.0.1:9/os]\n  packages: [glibc]\n"
                 "paths:\n  - {path: /srv, type: file}\n")
    with pytest.raises(SpecError) as e:
        load_spec(p)
    msg = str(e.value)
    assert "apko.yaml:5:" in msg and "unknown path type 'file'" in msg, msg
    assert "apko's types: directory, empty-file, hardlink, symlink, permissions." in msg, msg

"""Must-show: a build whose image cannot load one of its programs fails, writing nothing.

Packages come from the local signed archive (tests/aptrepo.py); their ELF
files are made by tests/elfmaker.py.
"""

from __future__ import annotations

import pytest
from aptrepo import File, Pkg, Symlink
from elfmaker import library, program
from hermetic import run, write_distro, write_spec

pytestmark = pytest.mark.integration

LIBDIR = "usr/lib/x86_64-linux-gnu"


def libc6() -> Pkg:
    return Pkg("libc6", "2.36-9", files={
        f"{LIBDIR}/ld-linux-x86-64.so.2": File(library("ld-linux-x86-64.so.2"), mode=0o755),
        f"{LIBDIR}/libc.so.6": library("libc.so.6", "ld-linux-x86-64.so.2"),
        "lib64/ld-linux-x86-64.so.2": Symlink(f"/{LIBDIR}/ld-linux-x86-64.so.2")})


def app() -> Pkg:
    return Pkg("app", "1.0", depends="libc6", files={
        "usr/bin/app": File(program("libc.so.6", "libwidget.so.7"), mode=0o755),
        "usr/bin/tool": File(program("libc.so.6"), mode=0o755)})


def setup(tmp_path, apt_repo, apt_key, pkgs, extra: str = ""):
    repo = apt_repo({"stable": pkgs})
    distro = write_distro(tmp_path, apt_key.public_path, ["stable"])
    spec = write_spec(tmp_path, f"distro: {distro}\narchs: [amd64]\n"
                      f"contents:\n  packages: [app]\n{extra}")
    out = tmp_path / "out" / "image.tar"
    argv = ["build", str(spec), "-o", str(out), "--mirror", f"test={repo.url}",
            "--cache-dir", str(tmp_path / "cache"), "-q"]
    return out, argv


def test_missing_library_fails_the_build_and_writes_nothing(tmp_path, apt_repo, apt_key, capsys):
    out, argv = setup(tmp_path, apt_repo, apt_key, [libc6(), app()])
    code, stdout, err = run(argv, capsys)
    assert code == 1, err
    assert "Link check of the amd64 image failed" in err
    assert "libwidget.so.7 (needed by /usr/bin/app)" in err
    assert "/usr/bin/tool" not in err  # it has everything it needs
    assert err.count("\n") == 1 and "Traceback" not in err and stdout == ""
    assert not out.exists() and not list(out.parent.glob(".assemble-*"))


def test_the_package_that_ships_it_makes_the_build_pass(tmp_path, apt_repo, apt_key, capsys):
    widget = Pkg("libwidget7", "7.1", depends="libc6",
                 files={f"{LIBDIR}/libwidget.so.7.1.0": library("libwidget.so.7", "libc.so.6"),
                        f"{LIBDIR}/libwidget.so.7": Symlink("libwidget.so.7.1.0")})
    fixed = app()
    fixed.depends = "libc6, libwidget7"
    out, argv = setup(tmp_path, apt_repo, apt_key, [libc6(), fixed, widget])
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert run(["check", str(out)], capsys)[0] == 0


def test_spec_can_ignore_a_file_and_check_still_sees_it(tmp_path, apt_repo, apt_key, capsys):
    out, argv = setup(tmp_path, apt_repo, apt_key, [libc6(), app()],
                      "link-check:\n  ignore: [/usr/bin/app]\n")
    code, _, err = run(argv, capsys)
    assert code == 0, err
    code, stdout, _ = run(["check", str(out)], capsys)
    assert code == 1 and "libwidget.so.7" in stdout
    assert run(["check", str(out), "--ignore", "/usr/bin/a*"], capsys)[0] == 0


def test_missing_interpreter_fails_the_build(tmp_path, apt_repo, apt_key, capsys):
    broken = app()
    broken.files = {"usr/bin/app": File(program(interp="/lib/ld-musl-x86_64.so.1"), mode=0o755)}
    out, argv = setup(tmp_path, apt_repo, apt_key, [libc6(), broken])
    code, _, err = run(argv, capsys)
    assert code == 1 and "interpreter /lib/ld-musl-x86_64.so.1 (needed by /usr/bin/app)" in err
    assert not out.exists()


def test_relative_ignore_glob_is_a_spec_error(tmp_path, apt_repo, apt_key, capsys):
    out, argv = setup(tmp_path, apt_repo, apt_key, [libc6(), app()],
                      "link-check:\n  ignore: [usr/bin/app]\n")
    code, _, err = run(argv, capsys)
    assert code == 2 and "image.yaml:6: link-check.ignore entry 'usr/bin/app' must be an " \
        "absolute path" in err


def test_unknown_link_check_key_is_a_spec_error(tmp_path, apt_repo, apt_key, capsys):
    out, argv = setup(tmp_path, apt_repo, apt_key, [libc6(), app()],
                      "link-check:\n  ignroe: [/usr/bin/app]\n")
    code, _, err = run(argv, capsys)
    assert code == 2 and "unknown key 'ignroe' in link-check. Did you mean 'ignore'?" in err

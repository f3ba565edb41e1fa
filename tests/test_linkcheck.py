"""linkcheck over in-memory trees: ld.so's search order, inside the image only."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from elfmaker import EM_386, EM_AARCH64, library, make_elf, program

from assembler.errors import LinkError
from assembler.linkcheck.check import Missing, check_tree, explain, require_links, scan_tree
from assembler.rootfs.tree import Tree

LIBDIR = "usr/lib/x86_64-linux-gnu"


def base_tree(**kw) -> Tree:
    """A glibc-like image: the loader behind Debian's symlinks, and libc."""
    tree = Tree(**kw)
    tree.add_file(f"{LIBDIR}/ld-linux-x86-64.so.2",
                  library("ld-linux-x86-64.so.2"), 0o755)
    tree.add_symlink("lib64/ld-linux-x86-64.so.2", f"/{LIBDIR}/ld-linux-x86-64.so.2")
    tree.add_file(f"{LIBDIR}/libc.so.6", library("libc.so.6", "ld-linux-x86-64.so.2",
                                                 interp="/lib64/ld-linux-x86-64.so.2"))
    return tree


def names(missing: list[Missing]) -> list[tuple[str, str, str]]:
    return [(m.path, m.kind, m.name) for m in missing]


def test_complete_image_passes_and_counts_what_it_checked():
    tree = base_tree()
    tree.add_file("usr/bin/app", program("libc.so.6"), 0o755)
    report = scan_tree(tree)
    # app and libc need something; ld.so needs nothing, so it is not counted.
    assert report.missing == [] and report.checked == 2


def test_missing_interpreter():
    tree = Tree()
    tree.add_file("usr/bin/app", program(), 0o755)
    assert names(check_tree(tree)) == [("/usr/bin/app", "interpreter",
                                        "/lib64/ld-linux-x86-64.so.2")]


def test_interpreter_through_a_symlink_chain_and_a_dangling_one():
    tree = base_tree()
    tree.add_file("usr/bin/app", program("libc.so.6", interp="/lib/ld.so"), 0o755)
    tree.add_symlink("lib/ld.so", "ld-hop")
    tree.add_symlink("lib/ld-hop", "../lib64/ld-linux-x86-64.so.2")
    assert check_tree(tree) == []
    tree.remove(f"{LIBDIR}/ld-linux-x86-64.so.2")
    missing = names(check_tree(tree))
    assert ("/usr/bin/app", "interpreter", "/lib/ld.so") in missing


def test_missing_needed_library_names_file_and_soname():
    tree = base_tree()
    tree.add_file("usr/bin/app", program("libfoo.so.1", "libc.so.6"), 0o755)
    assert names(check_tree(tree)) == [("/usr/bin/app", "library", "libfoo.so.1")]


def test_library_symlink_chain_is_followed_inside_the_image():
    tree = base_tree()
    tree.add_file("usr/bin/app", program("libfoo.so.1"), 0o755)
    tree.add_file("opt/real/libfoo.so.1.2.3", library("libfoo.so.1"))
    tree.add_symlink(f"{LIBDIR}/libfoo.so.1", "libfoo.so.1.2")
    tree.add_symlink(f"{LIBDIR}/libfoo.so.1.2", "../../../opt/real/libfoo.so.1.2.3")
    assert check_tree(tree) == []
    tree.remove("opt/real/libfoo.so.1.2.3")  # now a dangling chain: not a library
    assert names(check_tree(tree)) == [("/usr/bin/app", "library", "libfoo.so.1")]


def test_host_files_are_never_consulted(tmp_path):
    # libc.so.6 exists on the host at this very path; the image lacks it.
    assert Path("/usr/lib/x86_64-linux-gnu/libc.so.6").exists() or \
        Path("/lib/x86_64-linux-gnu/libc.so.6").exists()
    tree = Tree()
    tree.add_file("usr/bin/app", program("libc.so.6", interp="/usr/bin/app"), 0o755)
    assert names(check_tree(tree)) == [("/usr/bin/app", "library", "libc.so.6")]


def test_runpath_with_origin():
    tree = base_tree()
    tree.add_file("opt/app/bin/app", program("libapp.so.1", runpath="$ORIGIN/../lib"), 0o755)
    tree.add_file("opt/app/lib/libapp.so.1", library("libapp.so.1"))
    assert check_tree(tree) == []
    tree.add_file("opt/other/bin/app2", program("libapp.so.1", runpath="${ORIGIN}/../lib"),
                  0o755)
    assert names(check_tree(tree)) == [("/opt/other/bin/app2", "library", "libapp.so.1")]


def test_rpath_is_ignored_when_runpath_is_present():
    tree = base_tree()
    tree.add_file("opt/a/libx.so.1", library("libx.so.1"))
    tree.add_file("usr/bin/old", program("libx.so.1", rpath="/opt/a"), 0o755)
    tree.add_file("usr/bin/new", program("libx.so.1", rpath="/opt/a", runpath="/opt/b"), 0o755)
    assert names(check_tree(tree)) == [("/usr/bin/new", "library", "libx.so.1")]


def test_lib_token_expands_to_the_multiarch_directory():
    tree = base_tree()
    tree.add_file("opt/p/lib/x86_64-linux-gnu/liby.so.1", library("liby.so.1"))
    tree.add_file("opt/p/bin/y", program("liby.so.1", runpath="$ORIGIN/../$LIB"), 0o755)
    assert check_tree(tree) == []


def test_ld_so_conf_include_counts_only_with_a_cache():
    tree = base_tree()
    tree.add_file("usr/bin/app", program("libpriv.so.3"), 0o755)
    tree.add_file("usr/lib/private/libpriv.so.3", library("libpriv.so.3"))
    tree.add_file("etc/ld.so.conf", b"# comment\ninclude /etc/ld.so.conf.d/*.conf\n")
    tree.add_file("etc/ld.so.conf.d/priv.conf", b"/usr/lib/private  # ours\n")
    tree.add_file("etc/ld.so.conf.d/priv.txt", b"/nowhere\n")
    (missing,) = check_tree(tree)
    # ld.so reads ld.so.cache, never ld.so.conf: without a cache the directory is not searched.
    assert (missing.path, missing.name) == ("/usr/bin/app", "libpriv.so.3")
    assert "/etc/ld.so.conf.d/priv.conf lists /usr/lib/private" in missing.note
    assert "ld.so.cache" in missing.note
    tree.add_file("etc/ld.so.cache", b"glibc-ld.so.cache1.1")
    assert check_tree(tree) == []


def test_relative_include_in_ld_so_conf():
    tree = base_tree()
    tree.add_file("etc/ld.so.cache", b"x")
    tree.add_file("usr/bin/app", program("libpriv.so.3"), 0o755)
    tree.add_file("srv/lib/libpriv.so.3", library("libpriv.so.3"))
    tree.add_file("etc/ld.so.conf", b"include ld.so.conf.d/*.conf\n")
    tree.add_file("etc/ld.so.conf.d/a.conf", b"/srv/lib\n")
    assert check_tree(tree) == []


def test_wrong_class_library_does_not_count():
    tree = base_tree()
    tree.add_file("usr/bin/app", program("libfoo.so.1"), 0o755)
    tree.add_file(f"{LIBDIR}/libfoo.so.1", library("libfoo.so.1", bits=32, machine=EM_386))
    (missing,) = check_tree(tree)
    assert missing.name == "libfoo.so.1" and "32-bit i386" in missing.note
    # The loader skips it and goes on: a right one later in the search path is found.
    tree.add_file("usr/lib/libfoo.so.1", library("libfoo.so.1"))
    assert check_tree(tree) == []


def test_wrong_machine_interpreter_does_not_count():
    tree = base_tree()
    tree.add_file("usr/bin/app", program(interp="/lib/ld-linux-aarch64.so.1"), 0o755)
    tree.add_file("lib/ld-linux-aarch64.so.1", library("ld-linux-aarch64.so.1",
                                                       machine=EM_AARCH64))
    (missing,) = check_tree(tree)
    assert missing.kind == "interpreter" and "aarch64" in missing.note


def test_truncated_files_are_reported_not_checked_and_do_not_satisfy():
    tree = base_tree()
    whole = library("libfoo.so.1")
    tree.add_file(f"{LIBDIR}/libfoo.so.1", whole[: len(whole) - 20])  # dynamic segment cut
    tree.add_file("usr/bin/app", program("libfoo.so.1"), 0o755)
    tree.add_file("usr/bin/broken", program("libc.so.6")[:100], 0o755)
    tree.add_file("usr/share/x.bin", b"\x7fELF" + bytes(60))
    report = scan_tree(tree)
    assert names(report.missing) == [("/usr/bin/app", "library", "libfoo.so.1")]
    assert "not a readable ELF file" in report.missing[0].note
    assert [p for p, _ in report.unreadable] == ["/usr/bin/broken", f"/{LIBDIR}/libfoo.so.1",
                                                 "/usr/share/x.bin"]


def test_static_programs_pass_and_extension_modules_are_checked():
    tree = base_tree()
    tree.add_file("usr/bin/static", make_elf(type=2), 0o755)
    tree.add_file("usr/lib/python3/dist-packages/_x.cpython-311-x86_64-linux-gnu.so",
                  library("", "libxml2.so.2"))
    assert names(check_tree(tree)) == [
        ("/usr/lib/python3/dist-packages/_x.cpython-311-x86_64-linux-gnu.so", "library",
         "libxml2.so.2")]


def test_library_may_rely_on_what_its_program_loaded():
    # systemd's layout: libsystemd-core needs libsystemd-shared, which only the
    # program's RUNPATH finds; ld.so matches the already loaded soname.
    tree = base_tree()
    private = f"{LIBDIR}/systemd"
    tree.add_file(f"{private}/libsystemd-shared-252.so", library("libsystemd-shared-252.so"))
    tree.add_file(f"{private}/libsystemd-core-252.so",
                  library("libsystemd-core-252.so", "libsystemd-shared-252.so"))
    assert names(check_tree(tree)) == [(f"/{private}/libsystemd-core-252.so", "library",
                                        "libsystemd-shared-252.so")]
    tree.add_file("usr/bin/systemd", program("libsystemd-core-252.so", "libsystemd-shared-252.so",
                                             runpath=f"/{private}"), 0o755)
    assert check_tree(tree) == []


def test_library_may_use_its_programs_rpath():
    tree = base_tree()
    tree.add_file("opt/x/libb.so.1", library("libb.so.1"))
    tree.add_file("opt/x/liba.so.1", library("liba.so.1", "libb.so.1"))
    tree.add_file("usr/bin/x", program("liba.so.1", rpath="/opt/x"), 0o755)
    assert check_tree(tree) == []  # liba finds libb through x's (inherited) RPATH


def test_ignore_globs_skip_files():
    tree = base_tree()
    tree.add_file("usr/lib/app/plugins/a.so", library("", "libnothere.so.1"))
    tree.add_file("usr/bin/app", program("libnothere.so.1"), 0o755)
    assert names(check_tree(tree, ["/usr/lib/app/plugins/*.so"])) == [
        ("/usr/bin/app", "library", "libnothere.so.1")]
    assert check_tree(tree, ["/usr/lib/app/*", "/usr/bin/app"]) == []


def test_explain_caps_the_list_and_uses_the_providers_hook():
    missing = [Missing(f"/usr/bin/p{i}", "library", f"libm{i:02}.so.1") for i in range(13)]
    missing += [Missing(f"/usr/bin/q{i}", "library", "libm00.so.1") for i in range(5)]
    text = explain(missing, providers=lambda s: "package libm00-1" if s == "libm00.so.1" else None)
    assert text.startswith("Link check of the image failed: 13 needed files are not in it: ")
    assert "libm00.so.1 (needed by /usr/bin/p0, /usr/bin/q0, /usr/bin/q1 and 3 more; " \
           "provided by package libm00-1)" in text
    assert "libm09.so.1" in text and "libm10.so.1" not in text and text.endswith(", and 3 more.")


def test_require_links_raises_one_paragraph():
    tree = base_tree()
    tree.add_file("usr/bin/app", program("libssl.so.3"), 0o755)
    with pytest.raises(LinkError) as e:
        require_links(tree, what="the amd64 image")
    assert e.value.exit_code == 1
    assert "libssl.so.3 (needed by /usr/bin/app)" in str(e.value) and "\n" not in str(e.value)
    require_links(tree, ["/usr/bin/*"])  # nothing left to check: no error


def test_missing_from_search_path_but_elsewhere_says_where():
    tree = base_tree()
    tree.add_file(f"{LIBDIR}/blas/libblas.so.3", library("libblas.so.3"))
    tree.add_file("usr/bin/app", program("libblas.so.3"), 0o755)
    (missing,) = check_tree(tree)
    assert missing.note == f"/{LIBDIR}/blas/libblas.so.3 is in the image, but not where the " \
                           "loader looks"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_gcc_built_program_with_origin_runpath(tmp_path):
    (tmp_path / "foo.c").write_text("int foo(void) { return 42; }\n")
    (tmp_path / "app.c").write_text("int foo(void);\nint main(void) { return foo() != 42; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", "-o",
                    str(tmp_path / "libfoo.so.1"), str(tmp_path / "foo.c")], check=True)
    subprocess.run(["gcc", "-o", str(tmp_path / "app"), str(tmp_path / "app.c"),
                    str(tmp_path / "libfoo.so.1"), "-Wl,-rpath,$ORIGIN/../lib"], check=True)
    tree = Tree()
    # The host's real loader and libc, placed in the image like Debian does.
    for name in ("ld-linux-x86-64.so.2", "libc.so.6"):
        host = os.path.realpath(f"/lib/x86_64-linux-gnu/{name}")
        tree.add_file(f"{LIBDIR}/{name}", Path(host).read_bytes(), 0o755)
    tree.add_symlink("lib64/ld-linux-x86-64.so.2", f"/{LIBDIR}/ld-linux-x86-64.so.2")
    tree.add_file("opt/app/bin/app", (tmp_path / "app").read_bytes(), 0o755)
    tree.add_file("opt/app/lib/libfoo.so.1.0", (tmp_path / "libfoo.so.1").read_bytes())
    tree.add_symlink("opt/app/lib/libfoo.so.1", "libfoo.so.1.0")
    report = scan_tree(tree)
    assert report.missing == [] and report.checked >= 2
    tree.remove("opt/app/lib/libfoo.so.1.0")
    assert names(check_tree(tree)) == [("/opt/app/bin/app", "library", "libfoo.so.1")]


def jvm_like_tree() -> Tree:
    """A JRE's shape: bin/java finds lib/libjli.so by RUNPATH; libjli dlopens
    lib/server/libjvm.so, and the JVM dlopens lib/libjava.so, which needs libjvm.so."""
    tree = base_tree()
    home = "usr/lib/jvm/jre"
    tree.add_file(f"{LIBDIR}/libz.so.1", library("libz.so.1", "libc.so.6"))
    tree.add_file(f"{home}/bin/java", program("libz.so.1", "libjli.so", "libc.so.6",
                                              runpath="$ORIGIN:$ORIGIN/../lib"), 0o755)
    tree.add_file(f"{home}/lib/libjli.so", library("libjli.so", "libz.so.1", "libc.so.6",
                                                   runpath="$ORIGIN"))
    tree.add_file(f"{home}/lib/server/libjvm.so", library("libjvm.so", "libc.so.6"))
    tree.add_file(f"{home}/lib/libjava.so", library("libjava.so", "libjvm.so", "libc.so.6",
                                                    runpath="$ORIGIN"))
    tree.add_file(f"{home}/lib/libzip.so", library("libzip.so", "libjava.so", "libjvm.so",
                                                   "libz.so.1", runpath="$ORIGIN"))
    return tree


def test_plugins_load_with_what_their_host_application_loaded():
    with jvm_like_tree() as tree:
        assert check_tree(tree) == []


def test_a_plugin_host_needs_a_program_that_loads_from_its_directory():
    with jvm_like_tree() as tree:
        tree.remove("usr/lib/jvm/jre/bin/java")
        assert ("/usr/lib/jvm/jre/lib/libjava.so", "library", "libjvm.so") in \
            names(check_tree(tree))


def test_a_plugin_s_genuinely_missing_library_still_fails():
    with jvm_like_tree() as tree:
        tree.remove(f"{LIBDIR}/libz.so.1")
        missing = names(check_tree(tree))
        assert ("/usr/lib/jvm/jre/lib/libzip.so", "library", "libz.so.1") in missing
        assert ("/usr/lib/jvm/jre/bin/java", "library", "libz.so.1") in missing
    with jvm_like_tree() as tree:
        tree.remove("usr/lib/jvm/jre/lib/server/libjvm.so")
        assert {m[0] for m in names(check_tree(tree))} == {
            "/usr/lib/jvm/jre/lib/libjava.so", "/usr/lib/jvm/jre/lib/libzip.so"}


def test_a_provider_outside_the_plugin_s_directory_does_not_count():
    with jvm_like_tree() as tree:
        tree.add_file("opt/other/libhelper.so", library("libhelper.so", "libc.so.6"))
        tree.add_file("usr/lib/jvm/jre/lib/libuses.so", library("libuses.so", "libhelper.so"))
        assert names(check_tree(tree)) == [("/usr/lib/jvm/jre/lib/libuses.so", "library",
                                            "libhelper.so")]

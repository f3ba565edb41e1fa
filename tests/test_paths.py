"""paths applied to a tree: source copies, permissions that change only what they give."""

from __future__ import annotations

import os

import pytest
from hermetic import write_spec

from assembler.errors import SpecError
from assembler.rootfs.paths import APP_ORIGIN, apply_paths
from assembler.rootfs.tree import Tree
from assembler.spec.document import load_spec

BASE = "distro: debian/bookworm\ncontents:\n  packages: [python3]\n"


def _apply(tmp_path, text: str) -> Tree:
    tree = Tree()
    tree.add_file("usr/bin/tool", b"tool", 0o755, origin="tool")
    tree.add_dir("opt/data", 0o755, origin="tool")
    tree.add_file("opt/data/a", b"a", 0o644, 7, 7, origin="tool")
    apply_paths(tree, load_spec(write_spec(tmp_path, BASE + text)))
    return tree


def test_permissions_change_only_what_they_give(tmp_path):
    tree = _apply(tmp_path, "paths:\n  - {path: /usr/bin/tool, type: permissions, uid: 5}\n"
                  "  - {path: /opt/data, type: permissions, mode: '0700'}\n")
    tool = tree.get("usr/bin/tool")
    assert (tool.mode, tool.uid, tool.gid) == (0o755, 5, 0)
    assert tree.get("opt/data").mode == 0o700
    assert (tree.get("opt/data/a").mode, tree.get("opt/data/a").uid) == (0o644, 7)  # not recursive


def test_recursive_permissions_on_a_file_is_an_error(tmp_path):
    with pytest.raises(SpecError, match=r"image.yaml:5: recursive permissions .* not a direc"):
        _apply(tmp_path, "paths:\n  - {path: /usr/bin/tool, type: permissions, mode: '0700', "
                         "recursive: true}\n")


def test_source_tree_is_copied_in_sorted_order_as_app_content(tmp_path):
    src = tmp_path / "src"
    (src / "b").mkdir(parents=True)
    (src / "b" / "z").write_bytes(b"z")
    (src / "a").write_bytes(b"a")
    for path, mode in ((src, 0o755), (src / "b", 0o755), (src / "b" / "z", 0o644),
                       (src / "a", 0o751)):
        os.chmod(path, mode)   # the test's umask is not the copy's business
    os.symlink("/usr/bin/tool", src / "tool")
    tree = _apply(tmp_path, "paths: [{path: /srv, type: directory, source: src, uid: 9}]\n")
    got = [(e.path, e.kind, e.mode, e.uid, e.origin) for e in tree.entries()
           if e.path.startswith("srv")]
    assert got == [("srv", "dir", 0o755, 9, APP_ORIGIN), ("srv/a", "file", 0o751, 9, APP_ORIGIN),
                   ("srv/b", "dir", 0o755, 9, APP_ORIGIN),
                   ("srv/b/z", "file", 0o644, 9, APP_ORIGIN),
                   ("srv/tool", "symlink", 0o777, 9, APP_ORIGIN)]
    assert tree.read("srv/b/z") == b"z" and tree.get("srv/tool").link == "/usr/bin/tool"


def test_a_fifo_or_an_escaping_link_in_a_source_is_refused(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    os.mkfifo(src / "pipe")
    with pytest.raises(SpecError, match=r"image.yaml:4: .*pipe is neither a file"):
        _apply(tmp_path, "paths: [{path: /srv, type: directory, source: src}]\n")
    os.unlink(src / "pipe")
    os.symlink("../../../../etc/shadow", src / "evil")
    with pytest.raises(SpecError, match=r"image.yaml:4: .*above the image root"):
        _apply(tmp_path, "paths: [{path: /srv, type: directory, source: src}]\n")

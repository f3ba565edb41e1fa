"""Files Debian's maintainer scripts create rather than ship, for whole-package images.

libc-bin's postinst writes /etc/nsswitch.conf (no package ships it), and /run is made
by the init system of a booted system; a container runtime mounts over /run at most,
so programs that expect it (a pid file, a socket) need the directory in the image.
"""

from __future__ import annotations

from assembler.rootfs.tree import Tree

# What libc-bin's postinst writes minus the systemd modules: users and hosts from files,
# hosts then DNS. Go and glibc programs read it, static ones too.
NSSWITCH = ("passwd: files\ngroup: files\nshadow: files\ngshadow: files\n"
            "hosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n"
            "ethers: files\nrpc: files\n")


def write_skeleton(tree: Tree) -> None:
    """/etc/nsswitch.conf and /run, where the image has none (a slice's or package's wins)."""
    if tree.get("etc/nsswitch.conf") is None:
        tree.add_file("etc/nsswitch.conf", NSSWITCH.encode(), 0o644)
    if tree.get("run") is None:
        tree.add_dir("run", 0o755)

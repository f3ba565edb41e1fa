"""Files Debian's maintainer scripts create rather than ship, for whole-package images.

libc-bin's postinst writes /etc/nsswitch.conf (no package ships it), python3's writes
/etc/python3/debian_config (which py3compile and dh_python read), and /run is made
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


# python3's postinst writes this when the file is missing, byte for byte.
PYTHON3_CONFIG = ("[DEFAULT]\n# how to byte-compile (comma separated: standard, optimize)\n"
                  "byte-compile = standard\n")


def write_skeleton(tree: Tree) -> None:
    """/etc/nsswitch.conf and /run, where the image has none (a slice's or package's wins);
    /etc/python3/debian_config where python3's own files are."""
    if tree.get("etc/nsswitch.conf") is None:
        tree.add_file("etc/nsswitch.conf", NSSWITCH.encode(), 0o644)
    if tree.get("run") is None:
        tree.add_dir("run", 0o755)
    # The python3 package ships debian_defaults; its postinst then writes the config.
    if tree.get("usr/share/python3/debian_defaults") is not None \
            and tree.get("etc/python3/debian_config") is None:
        tree.add_file("etc/python3/debian_config", PYTHON3_CONFIG.encode(), 0o644)

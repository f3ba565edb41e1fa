"""The origin grouping rule on its own: by source package, budget, order, stability."""

from __future__ import annotations

import random

from assembler.image.layering import Member, group_packages

# A python3-like image: glibc and gcc-12 need each other; data packages need nothing.
MEMBERS = [
    Member("libc6", "glibc", ("libgcc-s1", "libssl3", "libpython3.11", "zlib1g", "libexpat1")),
    Member("libc-bin", "glibc", ()),
    Member("libgcc-s1", "gcc-12", ("libc6",)),
    Member("libssl3", "openssl", ("libpython3.11",)),
    Member("zlib1g", "zlib", ("libpython3.11",)),
    Member("libexpat1", "expat", ("libpython3.11",)),
    Member("libpython3.11", "python3.11", ("python3.11",)),
    Member("python3.11", "python3.11", ("requested",)),
    Member("tzdata", "tzdata", ("requested",)),
    Member("base-files", "base-files", ("requested",)),
]
SIZES = {"libc6": 12_000_000, "libc-bin": 2_000_000, "libgcc-s1": 150_000,
         "libssl3": 5_000_000, "zlib1g": 180_000, "libexpat1": 300_000,
         "libpython3.11": 9_000_000, "python3.11": 1_000_000, "tzdata": 3_000_000,
         "base-files": 60_000}


def test_one_layer_per_source_package_foundations_first():
    assert group_packages(MEMBERS, 10, SIZES) == [
        ["base-files"], ["libgcc-s1"], ["libc-bin", "libc6"], ["tzdata"],   # height 0
        ["libexpat1"], ["libssl3"], ["zlib1g"],                             # need glibc
        ["libpython3.11", "python3.11"]]                                   # needs those


def test_over_budget_the_largest_stand_alone_and_small_ones_share():
    layers = group_packages(MEMBERS, 4, SIZES)
    assert layers == [["libc-bin", "libc6"], ["libssl3"], ["libpython3.11", "python3.11"],
                      ["base-files", "libexpat1", "libgcc-s1", "tzdata", "zlib1g"]]


def test_deterministic_and_stable_under_a_bump():
    for budget in (1, 3, 4, 10):
        want = group_packages(MEMBERS, budget, SIZES)
        shuffled = MEMBERS[:]
        random.Random(budget).shuffle(shuffled)
        assert group_packages(shuffled, budget, SIZES) == want
        # A new version a few percent larger or smaller moves nothing.
        for name in SIZES:
            for factor in (0.97, 1.03):
                bumped = dict(SIZES, **{name: int(SIZES[name] * factor)})
                assert group_packages(MEMBERS, budget, bumped) == want, (budget, name)


def test_budget_one_is_one_package_layer():
    assert group_packages(MEMBERS, 1, SIZES) == [sorted(SIZES)]


def test_a_bump_leaves_the_generated_and_app_layers_alone(tmp_path):
    """A generated file under a package's directory (java's /usr/bin/java alternative)
    takes that directory into the generated layer; the directory's mtime in the tree is
    the newest package's, so dated from the tree a bump would re-send the generated layer
    too (found by bench/layering_bench.py on the bookworm java image); so would an app
    under /usr/local."""
    from assembler.image.layering import write_layers
    from assembler.progress import Progress
    from assembler.rootfs.paths import APP_ORIGIN
    from assembler.rootfs.tree import Tree
    from assembler.spec.document import Layering

    members = [Member("zlib1g", "zlib", ("requested",)), Member("libc6", "glibc", ())]

    def layers(zlib_mtime: int) -> list[str]:
        with Tree() as t:
            t.add_dir("usr", origin="libc6", mtime=1_600_000_000)
            t.add_file("usr/lib/libc.so.6", b"libc", origin="libc6", mtime=1_600_000_000)
            t.add_dir("usr", origin="zlib1g", mtime=zlib_mtime)
            t.add_file("usr/lib/libz.so.1", b"zlib", origin="zlib1g", mtime=zlib_mtime)
            t.add_symlink("usr/bin/java", "/etc/alternatives/java")   # generated
            t.add_file("usr/local/bin/app", b"app", origin=APP_ORIGIN)
            out = tmp_path / str(zlib_mtime)
            out.mkdir()
            written, history = write_layers(t, members, Layering("origin", 10), out / "image",
                                            "gzip", 1_700_000_000, Progress(quiet=True))
        assert history is not None and history[-2].startswith("generated")
        assert history[-1].startswith("app")
        return [layer.digest for layer in written]

    before, after = layers(1_650_000_000), layers(1_660_000_000)   # zlib 1.2.13 -> +deb12u1
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed == [len(before) - 3]   # zlib's layer (the last package layer) alone

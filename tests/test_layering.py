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

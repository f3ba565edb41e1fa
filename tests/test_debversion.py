"""assembler.debian.version.compare agrees with dpkg.

- test_edge_cases: hand-picked cases; expected values were produced once by
  `dpkg --compare-versions` (dpkg 1.21.22) and are hard-coded.
- test_agrees_with_dpkg_on_bookworm_index (network): >= 2,000 pairs drawn
  (seeded) from the real bookworm/bookworm-updates/bookworm-security amd64
  indexes, fetched by tests/aptsim.py's cached private apt root, checked
  against the host's dpkg.
"""

from __future__ import annotations

import random
import re
import shlex
import shutil
import subprocess
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

from assembler.debian.version import compare, satisfies

EDGE_CASES = [
    ("1.0", "1.0", 0),
    ("1.0", "1.0-0", 0),
    ("1.0-0", "1.0", 0),
    ("1.0", "1.00", 0),
    ("1.0", "1.0.0", -1),
    ("1.0~rc1", "1.0", -1),
    ("1.0~~", "1.0~", -1),
    ("1.0~", "1.0", -1),
    ("1.0~~a", "1.0~~", 1),
    ("1.0~rc1", "1.0~beta1", 1),
    ("1.0+b1", "1.0", 1),
    ("1.0-1", "1.0-1+b1", -1),
    ("1.0-1+b1", "1.0-1+b2", -1),
    ("2.36-9+deb12u10", "2.36-9+deb12u9", 1),
    ("2.36-9+deb12u1", "2.36-9", 1),
    ("1.2.3-1~deb12u1", "1.2.3-1", -1),
    ("1.2.3-1~deb12u1", "1.2.3-0+deb12u1", 1),
    ("3.0.11-1~deb12u2", "3.0.11-1", -1),
    ("1:1.0", "2.0", 1),
    ("1:1.0", "1:1.0", 0),
    ("0:1.0", "1.0", 0),
    ("2:0.1", "1:9.9", 1),
    ("10:1", "9:1", 1),
    ("1.0a", "1.0", 1),
    ("1.0a", "1.0b", -1),
    ("1.0a", "1.0+", -1),
    ("1.0+", "1.0.", -1),
    ("1.0-1", "1.0.1", -1),
    ("1.0-1", "1.0-1a", -1),
    ("1.0-a", "1.0-1", 1),
    ("1.0-1.1", "1.0-1+", 1),
    ("0.0001", "1", -1),
    ("1.0-1ubuntu1", "1.0-1+deb12u1", -1),
    ("2025b-0+deb12u1", "2025a-0+deb12u1", 1),
    ("9.2p1-2+deb12u5", "9.2p1-2+deb12u10", -1),
    ("1.2.13.dfsg-1", "1.2.13-1", 1),
    ("1:1.2.13.dfsg-1", "1.2.13.dfsg-1", 1),
    ("0~20230101", "0", -1),
    ("1.0~rc1-1", "1.0-1~", -1),
    ("7.88.1-10+deb12u12", "7.88.1-10+deb12u5", 1),
    ("1.0-1-2", "1.0-1", 1),
    ("1.0-1-2", "1.0-1-10", -1),
    ("1.0.", "1.0-1", 1),
    ("1A", "1a", -1),
    ("1Z", "1a", -1),
    ("1z", "1+", -1),
    ("1:0", "0:9", 1),
    ("1.0-1", "1.0-1.0", -1),
    ("1.0-1.0", "1.0-1.0.0", -1),
    ("1.0-0.1", "1.0", 1),
    ("1.0-~", "1.0", -1),
    ("00:1.0", "0:1.0", 0),
    ("1.0-00", "1.0", 0),
    ("18446744073709551616", "18446744073709551615", 1),
    ("1.0+dfsg1-1", "1.0-1", 1),
    ("1.0+really0.9-1", "1.0-1", 1),
    ("0.9+really1.0-1", "1.0~-1", -1),
]


@pytest.mark.parametrize(("a", "b", "expected"), EDGE_CASES)
def test_edge_cases(a: str, b: str, expected: int) -> None:
    assert compare(a, b) == expected
    assert compare(b, a) == -expected


def test_satisfies() -> None:
    assert satisfies("1.0-1", ">=", "1.0")
    assert satisfies("1.0~rc1", "<<", "1.0")
    assert not satisfies("1.0~rc1", ">=", "1.0")
    assert satisfies("1:0.1", ">>", "9.9")
    assert satisfies("1.0", "=", "0:1.0-0")
    with pytest.raises(ValueError):
        satisfies("1", "!=", "1")


# --------------------------------------------------------------------------- real index

SEED = 20250520


def _index_versions() -> tuple[dict[str, set[str]], list[tuple[str, str]]]:
    """({package: versions across suites}, [(binary version, source version)])."""
    from aptsim import real_apt_root

    root = real_apt_root()
    by_pkg: dict[str, set[str]] = defaultdict(set)
    bin_src: list[tuple[str, str]] = []
    for path in root.lists():
        if not path.name.endswith("_Packages"):
            continue
        name = version = source = None
        for line in path.read_text(errors="replace").splitlines() + [""]:
            if not line:
                if name and version:
                    by_pkg[name].add(version)
                    if source:
                        bin_src.append((version, source))
                name = version = source = None
            elif line.startswith("Package: "):
                name = line[9:].strip()
            elif line.startswith("Version: "):
                version = line[9:].strip()
            elif line.startswith("Source: "):
                m = re.search(r"\((\S+)\)", line)
                source = m.group(1) if m else None
    return by_pkg, bin_src


def _pairs() -> list[tuple[str, str]]:
    by_pkg, bin_src = _index_versions()
    rng = random.Random(SEED)
    versions = sorted({v for vs in by_pkg.values() for v in vs})
    assert len(versions) > 10_000, "the bookworm index looks incomplete"
    pairs: list[tuple[str, str]] = []

    def sample(seq, k):
        seq = list(seq)
        return rng.sample(seq, min(k, len(seq)))

    # same package, different versions (bookworm vs -updates vs -security)
    multi = [sorted(vs) for _, vs in sorted(by_pkg.items()) if len(vs) > 1]
    for vs in sample(multi, 400):
        pairs.append(tuple(rng.sample(vs, 2)))
    # binNMUs and other binary-vs-source version differences (+b1 ...)
    pairs += sample(sorted(set(bin_src)), 300)
    # epochs against epochs, and against the same version without the epoch
    epochs = [v for v in versions if ":" in v]
    pairs += [(v, rng.choice(versions)) for v in sample(epochs, 150)]
    pairs += [(v, v.split(":", 1)[1]) for v in sample(epochs, 100)]
    pairs += [(rng.choice(epochs), rng.choice(epochs)) for _ in range(100)]
    # tildes, ~deb12u / +deb12u stable updates, binNMU suffixes
    tilde = [v for v in versions if "~" in v]
    pairs += [(v, v.replace("~", "", 1)) for v in sample(tilde, 150)]
    pairs += [(v, v.replace("~", "+", 1)) for v in sample(tilde, 100)]
    deb12 = [v for v in versions if re.search(r"[~+]deb12u\d+", v)]
    pairs += [(v, re.sub(r"[~+]deb12u\d+", "", v)) for v in sample(deb12, 100)]
    pairs += [(v, re.sub(r"deb12u(\d+)", lambda m: f"deb12u{int(m[1]) + 9}", v))
              for v in sample(deb12, 100)]
    binnmu = [v for v in versions if re.search(r"\+b\d+$", v)]
    pairs += [(v, re.sub(r"\+b\d+$", "", v)) for v in sample(binnmu, 100)]
    # neighbours in string order share long prefixes: the hard cases
    idx = sample(range(len(versions) - 1), 500)
    pairs += [(versions[i], versions[i + 1]) for i in idx]
    # suffix mutations of real versions
    for v in sample(versions, 200):
        pairs.append((v, v + rng.choice(["~", "~~", "+b1", "a", ".0", "~rc1", "+", "0"])))
    # plain random pairs, and a few identical ones
    pairs += [(rng.choice(versions), rng.choice(versions)) for _ in range(500)]
    pairs += [(v, v) for v in sample(versions, 30)]
    # both orders for part of the set, then dedupe preserving order
    pairs += [(b, a) for a, b in sample(pairs, 200)]
    return list(dict.fromkeys((a, b) for a, b in pairs))


def _dpkg_compare_many(pairs: list[tuple[str, str]], workers: int = 8) -> list[int]:
    """dpkg's answer (-1/0/1) for each pair, via a few batched sh loops."""

    def run(chunk: list[tuple[str, str]]) -> list[int]:
        script = "".join(
            f"if dpkg --compare-versions {shlex.quote(a)} lt {shlex.quote(b)}; then echo -1; "
            f"elif dpkg --compare-versions {shlex.quote(a)} eq {shlex.quote(b)}; then echo 0; "
            f"else echo 1; fi\n"
            for a, b in chunk
        )
        cp = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True,
                            check=True, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})
        assert not cp.stderr.strip(), cp.stderr  # no invalid versions slipped in
        out = [int(x) for x in cp.stdout.split()]
        assert len(out) == len(chunk)
        return out

    size = -(-len(pairs) // workers)
    chunks = [pairs[i : i + size] for i in range(0, len(pairs), size)]
    with ThreadPoolExecutor(workers) as pool:
        return [r for part in pool.map(run, chunks) for r in part]


@pytest.mark.network
@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg")
def test_agrees_with_dpkg_on_bookworm_index() -> None:
    pairs = _pairs()
    assert len(pairs) >= 2000, len(pairs)
    expected = _dpkg_compare_many(pairs)
    wrong = [(a, b, compare(a, b), want) for (a, b), want in zip(pairs, expected, strict=True)
             if compare(a, b) != want]
    assert not wrong, f"{len(wrong)} of {len(pairs)} disagree, e.g. {wrong[:10]}"
    # the sample really exercises all outcomes
    assert {-1, 0, 1} <= set(expected)

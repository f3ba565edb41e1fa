"""chisel's release rules, case by case: each release here is accepted or refused as chisel
accepts or refuses it (the facts come from chisel's internal/setup tests; the cases and
their wording are ours). A case is a chisel-releases checkout: chisel.yaml plus
slices/; the default chisel.yaml is a format v1 release with one archive."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from assembler.distro.chisel import read_release
from assembler.errors import SpecError
from assembler.slices.catalog import Catalog

ARCHIVE = """\
archives:
  ubuntu:
    version: 22.04
    components: [main, universe]
    suites: [jammy]
    public-keys: [test-key]
"""

# chisel-releases' base-passwd, whose mutate script a generator covers (slices/mutate.py).
BASE_PASSWD = """\
package: base-passwd

slices:
  data:
    contents:
      /etc/group: {text: FIXME, mutable: true}
      /etc/passwd: {text: FIXME, mutable: true}
      /usr/share/base-passwd/group.master: {until: mutate}
      /usr/share/base-passwd/passwd.master: {until: mutate}
    mutate: |
      gr = content.read("/usr/share/base-passwd/group.master")
      content.write("/etc/group", gr)
      pw = content.read("/usr/share/base-passwd/passwd.master")
      content.write("/etc/passwd", pw)

  copyright:
    contents:
      /usr/share/doc/base-passwd/copyright:
"""


def _keys(key) -> str:
    armor = textwrap.indent(key.public_armored, " " * 6)
    return f"public-keys:\n  test-key:\n    id: \"{key.fingerprint[-16:].upper()}\"\n" \
           f"    armor: |\n{armor}"


def chisel_yaml(key, fmt: str = "v1", archives: str = ARCHIVE, extra: str = "") -> str:
    return f"format: {fmt}\n{archives}{extra}{_keys(key)}"


def _release(tmp: Path, key, files: dict[str, str], fmt: str = "v1") -> Path:
    files = dict(files)
    files.setdefault("chisel.yaml", chisel_yaml(key, fmt))
    for name, text in files.items():
        p = tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        wrong = re.sub(r'id: "[0-9A-F]+"', 'id: "9568570379BF1F43"', _keys(key))
        p.write_text(textwrap.dedent(text).replace("{KEYS}", _keys(key))
                     .replace("{WRONG-ID-KEYS}", wrong))
    (tmp / "slices").mkdir(exist_ok=True)
    return tmp


def load(tmp: Path, key, files: dict[str, str], fmt: str = "v1") -> Catalog:
    root = _release(tmp, key, files, fmt)
    read_release(root / "chisel.yaml")
    return Catalog.load(root / "slices")


def pkg(name: str, body: str) -> dict[str, str]:
    return {f"slices/mydir/{name}.yaml": f"package: {name}\n" + textwrap.dedent(body)}


def pkgs(*parts: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in parts:
        out.update(p)
    return out


ONE = "slices:\n  myslice:\n    contents:\n"


def contents(name: str, *lines: str, slice_: str = "myslice") -> dict[str, str]:
    return pkg(name, f"slices:\n  {slice_}:\n    contents:\n"
                     + "".join(f"      {line}\n" for line in lines))


# (id, format, files, refusal regex or None when chisel accepts)
CASES: list[tuple[str, str, dict[str, str], str | None]] = [
    # -- definition files ---------------------------------------------------------------
    ("package-name-disagrees", "v1", {"slices/mydir/mypkg.yaml": "package: myotherpkg\n"},
     r"filename and 'package' field \('myotherpkg'\) disagree"),
    ("many-path-kinds", "v1", pkg("mypkg", """\
        slices:
          myslice1:
            contents:
              /file/path1:
              /file/path2: {copy: /other/path}
              /file/path3: {symlink: /other/path}
              /file/path4: {text: content, until: mutate}
              /file/path5: {mode: 0755, mutable: true}
              /file/path6/: {make: true}
          myslice2:
            essential: [mypkg_myslice1]
            contents:
              /another/path:
          myslice3:
            mutate: something
        """), None),
    ("empty-contents", "v1", pkg("mypkg", "slices:\n  myslice1:\n  myslice2:\n    contents:\n"),
     None),
    ("short-package-name", "v1", contents("jq", "/usr/bin/jq:"), None),
    ("package-name-too-short", "v1", {"slices/a.yaml": "package: a\n"},
     r"invalid slice definition filename"),
    ("slice-name-too-short", "v1", pkg("mypkg", "slices:\n  cc:\n"),
     r"invalid slice name 'cc' in .*mypkg.yaml \(must start with a-z, len >= 3"),
    ("hint-too-long", "v1", pkg("mypkg", "slices:\n  slice1:\n    hint: " + "A" * 41 + "\n"),
     r"slice mypkg_slice1 has invalid hint 'A{41}'"),
    ("hint-line-breaks", "v1", pkg("mypkg", "slices:\n  slice1:\n    hint: |\n"
                                            "      On\n      multiple\n      lines.\n"),
     r"slice mypkg_slice1 has invalid hint"),
    ("hint-tabs", "v1", pkg("mypkg", "slices:\n  slice1:\n    hint: \"Seperated\\tby\\ttabs.\"\n"),
     r"slice mypkg_slice1 has invalid hint"),
    ("hint-accepted", "v1", pkg("mypkg", "slices:\n  slice1:\n    hint: Run scripts (sh)\n"),
     None),
    ("defined-twice-in-two-dirs", "v1",
     {"slices/dir1/mypkg.yaml": "package: mypkg\n", "slices/dir2/mypkg.yaml": "package: mypkg\n"},
     r"package 'mypkg' slices defined more than once: .*dir1/mypkg.yaml and .*dir2/mypkg.yaml"),
    ("unknown-keys-ignored", "v1", pkg("mypkg", """\
        madeUpKey3: whatever
        slices:
          myslice:
            madeUpKey4: whatever
            content:
              /typo: {}
            contents:
              /path: {madeUpKey5: whatever}
        """), None),
    # -- paths ---------------------------------------------------------------------------
    ("make-needs-slash", "v1", contents("mypkg", "/foo: {make: true}"),
     r"slice mypkg_myslice path /foo must end in / for 'make' to be valid"),
    ("path-not-clean", "v1", contents("mypkg", "/foo/../:"),
     r"slice mypkg_myslice has invalid content path: /foo/\.\./"),
    ("path-not-absolute", "v1", contents("mypkg", "./foo/:"),
     r"slice mypkg_myslice has invalid content path: \./foo/"),
    ("globs", "v1", pkg("mypkg", "slices:\n  myslice1:\n    contents:\n      /file/*:\n"
                                 "  myslice2:\n    contents:\n      /another/**:\n"), None),
    ("glob-options", "v1", contents("mypkg", "/file/foob*r: {mutable: true}"),
     r"slice mypkg_myslice path /file/foob\*r has invalid wildcard options"),
    ("glob-until", "v1", contents("mypkg", "/file/*: {until: mutate}"), None),
    ("glob-arch", "v1", contents("mypkg", "/file/*: {arch: amd64}"), None),
    ("mutable-dir-extract", "v1", contents("mypkg", "/path/: {mutable: true}"),
     r"slice mypkg_myslice mutable is not a regular file: /path/"),
    ("mutable-dir-make", "v1", contents("mypkg", "/path/: {make: true, mutable: true}"),
     r"slice mypkg_myslice mutable is not a regular file: /path/"),
    ("mutable-symlink", "v1", contents("mypkg", "/path: {symlink: /other, mutable: true}"),
     r"slice mypkg_myslice mutable is not a regular file: /path"),
    ("mutable-text", "v1", contents("mypkg", "/path: {text: FIXME, mutable: true}"), None),
    ("until-value", "v1", contents("mypkg", "/path: {until: foo}"),
     r"slice mypkg_myslice has invalid 'until' for path /path: 'foo'"),
    ("arch-value", "v1", contents("mypkg", "/path: {arch: foo}"),
     r"slice mypkg_myslice has invalid 'arch' for path /path: 'foo'"),
    ("arch-list-value", "v1", contents("mypkg", "/path: {arch: [i386, foo]}"),
     r"slice mypkg_myslice has invalid 'arch' for path /path: 'foo'"),
    ("arch-lists", "v1", contents("mypkg", "/path: {arch: [amd64, arm64, s390x]}",
                                  "/other: {arch: riscv64}"), None),
    ("text-empty", "v1", contents("mypkg", "/nonempty: {text: \"\"}"), None),
    ("two-kinds", "v1", contents("mypkg", "/path: {text: a, symlink: /b}"),
     r"conflict in slice mypkg_myslice definition for path /path: text, symlink"),
    # -- conflicts -----------------------------------------------------------------------
    ("matching-paths", "v1", pkgs(pkg("mypkg1", """\
        slices:
          myslice1:
            contents:
              /path1:
              /path2: {text: same}
              /path3: {symlink: /link}
          myslice2:
            contents:
              /path1: {copy: /path1}
              /path2: {text: same}
              /path3: {symlink: /link}
        """), contents("mypkg2", "/path2: {text: same}", "/path3: {symlink: /link}",
                       slice_="myslice1")), None),
    ("paths-across-slices", "v1", pkg("mypkg1", """\
        slices:
          myslice1:
            contents:
              /path1:
          myslice2:
            contents:
              /path1: {copy: /other}
        """), r"slices mypkg1_myslice1 and mypkg1_myslice2 conflict on /path1"),
    ("paths-across-packages", "v1",
     pkgs(contents("mypkg1", "/path1:", slice_="myslice1"),
          contents("mypkg2", "/path1:", slice_="myslice1")),
     r"slices mypkg1_myslice1 and mypkg2_myslice1 conflict on /path1"),
    ("text-differs", "v1", pkgs(contents("mypkg1", "/path: {text: a}"),
                                contents("mypkg2", "/path: {text: b}")),
     r"slices mypkg1_myslice and mypkg2_myslice conflict on /path"),
    ("mode-differs", "v1", pkgs(contents("mypkg1", "/path/: {make: true, mode: 0755}"),
                                contents("mypkg2", "/path/: {make: true, mode: 0700}")),
     r"conflict on /path/"),
    ("same-dir-made", "v1", pkgs(contents("mypkg1", "/path/: {make: true}"),
                                 contents("mypkg2", "/path/: {make: true}")), None),
    ("globs-conflict", "v1", pkgs(contents("mypkg1", "/file/f*obar:"),
                                  contents("mypkg2", "/file/foob*r:")),
     r"slices mypkg1_myslice and mypkg2_myslice conflict on /file/f\*obar and /file/foob\*r"),
    ("glob-and-copy", "v1", pkgs(contents("mypkg1", "/file/foobar:"),
                                 contents("mypkg2", "/file/foob*r:")),
     r"slices mypkg1_myslice and mypkg2_myslice conflict on /file/foobar and /file/foob\*r"),
    ("same-glob", "v1", pkgs(contents("mypkg1", "/file/foob*r:"),
                             contents("mypkg2", "/file/foob*r:")),
     r"slices mypkg1_myslice and mypkg2_myslice conflict on /file/foob\*r"),
    ("globs-same-package", "v1", pkg("mypkg", """\
        slices:
          myslice1:
            contents:
              /file/*:
          myslice2:
            contents:
              /file/f*:
              /file/foo:
        """), None),
    ("glob-and-text-same-package", "v1", pkg("test-package", """\
        slices:
          myslice1:
            contents:
              /dir/**:
          myslice2:
            contents:
              /dir/file: {text: "foo"}
        """), r"slices test-package_myslice1 and test-package_myslice2 conflict on "
              r"/dir/\*\* and /dir/file"),
    ("star-stays-in-component", "v1", pkgs(contents("mypkg1", "/usr/lib/*/x:"),
                                           contents("mypkg2", "/usr/lib/a/b/x:")), None),
    ("double-star-crosses", "v1", pkgs(contents("mypkg1", "/usr/lib/**/x:"),
                                       contents("mypkg2", "/usr/lib/a/b/x:")),
     r"conflict on /usr/lib/\*\*/x and /usr/lib/a/b/x"),
    ("glob-and-directory", "v1", pkgs(contents("mypkg1", "/usr/share/**:"),
                                      contents("mypkg2", "/usr/share/doc/:")),
     r"conflict on /usr/share/\*\* and /usr/share/doc/"),
    # -- essentials ----------------------------------------------------------------------
    ("cycle-in-package", "v1", pkg("mypkg", """\
        slices:
          myslice1:
            essential: [mypkg_myslice2]
          myslice2:
            essential: [mypkg_myslice3]
          myslice3:
            essential: [mypkg_myslice1]
        """), r"essential loop detected: mypkg_myslice1, mypkg_myslice2, mypkg_myslice3"),
    ("cycle-across-packages", "v1", pkgs(
        pkg("mypkg1", "slices:\n  myslice:\n    essential: [mypkg2_myslice]\n"),
        pkg("mypkg2", "slices:\n  myslice:\n    essential: [mypkg3_myslice]\n"),
        pkg("mypkg3", "slices:\n  myslice:\n    essential: [mypkg1_myslice]\n")),
     r"essential loop detected: mypkg1_myslice, mypkg2_myslice, mypkg3_myslice"),
    ("missing-package", "v1", pkg("mypkg1", "slices:\n  myslice:\n    essential: "
                                            "[mypkg2_myslice]\n"),
     r"mypkg1_myslice requires mypkg2_myslice, but slice is missing"),
    ("missing-slice", "v1", pkg("mypkg", "slices:\n  myslice1:\n    essential: "
                                         "[mypkg_myslice2]\n"),
     r"mypkg_myslice1 requires mypkg_myslice2, but slice is missing"),
    ("dependencies", "v1", pkgs(
        pkg("mypkg1", "slices:\n  myslice1:\n    essential: [mypkg2_myslice1]\n"
                      "    contents:\n      /a:\n"),
        contents("mypkg2", "/b:", slice_="myslice1")), None),
    ("package-essential-own-slice", "v1", pkg("mypkg", """\
        essential: [mypkg_slice1]
        slices:
          slice1:
          slice2:
        """), None),
    ("package-essential-other-package", "v1", pkgs(
        pkg("mypkg", "essential: [myotherpkg_slice1]\nslices:\n  slice1:\n"),
        pkg("myotherpkg", "slices:\n  slice1:\n")), None),
    ("package-essentials-loop", "v1", pkg("mypkg", """\
        essential: [mypkg_slice1, mypkg_slice2]
        slices:
          slice1:
          slice2:
        """), r"essential loop detected: mypkg_slice1, mypkg_slice2"),
    ("essential-itself", "v1", pkg("mypkg", "slices:\n  slice1:\n    essential: "
                                            "[mypkg_slice1]\n"),
     r"cannot add slice to itself as essential mypkg_slice1"),
    ("package-and-slice-essential-clash", "v1", pkg("mypkg", """\
        essential: [mypkg_slice2]
        slices:
          slice1:
            essential: [mypkg_slice2]
          slice2:
        """), r"slice mypkg_slice1 repeats mypkg_slice2 in essential fields"),
    ("slice-essential-twice", "v1", pkg("mypkg", """\
        slices:
          slice1:
            essential: [mypkg_slice2, mypkg_slice2]
          slice2:
        """), r"repeats mypkg_slice2 in essential fields"),
    ("package-essential-twice", "v1", pkg("mypkg", """\
        essential: [mypkg_slice1, mypkg_slice1]
        slices:
          slice1:
        """), r"repeats mypkg_slice1 in essential fields"),
    ("bad-reference-slice", "v1", pkg("mypkg", "slices:\n  slice1:\n    essential: "
                                               "[mypkg-slice]\n"),
     r"package 'mypkg' has invalid essential slice reference: 'mypkg-slice'"),
    ("bad-reference-package", "v1", pkg("mypkg", "essential: [mypkg-slice]\nslices:\n"
                                                 "  slice1:\n"),
     r"package 'mypkg' has invalid essential slice reference: 'mypkg-slice'"),
    ("v3-essential-with-arch", "v1", pkg("mypkg", """\
        v3-essential:
          mypkg_myslice4: {arch: [amd64, i386]}
        slices:
          myslice1:
            v3-essential:
              mypkg_myslice2: {arch: amd64}
              mypkg_myslice3: {arch: [amd64, arm64]}
              mypkg_myslice5:
          myslice2:
          myslice3:
          myslice4:
          myslice5:
        """), None),
    ("essential-and-v3-essential-slice", "v1", pkg("mypkg", """\
        slices:
          myslice1:
            essential: [mypkg_myslice2]
            v3-essential:
              mypkg_myslice2: {arch: [amd64, i386]}
          myslice2:
        """), r"slice mypkg_myslice1 repeats mypkg_myslice2 in essential fields"),
    ("essential-and-v3-essential-package", "v1", pkg("mypkg", """\
        essential: [mypkg_myslice2]
        v3-essential:
          mypkg_myslice2: {arch: [amd64, i386]}
        slices:
          myslice1:
          myslice2:
        """), r"package 'mypkg' repeats mypkg_myslice2 in essential fields"),
    ("cycle-through-v3-essential", "v1", pkgs(
        pkg("mypkg1", "slices:\n  myslice:\n    v3-essential:\n"
                      "      mypkg2_myslice: {arch: amd64}\n"),
        pkg("mypkg2", "slices:\n  myslice:\n    v3-essential:\n"
                      "      mypkg1_myslice: {arch: arm64}\n")),
     r"essential loop detected: mypkg1_myslice, mypkg2_myslice"),
    ("v3-map-expected-package-list", "v3", pkg("mypkg", "essential: [mypkg_myslice2]\n"
                                                         "slices:\n  myslice1:\n  myslice2:\n"),
     r"cannot parse package 'mypkg': essential expects a map"),
    ("v3-map-expected-package-string", "v3", pkg("mypkg", "essential: mypkg_myslice2\n"
                                                           "slices:\n  myslice1:\n"
                                                           "  myslice2:\n"),
     r"cannot parse package 'mypkg': essential expects a map"),
    ("v3-map-expected-slice-list", "v3", pkg("mypkg", "slices:\n  myslice1:\n    essential: "
                                                       "[mypkg_myslice2]\n  myslice2:\n"),
     r"cannot parse slice mypkg_myslice1: essential expects a map"),
    ("v3-map-expected-slice-string", "v3", pkg("mypkg", "slices:\n  myslice:\n    essential: "
                                                         "mypkg_other\n  other:\n"),
     r"cannot parse slice mypkg_myslice: essential expects a map"),
    ("v3-no-v3-essential-package", "v3", pkg("mypkg", "v3-essential:\n  mypkg_myslice2:\n"
                                                       "slices:\n  myslice1:\n  myslice2:\n"),
     r"cannot parse package 'mypkg': v3-essential is obsolete since format v3"),
    ("v3-no-v3-essential-slice", "v3", pkg("mypkg", "slices:\n  myslice1:\n    v3-essential:\n"
                                                     "      mypkg_myslice2:\n  myslice2:\n"),
     r"cannot parse slice mypkg_myslice1: v3-essential is obsolete since format v3"),
    ("v3-map-accepted", "v3", pkg("mypkg", """\
        essential:
          mypkg_myslice2: {arch: [amd64]}
        slices:
          myslice1:
            essential:
              mypkg_myslice3:
          myslice2:
          myslice3:
        """), None),
    ("v2-list-expected-package", "v2", pkg("mypkg", "essential:\n  mypkg_myslice2: {}\n"
                                                     "slices:\n  myslice1:\n  myslice2:\n"),
     r"cannot parse package 'mypkg': essential expects a list"),
    ("v1-list-expected-slice", "v1", pkg("mypkg", "slices:\n  myslice1:\n    essential:\n"
                                                   "      mypkg_myslice2: {}\n  myslice2:\n"),
     r"cannot parse slice mypkg_myslice1: essential expects a list"),
    # -- generate ------------------------------------------------------------------------
    ("generate-manifest", "v1", pkgs(contents("mypkg", "/dir/**: {generate: manifest}"),
                                     contents("mypkg2", "/other/file:")), None),
    ("generate-not-double-star", "v1", contents("mypkg", "/path/: {generate: manifest}"),
     r"slice mypkg_myslice has invalid generate path: /path/ does not end with /\*\*"),
    ("generate-other-wildcard", "v1", contents("mypkg", "/pat*h/to/dir/**: {generate: manifest}"),
     r"invalid generate path: /pat\*h/to/dir/\*\* contains wildcard characters in addition"),
    ("generate-and-plain-same-path", "v1",
     pkgs(contents("mypkg", "/path/**: {generate: \"manifest\"}"),
          contents("mypkg2", "/path/**:")),
     r"slices mypkg_myslice and mypkg2_myslice conflict on /path/\*\*"),
    ("generate-same-across-packages", "v1",
     pkgs(contents("mypkg", "/path/**: {generate: manifest}"),
          contents("mypkg2", "/path/**: {generate: manifest}")), None),
    ("generate-and-file-same-slice", "v1",
     contents("mypkg", "/path/**: {generate: manifest}", "/path/file:"),
     r"slices mypkg_myslice and mypkg_myslice conflict on /path/\*\* and /path/file"),
    ("generate-and-file-across-slices", "v1", pkg("mypkg", """\
        slices:
          myslice1:
            contents:
              /path/file:
          myslice2:
            contents:
              /path/**: {generate: manifest}
        """), r"slices mypkg_myslice1 and mypkg_myslice2 conflict on /path/file and /path/\*\*"),
    ("generate-and-generate", "v1", pkg("mypkg", """\
        slices:
          myslice1:
            contents:
              /path/subdir/**: {generate: manifest}
          myslice2:
            contents:
              /path/**: {generate: manifest}
        """), r"conflict on /path/subdir/\*\* and /path/\*\*"),
    ("generate-options", "v1",
     contents("mypkg", "/path/**: {generate: \"manifest\", until: mutate}"),
     r"slice mypkg_myslice path /path/\*\* has invalid generate options"),
    ("generate-prefer", "v1", pkgs(contents("mypkg1", "/**: {generate: manifest, prefer: mypkg2}",
                                            slice_="myslice1"),
                                   contents("mypkg2", "/x:")),
     r"slice mypkg1_myslice1 path /\*\* has invalid generate options"),
    # -- prefer --------------------------------------------------------------------------
    ("prefer-wildcard", "v1", pkgs(contents("mypkg1", "/**: {prefer: mypkg2}", slice_="myslice1"),
                                   contents("mypkg2", "/x:")),
     r"slice mypkg1_myslice1 path /\*\* has invalid wildcard options"),
    ("prefer-own-package", "v1", contents("mypkg1", "/file: {prefer: mypkg1}", slice_="myslice1"),
     r"slice mypkg1_myslice1 cannot 'prefer' its own package for path /file"),
    ("prefer-chain", "v1", pkgs(pkg("mypkg1", """\
        slices:
          myslice1:
            contents:
              /path: {prefer: mypkg2}
              /link: {symlink: /file1}
          myslice2:
            contents:
              /path: {prefer: mypkg2}
        """), contents("mypkg2", "/path: {prefer: mypkg3}",
                       "/link: {symlink: /file2, prefer: mypkg1}", slice_="myslice1"),
        contents("mypkg3", "/path:", slice_="myslice1")), None),
    ("prefer-undefined", "v1", contents("mypkg", "/path: {prefer: non-existent}"),
     r"slice mypkg_myslice path /path 'prefer' refers to undefined package 'non-existent'"),
    ("prefer-package-without-path", "v1", pkgs(contents("mypkg1", "/path: {prefer: mypkg2}"),
                                               contents("mypkg2", "/other-path:")),
     r"package mypkg1 prefers package 'mypkg2' which does not contain path /path"),
    ("prefer-loop", "v1", pkgs(contents("mypkg1", "/path: {prefer: mypkg2}"),
                               contents("mypkg2", "/path: {prefer: mypkg3}"),
                               contents("mypkg3", "/path: {prefer: mypkg1}")),
     r"package 'mypkg[1-3]' is part of a prefer loop on /path"),
    ("prefer-loop-partial", "v1", pkgs(contents("mypkg1", "/path: {prefer: mypkg2}"),
                                       contents("mypkg2", "/path: {prefer: mypkg3}"),
                                       contents("mypkg3", "/path: {prefer: mypkg2}")),
     r"packages 'mypkg1' and 'mypkg3' cannot both prefer 'mypkg2' for /path"),
    ("prefer-third-without-relation", "v1", pkgs(contents("mypkg1", "/text: {text: foo}"),
                                                 contents("mypkg2", "/text: {text: foo}"),
                                                 contents("mypkg3", "/text: {prefer: mypkg1}")),
     r"package '(mypkg1|mypkg2)' and 'mypkg3' conflict on /text without prefer relationship"),
    ("prefer-disconnected", "v1", pkgs(contents("mypkg1", "/path: {prefer: mypkg3}"),
                                       contents("mypkg2", "/path: {prefer: mypkg4}"),
                                       contents("mypkg3", "/path:"), contents("mypkg4", "/path:")),
     r"package '[a-z1-9]*' and '[a-z1-9]*' conflict on /path without prefer relationship"),
    ("prefer-two-chains", "v1", pkgs(contents("mypkg1", "/path: {prefer: mypkg3}"),
                                     contents("mypkg2", "/path: {prefer: mypkg3}"),
                                     contents("mypkg3", "/path:")),
     r"packages 'mypkg1' and 'mypkg2' cannot both prefer 'mypkg3' for /path"),
    ("prefer-chain-and-glob", "v1", pkgs(
        pkg("mypkg1", "slices:\n  myslice1:\n    contents:\n      /path: {prefer: mypkg2}\n"
                      "  myslice2:\n    contents:\n      /**:\n"),
        contents("mypkg2", "/path:")),
     r"slices mypkg1_myslice2 and mypkg2_myslice conflict on /\*\* and /path"),
    ("prefer-differs-in-package", "v1", pkgs(pkg("mypkg1", """\
        slices:
          myslice1:
            contents:
              /path: {prefer: mypkg2}
          myslice2:
            contents:
              /path: {prefer: mypkg3}
        """), contents("mypkg2", "/path:"), contents("mypkg3", "/path:")),
     r"package 'mypkg1' has conflicting prefers for /path: mypkg2 != mypkg3"),
    # -- chisel.yaml ---------------------------------------------------------------------
    ("format-unknown", "v1", {"chisel.yaml": "format: foobar\n" + ARCHIVE + "{KEYS}"},
     r"unknown format 'foobar'"),
    ("format-chisel-v1", "v1", {"chisel.yaml": "format: chisel-v1\n" + ARCHIVE + "{KEYS}"},
     r"unknown format 'chisel-v1'"),
    ("no-archives", "v1", {"chisel.yaml": "format: v1\n{KEYS}"}, r"no archives defined"),
    ("many-suites", "v1", {"chisel.yaml": "format: v1\narchives:\n  ubuntu:\n    version: 22.04\n"
                                          "    components: [main, other]\n"
                                          "    suites: [jammy, jammy-security]\n"
                                          "    public-keys: [test-key]\n{KEYS}"}, None),
    ("suites-unset", "v1", {"chisel.yaml": "format: v1\narchives:\n  ubuntu:\n    version: 22.04\n"
                                           "    components: [main]\n"
                                           "    public-keys: [test-key]\n{KEYS}"},
     r"archive 'ubuntu' missing suites field"),
    ("no-public-keys", "v1", {"chisel.yaml": "format: v1\narchives:\n  foo:\n    version: 22.04\n"
                                             "    components: [main]\n    suites: [jammy]\n"
                                             "{KEYS}"},
     r"archive 'foo' missing public-keys field"),
    ("undefined-key", "v1", {"chisel.yaml": "format: v1\narchives:\n  foo:\n    version: 22.04\n"
                                            "    components: [main]\n    suites: [jammy]\n"
                                            "    public-keys: [extra-key]\n{KEYS}"},
     r"archive 'foo' refers to undefined public key 'extra-key'"),
    ("bad-armor", "v1", {"chisel.yaml": "format: v1\n" + ARCHIVE
                         + "public-keys:\n  test-key:\n    id: \"9568570379BF1F43\"\n"
                           "    armor: |\n      G. B. Shaw\n"},
     r"cannot decode public key 'test-key'"),
    ("wrong-key-id", "v1", {"chisel.yaml": "format: v1\n" + ARCHIVE + "{WRONG-ID-KEYS}"},
     r"public key 'test-key' armor has incorrect ID: expected '9568570379BF1F43', got '"),
    ("extra-fields", "v1", {"chisel.yaml": "format: v1\nmadeUpKey2: whatever\n"
                                           "maintenance:\n  standard: 2025-01-01\n"
                                           "  end-of-life: 2100-01-01\n  madeUpKey7: x\n"
                                           + ARCHIVE + "    madeUpKey1: whatever\n{KEYS}"},
     None),
    ("priorities", "v1", {"chisel.yaml": """\
        format: v1
        archives:
          foo: {version: 22.04, components: [main], suites: [jammy], public-keys: [test-key],
                priority: 20}
          bar: {version: 22.04, components: [main], suites: [jammy-updates],
                public-keys: [test-key], priority: -10}
        {KEYS}"""}, None),
    ("priority-missing", "v1", {"chisel.yaml": """\
        format: v1
        archives:
          foo: {version: 22.04, components: [main], suites: [jammy], public-keys: [test-key],
                priority: 20}
          bar: {version: 22.04, components: [main], suites: [jammy], public-keys: [test-key]}
        {KEYS}"""}, r"archive 'bar' is missing the priority setting"),
    ("no-priorities", "v1", {"chisel.yaml": """\
        format: v1
        archives:
          foo: {version: 22.04, components: [main], suites: [jammy], public-keys: [test-key]}
          bar: {version: 22.04, components: [main], suites: [jammy], public-keys: [test-key]}
        {KEYS}"""}, r"archive 'bar' is missing the priority setting"),
    ("same-priority", "v1", {"chisel.yaml": """\
        format: v1
        archives:
          foo: {version: 22.04, components: [main], suites: [jammy], public-keys: [test-key],
                priority: 20}
          bar: {version: 22.04, components: [main], suites: [jammy], public-keys: [test-key],
                priority: 20}
        {KEYS}"""}, r"archives 'bar' and 'foo' have the same priority value of 20"),
    ("priority-too-high", "v1", {"chisel.yaml": "format: v1\n" + ARCHIVE.replace("ubuntu:", "foo:")
                                 + "    priority: 10000\n{KEYS}"},
     r"archive 'foo' has invalid priority value of 10000"),
    ("priority-zero", "v1", {"chisel.yaml": "format: v1\n" + ARCHIVE.replace("ubuntu:", "foo:")
                             + "    priority: 0\n{KEYS}"},
     r"archive 'foo' has invalid priority value of 0"),
    ("invalid-pro-ignored", "v3", {"chisel.yaml": """\
        format: v3
        archives:
          ubuntu: {version: 20.04, suites: [focal], components: [main], public-keys: [test-key],
                   priority: 10}
          ubuntu-invalid: {pro: invalid-pro, version: 20.04, suites: [focal], components: [main],
                           public-keys: [test-key], priority: 20}
        {KEYS}"""}, None),
    ("default-archive-v1", "v1", {"chisel.yaml": """\
        format: v1
        archives:
          foo: {version: 22.04, components: [main], suites: [jammy], public-keys: [test-key],
                default: true}
          bar: {version: 22.04, components: [main], suites: [jammy], public-keys: [test-key]}
        {KEYS}"""}, None),
    ("two-default-archives", "v1", {"chisel.yaml": """\
        format: v1
        archives:
          foo: {version: 22.04, components: [main], suites: [jammy], public-keys: [test-key],
                default: true}
          bar: {version: 22.04, components: [main], suites: [jammy], public-keys: [test-key],
                default: true}
        {KEYS}"""}, r"more than one default archive: bar, foo"),
    ("v2-archives-merged", "v1", {"chisel.yaml": """\
        format: v1
        archives:
          ubuntu: {version: 22.04, components: [main], suites: [jammy], public-keys: [test-key],
                   priority: 10}
        v2-archives:
          fips: {pro: fips, version: 22.04, components: [main], suites: [jammy],
                 public-keys: [test-key], priority: 20}
        {KEYS}"""}, None),
    ("archive-defined-twice", "v1", {"chisel.yaml": """\
        format: v1
        archives:
          ubuntu: {version: 22.04, components: [main], suites: [jammy], public-keys: [test-key]}
        v2-archives:
          ubuntu: {version: 22.04, components: [main], suites: [jammy], public-keys: [test-key]}
        {KEYS}"""}, r"archive 'ubuntu' defined twice"),
    ("v2-no-default", "v2", {"chisel.yaml": "format: v2\n" + ARCHIVE
                             + "    default: true\n{KEYS}"},
     r"archive 'ubuntu' has 'default' field which is obsolete since format v2"),
    ("v2-no-v2-archives", "v2", {"chisel.yaml": "format: v2\n" + ARCHIVE.replace(
        "archives:", "v2-archives:") + "{KEYS}"}, r"v2-archives is obsolete since format v2"),
    ("maintenance", "v1", {"chisel.yaml": "format: v1\nmaintenance:\n  standard: 2001-02-03\n"
                                          "  expanded: 2003-02-03\n  legacy: 2004-02-03\n"
                                          "  end-of-life: 2005-02-03\n" + ARCHIVE + "{KEYS}"},
     None),
    ("maintenance-no-end-of-life", "v1", {"chisel.yaml": "format: v1\nmaintenance:\n"
                                                         "  standard: 2001-02-03\n"
                                                         + ARCHIVE + "{KEYS}"},
     r"cannot parse maintenance: 'end-of-life' is unset"),
    ("maintenance-no-standard", "v1", {"chisel.yaml": "format: v1\nmaintenance:\n"
                                                      "  end-of-life: 2001-02-03\n"
                                                      + ARCHIVE + "{KEYS}"},
     r"cannot parse maintenance: 'standard' is unset"),
    ("maintenance-date", "v1", {"chisel.yaml": "format: v1\nmaintenance:\n  standard: 23/02/2001\n"
                                               "  end-of-life: 2005-02-03\n" + ARCHIVE + "{KEYS}"},
     r"expected format for 'standard' is YYYY-MM-DD"),
    ("pinned-archive-undefined", "v1", {"slices/test-package.yaml": "package: test-package\n"
                                                                    "archive: non-existing\n"},
     r"test-package.yaml: package refers to undefined archive 'non-existing'"),
    ("pinned-archive-defined", "v1", {"slices/test-package.yaml": "package: test-package\n"
                                                                  "archive: ubuntu\n"}, None),
]


@pytest.mark.parametrize("fmt, files, error", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_chisel_setup_case(tmp_path, apt_key, fmt, files, error) -> None:
    if error is None:
        load(tmp_path, apt_key, files, fmt)
        return
    with pytest.raises(SpecError) as e:
        load(tmp_path, apt_key, files, fmt)
    assert re.search(error, e.value.message), e.value.message
    assert "Traceback" not in e.value.message


def test_there_are_at_least_sixty_cases() -> None:
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)


def test_bogus_generate_loads_but_selecting_it_is_refused(tmp_path, apt_key) -> None:
    cat = load(tmp_path, apt_key, contents("mypkg", "/dir/**: {generate: foo}"))
    with pytest.raises(SpecError, match=r"slice mypkg_myslice has invalid 'generate' for path "
                                        r"/dir/\*\*: 'foo'"):
        cat.closure(["mypkg_myslice"], "amd64")


def test_pro_archives_are_skipped_with_a_note(tmp_path, apt_key) -> None:
    root = _release(tmp_path, apt_key, {"chisel.yaml": """\
        format: v3
        archives:
          ubuntu: {version: 24.04, suites: [noble, noble-updates], components: [main, universe],
                   public-keys: [test-key], priority: 10}
          ubuntu-esm-apps: {pro: esm-apps, version: 24.04, suites: [noble-apps-security],
                            components: [main], public-keys: [test-key], priority: 16}
        {KEYS}"""})
    release = read_release(root / "chisel.yaml")
    assert [a.name for a in release.archives] == ["ubuntu", "ubuntu-ports"]
    assert release.archives[0].archs == ["amd64", "i386"]
    assert "arm64" in release.archives[1].archs
    assert release.archives[0].suites == ["noble", "noble-updates"]
    assert release.archives[0].components == ["main", "universe"]
    assert release.archives[0].priority == 10
    assert any("ubuntu-esm-apps" in n and "Pro" in n for n in release.notes)


@pytest.mark.parametrize("field, value", [("components", "main"), ("suites", "jammy"),
                                          ("public-keys", "test-key")])
def test_archive_lists_written_as_one_string_are_refused(tmp_path, apt_key, field,
                                                         value) -> None:
    """`components: main` is not the components m, a, i, n (chisel's YAML refuses it too)."""
    text = "format: v1\n" + re.sub(rf"{field}: \[.*\]", f"{field}: {value}", ARCHIVE) + "{KEYS}"
    with pytest.raises(SpecError, match=rf"archive 'ubuntu' {field} must be a list"):
        load(tmp_path, apt_key, {"chisel.yaml": text})


def test_an_archive_that_is_not_a_mapping_is_refused(tmp_path, apt_key) -> None:
    text = "format: v1\narchives:\n  ubuntu: [jammy]\n{KEYS}"
    with pytest.raises(SpecError, match=r"archive 'ubuntu' must be a mapping"):
        load(tmp_path, apt_key, {"chisel.yaml": text})


@pytest.mark.parametrize("text, error", [
    ("format: v1\narchives: [ubuntu]\n{KEYS}", r"archives must be a mapping"),
    ("format: v1\n" + ARCHIVE + "public-keys: [test-key]\n", r"public-keys must be a mapping"),
    ("format: v1\n" + ARCHIVE + "public-keys:\n  test-key: abc\n",
     r"public key 'test-key' must be a mapping"),
])
def test_release_sections_of_the_wrong_shape_are_refused(tmp_path, apt_key, text,
                                                         error) -> None:
    with pytest.raises(SpecError, match=error):
        load(tmp_path, apt_key, {"chisel.yaml": text})


def test_a_misnamed_definition_names_its_file_once(tmp_path, apt_key) -> None:
    with pytest.raises(SpecError) as e:
        load(tmp_path, apt_key, {"slices/mypkg.yaml": "package: other\n"})
    assert e.value.message.count("mypkg.yaml") == 1, e.value.message
    assert e.value.message.startswith(f"{tmp_path / 'slices' / 'mypkg.yaml'}:1: "), \
        e.value.message

"""Licences for SBOMs: DEP-5 copyright files read conservatively (NOASSERTION unless
machine-readable, never a near match), apk license fields kept as SPDX."""

from __future__ import annotations

import re

import pytest
from fuzzing import examples as fuzz_examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assembler.debian.copyright import FORMAT_PREFIX, license_expression
from assembler.sbom.licenses import spdx_expression, spdx_id

DEP5 = b"""Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: zstd

Files: *
Copyright: Meta Platforms
License: BSD-3-clause or GPL-2

Files: debian/*
Copyright: someone
License: Expat

Files: lib/legacy/*
Copyright: someone else
License: Expat

License: BSD-3-clause
 Redistribution and use in source and binary forms, with or without
 modification: GPL-3 is mentioned here and must not count.
"""


def test_dep5_expression_and_in_order_without_repeats():
    assert license_expression(DEP5) == "(BSD-3-Clause OR GPL-2.0-only) AND MIT"


@pytest.mark.parametrize("text", [
    # Not machine-readable: a free-text copyright file says nothing we may map.
    b"This package was debianized by someone.\nLicense: GPL-2+\n",
    # DEP-5, but a Files paragraph names no licence: the whole answer would be partial.
    b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
    b"Files: *\nCopyright: x\n",
    # Parenthesized expressions are not DEP-5 syntax we read.
    b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
    b"Files: *\nCopyright: x\nLicense: (GPL-2 or MIT) and BSD-3-clause\n",
    b"\xff\xfe not utf-8",
])
def test_anything_else_is_no_assertion(text):
    assert license_expression(text) is None


@pytest.mark.parametrize("debian, spdx", [
    ("GPL-2+", "GPL-2.0-or-later"), ("GPL-2", "GPL-2.0-only"), ("LGPL-2.1+", "LGPL-2.1-or-later"),
    ("LGPL-2", "LGPL-2.0-only"), ("GPL-3.0+", "GPL-3.0-or-later"), ("Expat", "MIT"),
    ("BSD-3-clause", "BSD-3-Clause"), ("Apache-2.0", "Apache-2.0"),
    # No exact SPDX identifier: kept under its own name, not guessed.
    ("GPL", "LicenseRef-GPL"), ("public-domain", "LicenseRef-public-domain"),
    ("Apache-2", "LicenseRef-Apache-2"), ("SSLeay", "LicenseRef-SSLeay"),
])
def test_short_names(debian, spdx):
    assert spdx_id(debian) == spdx


def test_every_identifier_we_emit_is_on_the_spdx_list():
    """What the SPDX validator (spdx-tools, through license-expression) knows; a name
    missing there (Debian's SSLeay) fails validation of every SBOM that carries it."""
    from license_expression import get_spdx_licensing

    from assembler.sbom.licenses import _EXACT

    licensing = get_spdx_licensing()
    unknown = [v for v in sorted(set(_EXACT.values())) if licensing.validate(v).errors]
    assert unknown == []


def test_exception_clause_stays_one_reference():
    text = (b"Format: http://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
            b"Files: *\nCopyright: x\nLicense: GPL-2+ with OpenSSL exception\n")
    assert license_expression(text) == "LicenseRef-GPL-2-with-OpenSSL-exception"


@pytest.mark.parametrize("apk, spdx", [
    ("MIT", "MIT"), ("MIT AND BSD-2-Clause", "MIT AND BSD-2-Clause"),
    ("GPL-2.0-or-later OR (MIT AND ISC)", "GPL-2.0-or-later OR (MIT AND ISC)"),
    ("custom", "LicenseRef-custom"), ("", None),
    ("GPL-2.0-only WITH Linux-syscall-note", None),
])
def test_apk_license_fields(apk, spdx):
    assert spdx_expression(apk) == spdx


# Bounded fuzzing (issue 10's rule: each parser has a fuzz target): whatever a package's
# copyright file or license field says, the answer is None or an expression the SPDX
# grammar accepts (identifiers, LicenseRef-s, AND/OR, parentheses), never an exception.
_TOKEN = re.compile(r"\(|\)|AND|OR|LicenseRef-[A-Za-z0-9.-]+|[A-Za-z0-9.+-]+")
_BUDGET = settings(max_examples=fuzz_examples(300), derandomize=True, database=None, deadline=None,
                   suppress_health_check=list(HealthCheck))
_WORDS = st.sampled_from(["Files: *", "License: ", "Format: " + FORMAT_PREFIX, " or ", " and ",
                          "GPL-2+", "with", "(", ")", ",", "\n", "\n\n", " ", ":", "Expat"])


def _well_formed(expr: str | None) -> bool:
    return expr is None or all(_TOKEN.fullmatch(t) for t in
                               expr.replace("(", " ( ").replace(")", " ) ").split())


@_BUDGET
@given(st.lists(st.one_of(_WORDS, st.text(max_size=6)), max_size=30).map("".join))
def test_fuzz_copyright(text):
    assert _well_formed(license_expression(text.encode("utf-8", "surrogatepass")))


@_BUDGET
@given(st.lists(st.one_of(_WORDS, st.text(max_size=6)), max_size=12).map("".join))
def test_fuzz_apk_license_field(text):
    assert _well_formed(spdx_expression(text))

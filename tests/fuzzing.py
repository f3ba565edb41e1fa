"""Fuzz budgets: the full number of examples in `make test`, a tenth in `make test-fast`
(ASSEMBLER_FUZZ_SCALE=0.1), so the unit tier stays a few seconds while CI still runs
every target at its full, fixed (derandomized) budget."""

from __future__ import annotations

import os


def examples(n: int) -> int:
    return max(10, round(n * float(os.environ.get("ASSEMBLER_FUZZ_SCALE", "1"))))

"""Packages index parsing: whole text and piece-wise parsing agree, and essential flags."""

from __future__ import annotations

from assembler.debian.packages import (
    ESSENTIAL,
    is_essential,
    parse_packages,
    parse_packages_pieces,
    unpack_record,
)

STANZAS = []
for i in range(40):
    STANZAS.append(
        f"Package: pkg{i}\nVersion: 1.{i}-1\nArchitecture: amd64\n"
        + ("Essential: yes\n" if i % 7 == 0 else "")
        + f"Depends: libc6 (>= 2.36), pkg{i + 1}\nDescription: thing {i}\n"
        " a folded line that says Package: fake\n"
        f"Filename: pool/main/p/pkg{i}/pkg{i}_1.{i}-1_amd64.deb\nSize: {100 + i}\n"
        f"SHA256: {i:064x}\n"
    )
TEXT = "\n".join(STANZAS)


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def test_piecewise_parse_matches_whole_text_for_any_cut() -> None:
    whole = parse_packages(TEXT)
    assert len(whole) == 40
    data = TEXT.encode()
    for size in (1, 7, 64, 333, 4096, len(data)):
        assert parse_packages_pieces(_pieces(data, size)) == whole, size


def test_folded_description_never_starts_a_stanza() -> None:
    names = [r[0] for r in parse_packages(TEXT)]
    assert "fake" not in names


def test_is_essential_reads_only_the_essential_field() -> None:
    records = parse_packages(TEXT)
    flagged = [r[0] for r in records if is_essential(r[2])]
    assert flagged == [f"pkg{i}" for i in range(0, 40, 7)]
    assert all(unpack_record(r[2])[ESSENTIAL] in ("", "yes") for r in records)

"""APKINDEX.tar.gz: signature verification and parsing, on Alpine's real indexes."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest
from test_apk_support import FIXTURES, Signer, file_info, gz, make_index, tar_bytes

from assembler.alpine.index import read_index
from assembler.alpine.record import iter_stanzas
from assembler.alpine.signing import gunzip, load_keys, member_spans
from assembler.errors import IntegrityError

INDEXES = {
    "alpine-3.16-x86_64": "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub",
    "alpine-3.17-aarch64": "alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub",
}

pytestmark = pytest.mark.needs_shared


@pytest.fixture(scope="module")
def keys() -> dict[str, bytes]:
    return load_keys(FIXTURES / "keys")


def _index_bytes(name: str) -> bytes:
    return (FIXTURES / name / "APKINDEX.tar.gz").read_bytes()


@pytest.mark.parametrize("name", sorted(INDEXES))
def test_real_index_verifies_with_its_key(name: str, keys: dict[str, bytes]) -> None:
    idx = read_index(FIXTURES / name / "APKINDEX.tar.gz", keys)
    assert idx.signed_by == INDEXES[name]
    assert idx.description.startswith("v3.1")


def test_316_package_count_and_fields(keys: dict[str, bytes]) -> None:
    idx = read_index(_index_bytes("alpine-3.16-x86_64"), keys)
    assert len(idx) == 4929
    (busybox,) = idx.named("busybox")
    assert busybox.version == "1.35.0-r17"
    assert busybox.arch == "x86_64"
    assert busybox.checksum.startswith("Q1") and len(busybox.checksum) == 30
    assert busybox.size == 507831 and busybox.installed_size == 962560
    assert busybox.origin == "busybox" and busybox.license == "GPL-2.0-only"
    assert busybox.build_time == 1659366884
    assert busybox.commit == "2bf6ec48e526113f87216683cd341a78af5f0b3f"
    assert busybox.maintainer.startswith("Sören Tempel")
    assert busybox.depends == ["so:libc.musl-x86_64.so.1"]
    assert "/bin/sh" in busybox.provides
    assert busybox.filename == "busybox-1.35.0-r17.apk"
    # every kind of field shows up somewhere: install_if, provider_priority, conflicts
    assert any(r.install_if for r in idx.packages)
    assert any(r.provider_priority is not None for r in idx.packages)
    assert any(d.conflict for r in idx.packages for d in r.dependencies)
    assert all(r.extra == [] for r in idx.packages)


@pytest.mark.parametrize("name", sorted(INDEXES))
def test_every_atom_parses_and_stanzas_round_trip(name: str, keys: dict[str, bytes]) -> None:
    data = _index_bytes(name)
    idx = read_index(data, keys)
    for rec in idx.packages:
        rec.dependencies, rec.provided, rec.install_if_atoms  # noqa: B018 - must not raise
    # Writing the records back gives the APKINDEX text byte for byte: no field lost.
    sig_end = member_spans(data, what=name)[0][1]
    with tarfile.open(fileobj=io.BytesIO(gunzip(data[sig_end:], what=name))) as tar:
        f = tar.extractfile("APKINDEX")
        assert f is not None
        original = f.read().decode()
    written = "".join("\n".join(r.header_lines()) + "\n\n" for r in idx.packages)
    assert written == original


def test_member_split_is_exact() -> None:
    data = _index_bytes("alpine-3.16-x86_64")
    spans = member_spans(data, what="index")
    assert spans == [(0, 667), (667, len(data))]


# --- refusals --------------------------------------------------------------


def _flip(data: bytes, offset: int) -> bytes:
    b = bytearray(data)
    b[offset] ^= 0x01
    return bytes(b)


@pytest.mark.parametrize("name", sorted(INDEXES))
@pytest.mark.parametrize("where", ["signature-member", "index-member", "index-gzip-header"])
def test_one_changed_byte_is_refused(
    name: str, where: str, keys: dict[str, bytes], tmp_path: Path
) -> None:
    data = _index_bytes(name)
    (s0, s1), (i0, i1) = member_spans(data, what=name)
    offset = {
        "signature-member": (s0 + s1) // 2,
        "index-member": (i0 + i1) // 2,
        # gzip MTIME: inflates fine, so only the signature can catch it
        "index-gzip-header": i0 + 5,
    }[where]
    copy = tmp_path / "APKINDEX.tar.gz"
    copy.write_bytes(_flip(data, offset))
    with pytest.raises(IntegrityError) as exc:
        read_index(copy, keys)
    assert str(copy) in str(exc.value)
    if where == "index-gzip-header":
        assert "bad signature" in str(exc.value) and INDEXES[name] in str(exc.value)


@pytest.mark.parametrize("name", sorted(INDEXES))
def test_altered_signature_value_is_a_bad_signature(name: str, keys: dict[str, bytes]) -> None:
    data = _index_bytes(name)
    sig_end = member_spans(data, what=name)[0][1]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data[:sig_end]))) as tar:
        (member,) = tar.getmembers()
        f = tar.extractfile(member)
        assert f is not None
        sig = bytearray(f.read())
    sig[100] ^= 0xFF
    forged = gz(tar_bytes([(file_info(member.name), bytes(sig))], fmt=tarfile.USTAR_FORMAT))
    with pytest.raises(IntegrityError, match="bad signature"):
        read_index(forged + data[sig_end:], keys, name=name)


def test_unknown_key_is_refused(keys: dict[str, bytes]) -> None:
    name = "alpine-3.16-x86_64"
    others = {k: v for k, v in keys.items() if k != INDEXES[name]}
    with pytest.raises(IntegrityError, match="unknown key") as exc:
        read_index(_index_bytes(name), others, name=name)
    assert INDEXES[name] in str(exc.value) and name in str(exc.value)


def test_unsigned_index_is_refused(keys: dict[str, bytes]) -> None:
    data = _index_bytes("alpine-3.16-x86_64")
    sig_end = member_spans(data, what="x")[0][1]
    with pytest.raises(IntegrityError, match="not signed"):
        read_index(data[sig_end:], keys, name="stripped")


def test_key_of_another_index_does_not_verify(keys: dict[str, bytes]) -> None:
    # Same key *name*, different key material: the name alone grants nothing.
    name = "alpine-3.16-x86_64"
    swapped = {INDEXES[name]: keys[INDEXES["alpine-3.17-aarch64"]]}
    with pytest.raises(IntegrityError, match="bad signature"):
        read_index(_index_bytes(name), swapped, name=name)


# --- hand-made indexes: RSA256 and the parser's corners ----------------------

STANZAS = """\
C:Q1aaaaaaaaaaaaaaaaaaaaaaaaaaa=
P:foo
V:1.2-r0
A:x86_64
S:100
I:4096
T:a package
U:
L:MIT
o:foo
m:Someone <someone@example.org>
t:1700000000
c:abcdef
k:100
D:bar>=1 !baz so:libc.musl-x86_64.so.1
p:cmd:foo=1.2-r0 so:libfoo.so.1=1
i:bar docs
r:old-foo
q:10
z:an unknown future field

"""


@pytest.mark.parametrize("sha256", [False, True])
def test_generated_index_with_sha1_and_sha256(sha256: bool) -> None:
    signer = Signer.new()
    idx = read_index(
        make_index(STANZAS, signer, sha256=sha256), {signer.key_name: signer.public_pem}
    )
    (rec,) = idx.packages
    assert (rec.name, rec.version, rec.provider_priority, rec.replaces_priority) == (
        "foo",
        "1.2-r0",
        100,
        10,
    )
    assert rec.depends == ["bar>=1", "!baz", "so:libc.musl-x86_64.so.1"]
    assert [str(d) for d in rec.dependencies] == rec.depends
    assert rec.dependencies[0].matches("1.5") and not rec.dependencies[0].matches("0.9")
    assert rec.install_if == ["bar", "docs"] and rec.replaces == ["old-foo"]
    assert rec.url == "" and rec.extra == [("z", "an unknown future field")]
    assert list(iter_stanzas(STANZAS))[0][-1] == ("z", "an unknown future field")
    assert "\n".join(rec.header_lines()) + "\n\n" == STANZAS


def test_generated_index_signed_by_untrusted_key_is_refused() -> None:
    signer, other = Signer.new("a.rsa.pub"), Signer.new("a.rsa.pub")
    with pytest.raises(IntegrityError, match="bad signature"):
        read_index(make_index(STANZAS, signer), {"a.rsa.pub": other.public_pem})


def test_truncated_index_is_refused(keys: dict[str, bytes]) -> None:
    data = _index_bytes("alpine-3.17-aarch64")
    with pytest.raises(IntegrityError, match="truncated"):
        read_index(data[:-100], keys)

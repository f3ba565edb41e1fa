"""Declarative stand-ins for maintainer scripts: alternatives, hash links, the Java
trust store, nsswitch.conf and /run, the spec's own CA certificates, config checks."""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from assembler.errors import SpecError
from assembler.image.configcheck import check_config
from assembler.rootfs.alternatives import apply_alternatives, load_table
from assembler.rootfs.certhash import subject_hash, write_hash_links
from assembler.rootfs.certs import BUNDLE, LOCAL_DIR, add_local_certificates, pem_certificates
from assembler.rootfs.skeleton import write_skeleton
from assembler.rootfs.tree import Tree
from assembler.rootfs.truststore import TRUSTSTORE, truststore_bytes, write_truststore
from assembler.spec.document import load_spec

ROOT = Path(__file__).resolve().parents[1]
ELF = b"\x7fELF" + b"\0" * 60


def make_ca(cn: str) -> tuple[str, bytes]:
    """A self-signed CA with subject `cn` (mixed case and spaces, as real CAs have)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "  Test   Org "),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode(), \
        cert.public_bytes(serialization.Encoding.DER)


def spec_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "image.yaml"
    path.write_text("distro: debian/bookworm\ncontents:\n  packages: [hello]\n" + text)
    return path


# -- alternatives ---------------------------------------------------------------------

@pytest.fixture
def table():
    return load_table(ROOT / "repos/debian/bookworm/alternatives.yaml")


def jre_tree() -> Tree:
    tree = Tree()
    tree.add_file("usr/lib/jvm/java-17-openjdk-amd64/bin/java", ELF, 0o755)
    tree.add_file("usr/lib/jvm/java-17-openjdk-amd64/bin/keytool", ELF, 0o755)
    tree.add_file("usr/lib/x86_64-linux-gnu/blas/libblas.so.3", ELF)
    tree.add_file("usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3", ELF)
    tree.add_file("usr/lib/x86_64-linux-gnu/lapack/liblapack.so.3", ELF)
    return tree


def test_alternatives_link_what_is_present_by_priority(table) -> None:
    with jre_tree() as tree:
        made = apply_alternatives(tree, table, {}, "image.yaml")
        assert tree.get("usr/bin/java").link == "/etc/alternatives/java"
        assert tree.resolve("usr/bin/java").path == "usr/lib/jvm/java-17-openjdk-amd64/bin/java"
        assert tree.resolve("usr/bin/keytool") is not None
        assert tree.get("usr/bin/rmiregistry") is None  # its candidate is not in the image
        # Per-architecture links: the highest priority wins (openblas 100 over blas 10).
        blas = tree.get("usr/lib/x86_64-linux-gnu/libblas.so.3")
        assert blas.link == "/etc/alternatives/libblas.so.3-x86_64-linux-gnu"
        assert tree.resolve(blas.path).path.endswith("openblas-pthread/libblas.so.3")
        assert tree.resolve("usr/lib/x86_64-linux-gnu/liblapack.so.3") is not None
        assert len(made) == 4


def test_alternatives_spec_chooses_and_adds(table, tmp_path) -> None:
    spec = load_spec(spec_file(tmp_path, "alternatives:\n"
                               "  libblas.so.3-x86_64-linux-gnu: "
                               "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3\n"
                               "  mytool: {link: /usr/bin/mytool, path: "
                               "/usr/lib/jvm/java-17-openjdk-amd64/bin/keytool}\n"))
    with jre_tree() as tree:
        apply_alternatives(tree, table, spec.alternatives, str(spec.path))
        assert tree.resolve("usr/lib/x86_64-linux-gnu/libblas.so.3").path.endswith(
            "/blas/libblas.so.3")
        assert tree.resolve("usr/bin/mytool").path.endswith("bin/keytool")


def test_a_package_s_own_link_wins(table) -> None:
    with jre_tree() as tree:
        tree.add_symlink("usr/bin/java", "/opt/java")
        apply_alternatives(tree, table, {}, "image.yaml")
        assert tree.get("usr/bin/java").link == "/opt/java"


@pytest.mark.parametrize("text, words", [
    ("alternatives:\n  jav: /usr/bin/x\n", ["'jav' is not in this release", "'java'"]),
    ("alternatives:\n  java: /usr/lib/jvm/none/bin/java\n", ["not a file in the image"]),
])
def test_alternative_mistakes_are_one_paragraph(table, tmp_path, text, words) -> None:
    spec = load_spec(spec_file(tmp_path, text))
    with jre_tree() as tree, pytest.raises(SpecError) as e:
        apply_alternatives(tree, table, spec.alternatives, str(spec.path))
    assert f"{spec.path}:5:" in e.value.message
    for w in words:
        assert w in e.value.message


def test_alternatives_spec_key_is_checked(tmp_path) -> None:
    with pytest.raises(SpecError, match=r"image.yaml:5: alternative 'x' link 'usr/bin/x' must"):
        load_spec(spec_file(tmp_path, "alternatives:\n  x: {link: usr/bin/x, path: /a}\n"))


# -- certificates ---------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_subject_hash_is_openssl_s(tmp_path) -> None:
    for cn in ("Test Root CA", "ÄÖÜ  Wurzel\tCA", "lower case"):
        pem, der = make_ca(cn)
        (tmp_path / "c.pem").write_text(pem)
        r = subprocess.run(["openssl", "x509", "-noout", "-subject_hash", "-in",
                            str(tmp_path / "c.pem")], capture_output=True, text=True, check=True)
        assert subject_hash(der) == r.stdout.strip(), cn


def test_spec_certificates_reach_bundle_hash_links_and_truststore(tmp_path) -> None:
    pem, der = make_ca("Assembler Test CA")
    (tmp_path / "ca.pem").write_text("a comment before the block\n" + pem)
    other_pem, other_der = make_ca("Other CA")
    indented = "\n".join("        " + line for line in other_pem.splitlines())
    spec = load_spec(spec_file(tmp_path, "certificates:\n  additional:\n"
                               "    - {name: corp, path: ca.pem}\n"
                               f"    - name: other\n      content: |\n{indented}\n"))
    with Tree() as tree:
        tree.add_file("usr/share/ca-certificates/mozilla/Other.crt", other_pem.encode())
        tree.add_file(BUNDLE, other_pem.encode())
        add_local_certificates(tree, spec.certificates, str(spec.path))
        assert pem_certificates(tree.read(BUNDLE)) == [other_der, der]  # no duplicate
        assert tree.read(f"{LOCAL_DIR}corp.crt") == pem.encode()
        assert write_hash_links(tree) == 2
        link = tree.get(f"etc/ssl/certs/{subject_hash(der)}.0")
        assert link.link == "corp.pem"
        assert tree.resolve(link.path).path == f"{LOCAL_DIR}corp.crt"
        assert write_truststore(tree) == 2
        store = pkcs12.load_pkcs12(tree.read(TRUSTSTORE), None)
        assert sorted(c.certificate.public_bytes(serialization.Encoding.DER)
                      for c in store.additional_certs) == sorted([der, other_der])


def test_an_image_without_bundle_gets_one_of_the_spec_s_certificates(tmp_path) -> None:
    pem, der = make_ca("Only CA")
    indented = "\n".join("        " + line for line in pem.splitlines())
    spec = load_spec(spec_file(tmp_path, "certificates:\n  additional:\n"
                               f"    - name: only\n      content: |\n{indented}\n"))
    with Tree() as tree:
        add_local_certificates(tree, spec.certificates, str(spec.path))
        assert pem_certificates(tree.read(BUNDLE)) == [der]


def test_truststore_is_reproducible_and_names_its_aliases() -> None:
    pems = [make_ca(f"CA {i}")[0] for i in range(3)]
    bundle = "".join(pems).encode()
    first = truststore_bytes(bundle)
    assert first == truststore_bytes(bundle)
    assert first == truststore_bytes("".join(reversed(pems)).encode())  # sorted by alias
    names = sorted(c.friendly_name for c in pkcs12.load_pkcs12(first, None).additional_certs)
    assert [n.rsplit(b"-", 1)[0] for n in names] == [b"ca-0", b"ca-1", b"ca-2"]


@pytest.mark.parametrize("content, words", [
    ("not a certificate", "exactly one PEM block"),
    ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "does not parse"),
])
def test_bad_certificate_content(tmp_path, content, words) -> None:
    spec = load_spec(spec_file(tmp_path, "certificates:\n  additional:\n"
                               f"    - {{name: bad, content: {json.dumps(content)}}}\n"))
    with Tree() as tree, pytest.raises(SpecError, match=words) as e:
        add_local_certificates(tree, spec.certificates, str(spec.path))
    assert f"{spec.path}:6:" in e.value.message


def test_certificate_needs_content_or_path(tmp_path) -> None:
    with pytest.raises(SpecError, match=r":6: a certificate needs 'name' and one of"):
        load_spec(spec_file(tmp_path, "certificates:\n  additional:\n    - {name: x}\n"))


# -- nsswitch.conf, /run --------------------------------------------------------------

def test_skeleton_fills_in_but_does_not_replace() -> None:
    with Tree() as tree:
        write_skeleton(tree)
        assert b"hosts: files dns" in tree.read("etc/nsswitch.conf")
        assert tree.get("run").kind == "dir"
    with Tree() as tree:
        tree.add_file("etc/nsswitch.conf", b"hosts: files\n")
        write_skeleton(tree)
        assert tree.read("etc/nsswitch.conf") == b"hosts: files\n"



def test_python3s_postinst_config_where_python3_is_and_only_there() -> None:
    with Tree() as tree:
        write_skeleton(tree)
        assert tree.get("etc/python3/debian_config") is None
    with Tree() as tree:
        tree.add_file("usr/share/python3/debian_defaults", b"[DEFAULT]\n", origin="python3")
        write_skeleton(tree)
        # What python3's postinst writes, byte for byte (its heredoc, tabs stripped).
        assert tree.read("etc/python3/debian_config") == (
            b"[DEFAULT]\n# how to byte-compile (comma separated: standard, optimize)\n"
            b"byte-compile = standard\n")
        assert tree.get("etc/python3").kind == "dir"
    with Tree() as tree:
        tree.add_file("usr/share/python3/debian_defaults", b"[DEFAULT]\n", origin="python3")
        tree.add_file("etc/python3/debian_config", b"byte-compile = optimize\n")
        write_skeleton(tree)
        assert tree.read("etc/python3/debian_config") == b"byte-compile = optimize\n"

# -- config checks --------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("entrypoint: [/usr/bin/java]\n",
     ["image.yaml:4: entrypoint '/usr/bin/java' is not a file",
      "The image has /usr/lib/jvm/java-17-openjdk-amd64/bin/java"]),
    ("cmd: [keytool]\n", ["image.yaml:4: cmd 'keytool' is not an executable file in any "
                          "directory of PATH"]),
    ("entrypoint: [/etc/motd]\n", ["/etc/motd is in the image but not executable"]),
    ("work-dir: /home/nonroot\n", ["image.yaml:4: work-dir /home/nonroot is not in the image"]),
    ("work-dir: /etc/motd\n", ["work-dir /etc/motd is a file, not a directory"]),
])
def test_config_names_what_is_not_there(tmp_path, text, words) -> None:
    spec = load_spec(spec_file(tmp_path, text))
    with jre_tree() as tree, pytest.raises(SpecError) as e:
        tree.add_file("etc/motd", b"hi\n")
        check_config(tree, spec, "/usr/bin:/bin")
    for w in words:
        assert w in e.value.message


def test_config_follows_links_and_path(tmp_path, table) -> None:
    spec = load_spec(spec_file(tmp_path, "cmd: [java, -version]\nwork-dir: /tmp\n"))
    with jre_tree() as tree:
        tree.add_dir("tmp", 0o1777)
        apply_alternatives(tree, table, {}, "image.yaml")
        check_config(tree, spec, "/usr/local/bin:/usr/bin:/bin")

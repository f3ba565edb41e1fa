"""The spec's app-facing sections: paths with source, owners by name, the runtime config
(string cmd split as a shell would, ports, volumes, stop-signal, labels), layering, and the
one mode parser both the spec and slice definitions read modes with."""

from __future__ import annotations

import pytest
from hermetic import run, write_spec

from assembler.errors import SpecError
from assembler.spec.document import Layering, load_spec
from assembler.spec.modes import parse_mode

BASE = "distro: debian/bookworm\ncontents:\n  packages: [python3]\n"
ACCOUNTS = """accounts:
  groups: [{groupname: app, gid: 1500}]
  users: [{username: nonroot, uid: 65532, gid: 65532}]
"""


def _load(tmp_path, text: str):
    return load_spec(write_spec(tmp_path, BASE + text))


def _err(tmp_path, text: str) -> str:
    with pytest.raises(SpecError) as e:
        _load(tmp_path, text)
    return str(e.value)


def test_modes_keep_each_formats_meaning():
    # The spec: every mode is octal, as apko and chmod read it.
    assert parse_mode("0755", "octal") == parse_mode("755", "octal") == 0o755
    # Slice definitions: chisel's mode is a YAML integer, so bare digits are decimal.
    assert parse_mode("420", "decimal") == 420 and parse_mode("0644", "decimal") == 0o644
    assert parse_mode("0o644", "decimal") == parse_mode("0o644", "octal") == 0o644
    assert parse_mode("0x1a4", "decimal") == 0o644 and parse_mode("0x1a4", "octal") is None
    for bad in ("0789", "17777", "rwx", "", "-1", "٧٥٥"):
        assert parse_mode(bad, "octal") is None


def test_string_cmd_and_entrypoint_are_split_as_a_shell_would(tmp_path):
    spec = _load(tmp_path, "entrypoint: /bin/sh -l\ncmd: echo 'two words' \"and three\"\n")
    assert spec.entrypoint == ["/bin/sh", "-l"]
    assert spec.cmd == ["echo", "two words", "and three"]
    assert _load(tmp_path, "cmd: [/bin/sh -l]\n").cmd == ["/bin/sh -l"]   # a list is as is
    msg = _err(tmp_path, "cmd: echo 'unclosed\n")
    assert "image.yaml:4:" in msg and "as a list" in msg
    assert "image.yaml:4:" in _err(tmp_path, "cmd: '  '\n")


def test_ports_volumes_stop_signal_labels(tmp_path):
    spec = _load(tmp_path, "ports: [8080, 53/udp, '9000/sctp']\nvolumes: [/data, /var/cache/x]\n"
                 "stop-signal: term\nlabels: {org.example.team: infra}\n")
    assert spec.ports == ["8080/tcp", "53/udp", "9000/sctp"]
    assert spec.volumes == ["/data", "/var/cache/x"]
    assert spec.stop_signal == "SIGTERM" and spec.labels == {"org.example.team": "infra"}
    assert _load(tmp_path, "stop-signal: SIGRTMIN+3\n").stop_signal == "SIGRTMIN+3"
    assert _load(tmp_path, "stop-signal: 9\n").stop_signal == "9"
    for text, word in [("ports: [70000]\n", "port"), ("ports: [80, 80/tcp]\n", "twice"),
                       ("ports: [http]\n", "port"), ("volumes: [data]\n", "absolute"),
                       ("stop-signal: SIGTREM\n", "SIGTERM"), ("stop-signal: 99\n", "signal"),
                       ("labels: {a: b}\nannotations: {a: c}\n", "annotation")]:
        msg = _err(tmp_path, text)
        assert "image.yaml:4:" in msg and word in msg, (text, msg)


def test_paths_source_owners_by_name_and_modes(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app.conf").write_text("x=1\n")
    spec = _load(tmp_path, ACCOUNTS + "paths:\n"
                 "  - {path: /app, type: directory, source: app, uid: nonroot, gid: app}\n"
                 "  - {path: /etc/app.conf, type: file, source: app.conf, mode: '640', gid: app}\n"
                 "  - {path: /app, type: permissions, uid: nobody, recursive: true}\n")
    d, f, perm = spec.paths
    assert (d.uid, d.gid, d.source) == (65532, 1500, tmp_path / "app")
    assert (f.mode, f.uid, f.gid) == (0o640, None, 1500)
    assert (perm.uid, perm.gid, perm.mode, perm.recursive) == (65534, None, None, True)
    assert spec.has_app
    # A user's own primary group, which the spec did not declare, has the user's name.
    assert _load(tmp_path, ACCOUNTS + "paths: [{path: /x, type: directory, gid: nonroot}]\n"
                 ).paths[0].gid == 65532


@pytest.mark.parametrize("text,words", [
    ("paths: [{path: /a, type: file, source: missing}]\n", ["image.yaml:7:", "missing",
                                                            "cannot be read"]),
    ("paths: [{path: /a, type: file, source: app}]\n", ["image.yaml:7:", "regular file"]),
    ("paths: [{path: /a, type: directory, source: app.conf}]\n", ["image.yaml:7:", "directory"]),
    ("paths: [{path: /a, type: file, source: app.conf, content: x}]\n", ["not both"]),
    ("paths: [{path: /a, type: directory, source: app, mode: '0700'}]\n", ["permissions"]),
    ("paths: [{path: /a, type: permissions}]\n", ["needs 'mode', 'uid' or 'gid'"]),
    ("paths: [{path: /a, type: symlink, target: /b, recursive: true}]\n", ["does not take"]),
    ("paths: [{path: /a, type: hardlink, target: /b, uid: 5}]\n", ["does not take 'uid'"]),
    ("paths: [{path: /a, type: symlink}]\n", ["needs 'target'"]),
    ("paths: [{path: /a, type: directory, uid: nonrot}]\n", ["'nonrot'", "nonroot"]),
    ("paths: [{path: /a, type: directory, gid: nobody}]\n", ["nogroup"]),
    ("paths: [{path: /a, type: file, content: !!binary aGVsbG8=}]\n", ["!!binary", "source"]),
])
def test_bad_paths(tmp_path, text, words):
    (tmp_path / "app").mkdir()
    (tmp_path / "app.conf").write_text("x=1\n")
    msg = _err(tmp_path, ACCOUNTS + text)
    assert all(w in msg for w in words), msg


def test_missing_source_is_exit_2_with_the_line(tmp_path, capsys):
    spec = write_spec(tmp_path, BASE + "paths:\n  - {path: /app/hello, type: file, "
                      "source: hello-static}\n")
    code, _, err = run(["build", str(spec), "-q"], capsys)
    assert code == 2 and f"{spec}:5:" in err and "hello-static" in err
    assert "Traceback" not in err and not (tmp_path / "image.tar").exists()


def test_layering(tmp_path):
    assert _load(tmp_path, "").layering == Layering("single", 0)
    assert _load(tmp_path, "layering: {strategy: origin, budget: 3}\n").layering == \
        Layering("origin", 3)
    assert _load(tmp_path, "layering: {strategy: origin}\n").layering.budget == 10
    for text, word in [("layering: {strategy: popularity}\n", "origin"),
                       ("layering: {strategy: origin, budget: 0}\n", "out of range"),
                       ("layering: {strategy: single, budget: 3}\n", "origin strategy only")]:
        msg = _err(tmp_path, text)
        assert "image.yaml:4:" in msg and word in msg, msg

"""Must-show (issue 17): our own catalogs load, and so do definitions written in each of
chisel's formats v1, v2 and v3 using every key (essential as list or map, v3-essential,
copy, hint, prefer chains, generate, mutable, until, arch lists, a mutate script, an
unknown key), read the way chisel reads them; lazy loading reads only what a selection
needs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from test_chisel_setup import BASE_PASSWD, chisel_yaml

from assembler.errors import SpecError
from assembler.slices.catalog import Catalog
from assembler.slices.mutate import script_digest

ROOT = Path(__file__).resolve().parent.parent

TOOL_SLICES = """\
    hint: Run the tool
    contents:
      /usr/bin/tool:
      /usr/bin/tool-link: {symlink: tool}
      /usr/share/tool/default.conf: {until: mutate}
      /etc/tool.conf: {copy: /usr/share/tool/default.conf, mode: 0600}
      /usr/share/tool/data/*.db: {arch: [amd64, arm64, ppc64el]}
      /usr/bin/helper: {prefer: helper-a}
  config:
    contents:
      /etc/tool/: {make: true}
  copyright:
    contents:
      /usr/share/doc/tool/copyright:
  chisel:
    contents:
      /var/lib/chisel/**: {generate: manifest}
  scripted:
    contents:
      /etc/tool.state: {text: FIXME, mutable: true}
    mutate: |
      content.write("/etc/tool.state", "ready")
"""


def _essential(fmt: str, names: list[str], archs: dict[str, list[str]] | None = None,
               key: str = "essential") -> str:
    """One essential block in the format's style (v1/v2 list, v3 map), indented for a slice."""
    archs = archs or {}
    if fmt == "v3" or key == "v3-essential":
        body = "".join(f"      {n}: {{arch: [{', '.join(archs[n])}]}}\n" if n in archs
                       else f"      {n}:\n" for n in names)
        return f"    {key}:\n{body}"
    return f"    {key}: [{', '.join(names)}]\n"


def _definitions(fmt: str) -> dict[str, str]:
    if fmt == "v3":   # arch-specific essentials: v3's map, or v1/v2's v3-essential
        arch_deps = _essential(fmt, ["libc6_libs", "tool_config"],
                               {"tool_config": ["amd64", "arm64"]})
    else:
        arch_deps = _essential(fmt, ["libc6_libs"]) + _essential(
            fmt, ["tool_config", "libc6_config"],
            {"tool_config": ["amd64", "arm64"], "libc6_config": ["s390x"]}, key="v3-essential")
    pkg_essential = ("essential:\n  tool_copyright:\n" if fmt == "v3"
                     else "essential: [tool_copyright]\n")
    return {
        "libc6": textwrap.dedent("""\
            package: libc6
            slices:
              libs:
                hint: The C library
                contents:
                  /usr/lib/*-linux-*/libc.so.6:
                  /lib64/ld-linux-x86-64.so.2: {arch: amd64}
                  /lib/ld-linux-aarch64.so.1: {arch: [arm64]}
              config:
                contents:
                  /etc/ld.so.conf: {text: "include /etc/ld.so.conf.d/*.conf\\n", mode: 0644}
                  /etc/ld.so.conf.d/: {make: true, mode: 0755}
                  /etc/ld.so.cache: {text: "", mutable: true}
            """),
        "tool": f"package: tool\n{pkg_essential}archive: ubuntu\nfuture-key: ignored\nslices:\n"
                "  bins:\n" + arch_deps + TOOL_SLICES,
        # A prefer chain: tool -> helper-a -> helper-b.
        "helper-a": "package: helper-a\nslices:\n  bins:\n    contents:\n"
                    "      /usr/bin/helper: {prefer: helper-b}\n",
        "helper-b": "package: helper-b\nslices:\n  bins:\n    contents:\n      /usr/bin/helper:\n",
        "base-passwd": BASE_PASSWD,
    }


@pytest.fixture(params=["v1", "v2", "v3"])
def release(request, tmp_path, apt_key) -> tuple[str, Path]:
    fmt = request.param
    (tmp_path / "chisel.yaml").write_text(chisel_yaml(apt_key, fmt))
    slices = tmp_path / "slices" / "nested"
    slices.mkdir(parents=True)
    for name, text in _definitions(fmt).items():
        (slices / f"{name}.yaml").write_text(text)
    return fmt, tmp_path / "slices"


def test_our_catalogs_load_and_check() -> None:
    for release in ("bookworm", "trixie"):
        cat = Catalog.load(ROOT / "repos" / "debian" / release / "slices")
        assert cat.format is None and len(cat.packages) >= 35


def test_every_key_of_each_format_loads(release, capsys) -> None:
    fmt, slices = release
    cat = Catalog.load(slices)
    assert cat.format == fmt
    bins = cat.get("tool_bins")
    assert bins.hint == "Run the tool"
    assert dict(bins.essential)["tool_config"] == ("amd64", "arm64")
    assert ("tool_copyright", None) in bins.essential          # package-level essential
    if fmt != "v3":
        assert dict(bins.essential)["libc6_config"] == ("s390x",)   # v3-essential
    copy = bins.contents["/etc/tool.conf"]
    assert (copy.kind, copy.source, copy.mode) == ("copy", "/usr/share/tool/default.conf", 0o600)
    assert bins.contents["/usr/share/tool/default.conf"].until == "mutate"
    assert bins.contents["/usr/share/tool/data/*.db"].arch == ("amd64", "arm64", "ppc64el")
    assert bins.contents["/usr/bin/helper"].prefer == "helper-a"
    assert cat.get("libc6_config").contents["/etc/ld.so.cache"].mutable
    assert cat.get("tool_chisel").contents["/var/lib/chisel/**"].generate == "manifest"
    assert "future-key" in capsys.readouterr().err
    # Essentials follow the arch: tool_config only on amd64/arm64, libc6_config on s390x.
    amd64 = {s.full for s in cat.closure(["tool_bins"], "amd64")}
    assert {"tool_config", "libc6_libs", "tool_copyright"} <= amd64
    assert "tool_config" not in {s.full for s in cat.closure(["tool_bins"], "riscv64")}


def test_a_mutate_script_loads_but_selecting_it_is_refused(release) -> None:
    _, slices = release
    cat = Catalog.load(slices)
    assert cat.get("tool_scripted").mutate
    with pytest.raises(SpecError) as e:
        cat.closure(["tool_scripted"], "amd64")
    assert "tool_scripted" in e.value.message and "mutate" in e.value.message
    assert "tool.yaml:" in e.value.message


def test_a_script_a_generator_covers_is_selectable(release) -> None:
    _, slices = release
    cat = Catalog.load(slices)
    data = cat.closure(["base-passwd_data"], "amd64")[0]
    assert data.covered
    assert data.contents["/etc/passwd"].generate == "passwd"
    assert data.contents["/etc/group"].generate == "group"


def test_a_changed_script_is_no_longer_covered(tmp_path, apt_key) -> None:
    (tmp_path / "chisel.yaml").write_text(chisel_yaml(apt_key, "v1"))
    (tmp_path / "slices").mkdir()
    changed = BASE_PASSWD.replace('content.write("/etc/group", gr)',
                                  'content.write("/etc/group", gr + "x")')
    assert script_digest(changed) != script_digest(BASE_PASSWD)
    (tmp_path / "slices" / "base-passwd.yaml").write_text(changed)
    cat = Catalog.load(tmp_path / "slices")
    with pytest.raises(SpecError, match="base-passwd_data has a Starlark 'mutate' script"):
        cat.closure(["base-passwd_data"], "amd64")


def test_selecting_reads_only_the_files_it_needs(release, monkeypatch) -> None:
    import assembler.slices.catalog as catalog

    _, slices = release
    read: list[str] = []
    real = catalog.load_file
    monkeypatch.setattr(catalog, "load_file",
                        lambda path, *a, **kw: (read.append(path.stem), real(path, *a, **kw))[1])
    cat = Catalog.open(slices)
    cat.closure(["libc6_libs"], "amd64")
    assert read == ["libc6"]
    cat.closure(["tool_config"], "amd64")   # tool's package essential: its copyright
    assert sorted(read) == ["libc6", "tool"]


def test_a_conflict_outside_the_selection_does_not_stop_it(tmp_path, apt_key) -> None:
    """Lazy: what a spec does not choose is not read, so its faults cannot fail the spec;
    loading the whole release (assemble find, the bench) still finds them."""
    (tmp_path / "chisel.yaml").write_text(chisel_yaml(apt_key, "v1"))
    d = tmp_path / "slices"
    d.mkdir()
    (d / "one.yaml").write_text("package: one\nslices:\n  bins:\n    contents:\n      /x:\n")
    (d / "two.yaml").write_text("package: two\nslices:\n  bins:\n    contents:\n      /x:\n")
    (d / "three.yaml").write_text("package: three\nslices:\n  bins:\n    contents:\n"
                                  "      /y:\n")
    assert [s.full for s in Catalog.open(d).closure(["three_bins"], "amd64")] == ["three_bins"]
    with pytest.raises(SpecError, match="slices one_bins and two_bins conflict on /x"):
        Catalog.open(d).closure(["one_bins", "two_bins"], "amd64")
    with pytest.raises(SpecError, match="conflict on /x"):
        Catalog.load(d)


@pytest.mark.parametrize("release", ["focal", "jammy", "noble", "resolute", "stonking"])
def test_ubuntu_definitions_split_primary_and_ports(release) -> None:
    import pysequoia

    from assembler.distro.definition import load_distro

    d = load_distro(f"ubuntu/{release}")
    primary, ports = d.archives
    assert (primary.name, ports.name) == ("ubuntu", "ubuntu-ports")
    assert primary.serves("amd64") and not primary.serves("arm64")
    assert ports.serves("arm64") and not ports.serves("amd64")
    assert primary.suites == [release, f"{release}-security", f"{release}-updates"]
    assert primary.components == ["main", "universe"]
    assert [pysequoia.Cert.from_file(str(k)).fingerprint for k in primary.keys] == \
        ["f6ecb3762474eda9d21b7022871920d1991bc93c"]


def test_info_shows_definitions_as_written_and_they_load_back(release, tmp_path, apt_key,
                                                              capsys) -> None:
    from hermetic import run

    _, slices = release
    code, out, err = run(["info", "--distro", str(slices.parent), "base-passwd", "tool"],
                         capsys)
    assert code == 0, err
    assert "text: FIXME" in out and "mutate: |" in out and "generate: passwd" not in out
    again = tmp_path / "again"
    (again / "slices").mkdir(parents=True)
    (again / "chisel.yaml").write_text((slices.parent / "chisel.yaml").read_text())
    for doc, name in zip(out.split("---\n"), ("base-passwd", "tool"), strict=True):
        (again / "slices" / f"{name}.yaml").write_text(doc)
    (again / "slices" / "helper-a.yaml").write_text(
        (slices / "nested" / "helper-a.yaml").read_text())
    for dep in ("libc6", "helper-b"):
        (again / "slices" / f"{dep}.yaml").write_text(
            (slices / "nested" / f"{dep}.yaml").read_text())
    cat = Catalog.load(again / "slices")
    assert cat.closure(["base-passwd_data"], "amd64")[0].covered
    assert cat.get("tool_bins").contents["/etc/tool.conf"].source == \
        "/usr/share/tool/default.conf"
    assert dict(cat.get("tool_bins").essential)["tool_config"] == ("amd64", "arm64")

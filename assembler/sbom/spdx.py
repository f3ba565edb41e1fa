"""SPDX 2.3 JSON for one platform's image (the model of sbom.py).

Layout as scanners expect it (Trivy reads it back): the document DESCRIBES the image
(its manifest digest); the image CONTAINS the operating system, which CONTAINS every
package; a package DEPENDS_ON those the lock says it pulled in. A sliced package
CONTAINS the files the image has of it, each with its checksums.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from assembler.image.oci import iso8601
from assembler.sbom.licenses import NOASSERTION
from assembler.sbom.model import Sbom, SbomPackage

MEDIA_TYPE = "application/spdx+json"
_ID_CHARS = re.compile(r"[^A-Za-z0-9.-]+")
_LICENSE_REF = re.compile(r"LicenseRef-[A-Za-z0-9.-]+")


def _id(kind: str, text: str) -> str:
    """An SPDXID: readable, and unique even where two names sanitize alike."""
    short = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"SPDXRef-{kind}-{_ID_CHARS.sub('-', text).strip('-')}-{short}"


def namespace(sbom: Sbom) -> str:
    # Unique per image and reproducible: the described manifest digest, not a random UUID.
    return (f"https://spdx.org/spdxdocs/assembler/{_ID_CHARS.sub('-', sbom.name)}-"
            f"{sbom.arch}-{sbom.digest.partition(':')[2]}")


def _supplier(p: SbomPackage) -> str:
    return f"Organization: {p.supplier}" if p.supplier else NOASSERTION


def _package(p: SbomPackage, pid: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": p.name,
        "SPDXID": pid,
        "versionInfo": p.version,
        "supplier": _supplier(p),
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "packageFileName": p.filename.rpartition("/")[2],
        "checksums": [{"algorithm": "SHA256", "checksumValue": p.sha256}],
        "sourceInfo": f"built package from: {p.source}",
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": p.license,
        "copyrightText": NOASSERTION,
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                          "referenceLocator": p.purl}],
        "primaryPackagePurpose": "LIBRARY",
    }
    if p.slices:
        doc["comment"] = "slices: " + ", ".join(p.slices)
    if p.files:
        # The files a sliced package put in the image are listed: SPDX then wants the
        # verification code over them (SPDX 2.3 section 7.9).
        doc["filesAnalyzed"] = True
        joined = "".join(sorted(f.sha1 for f in p.files)).encode()
        doc["packageVerificationCode"] = {
            "packageVerificationCodeValue": hashlib.sha1(joined, usedforsecurity=False)
            .hexdigest()}
    return doc


def spdx_document(sbom: Sbom) -> bytes:
    image_id = "SPDXRef-Image"
    os_id = "SPDXRef-OperatingSystem"
    image = {
        "name": sbom.name, "SPDXID": image_id, "versionInfo": sbom.digest,
        "downloadLocation": NOASSERTION, "filesAnalyzed": False,
        "checksums": [{"algorithm": "SHA256", "checksumValue": sbom.digest.partition(":")[2]}],
        "licenseConcluded": NOASSERTION, "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION, "primaryPackagePurpose": "CONTAINER",
        "comment": f"platform: linux/{sbom.arch}",
    }
    packages: list[dict[str, Any]] = [image]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": image_id}]
    parent = image_id
    if sbom.os_id:
        packages.append({
            "name": sbom.os_id, "SPDXID": os_id, "versionInfo": sbom.os_version,
            "downloadLocation": NOASSERTION, "filesAnalyzed": False,
            "licenseConcluded": NOASSERTION, "licenseDeclared": NOASSERTION,
            "copyrightText": NOASSERTION, "primaryPackagePurpose": "OPERATING-SYSTEM",
            **({"description": sbom.os_name} if sbom.os_name else {}),
            # How Trivy marks the OS whose packages these are (it reads no other sign).
            "annotations": [{"annotator": f"Tool: {sbom.tool}",
                             "annotationDate": iso8601(sbom.created),
                             "annotationType": "OTHER", "comment": text}
                            for text in ("Class: os-pkgs", f"Type: {sbom.os_id}")],
        })
        relationships.append({"spdxElementId": image_id, "relationshipType": "CONTAINS",
                              "relatedSpdxElement": os_id})
        parent = os_id
    ids = {p.name: _id("Package", f"{p.name}-{p.arch}") for p in sbom.packages}
    files: list[dict[str, Any]] = []
    for p in sbom.packages:
        packages.append(_package(p, ids[p.name]))
        relationships.append({"spdxElementId": parent, "relationshipType": "CONTAINS",
                              "relatedSpdxElement": ids[p.name]})
        for f in p.files:
            fid = _id("File", f"{p.name}-{f.path}")
            files.append({"fileName": "." + f.path, "SPDXID": fid,
                          "checksums": [{"algorithm": "SHA1", "checksumValue": f.sha1},
                                        {"algorithm": "SHA256", "checksumValue": f.sha256}],
                          "licenseConcluded": NOASSERTION, "copyrightText": NOASSERTION})
            relationships.append({"spdxElementId": ids[p.name], "relationshipType": "CONTAINS",
                                  "relatedSpdxElement": fid})
    for p in sbom.packages:
        for d in p.depends_on:
            relationships.append({"spdxElementId": ids[p.name], "relationshipType": "DEPENDS_ON",
                                  "relatedSpdxElement": ids[d]})
    refs = sorted({r for p in sbom.packages for r in _LICENSE_REF.findall(p.license)})
    doc: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{sbom.name} linux/{sbom.arch}",
        "documentNamespace": namespace(sbom),
        "creationInfo": {"created": iso8601(sbom.created),
                         "creators": [f"Tool: {sbom.tool}"]},
        "packages": packages,
    }
    if files:
        doc["files"] = files
    doc["relationships"] = relationships
    if refs:
        doc["hasExtractedLicensingInfos"] = [{
            "licenseId": r, "name": r.removeprefix("LicenseRef-"),
            "extractedText": f"The licence the package names {r.removeprefix('LicenseRef-')!r}; "
                             "it has no SPDX identifier. Its text is in the package's "
                             "copyright file."} for r in refs]
    return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode()

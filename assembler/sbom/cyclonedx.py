"""CycloneDX 1.6 JSON for one platform's image (the model of sbom.py).

metadata.component is the image (its manifest digest); the operating system is a
component the image depends on, and it depends on every package, which is how Trivy
tells OS packages from others when it reads the document back. Package-to-package
dependencies are the lock's reasons; a sliced package nests the files the image has
of it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from assembler.image.oci import iso8601
from assembler.sbom.licenses import NOASSERTION
from assembler.sbom.model import Sbom, SbomPackage

MEDIA_TYPE = "application/vnd.cyclonedx+json"
# A fixed namespace: the serial number is a function of the described image alone.
_SERIAL_NAMESPACE = uuid.UUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427")


def _supplier(text: str) -> dict[str, Any]:
    name, _, rest = text.partition("<")
    out: dict[str, Any] = {"name": name.strip() or text}
    email = rest.partition(">")[0].strip()
    if email:
        out["contact"] = [{"email": email}]
    return out


def _component(p: SbomPackage) -> dict[str, Any]:
    c: dict[str, Any] = {"bom-ref": p.purl, "type": "library"}
    if p.supplier:
        c["supplier"] = _supplier(p.supplier)
    c.update({"name": p.name, "version": p.version,
              "hashes": [{"alg": "SHA-256", "content": p.sha256}]})
    if p.license != NOASSERTION:
        c["licenses"] = [{"expression": p.license}]
    c["purl"] = p.purl
    props = [{"name": "assembler:arch", "value": p.arch},
             {"name": "assembler:filename", "value": p.filename},
             {"name": "assembler:source", "value": p.source}]
    if p.slices:
        props.append({"name": "assembler:slices", "value": ",".join(p.slices)})
    c["properties"] = props
    if p.files:
        c["components"] = [{"bom-ref": f"{p.purl}#{f.path}", "type": "file", "name": f.path,
                            "hashes": [{"alg": "SHA-1", "content": f.sha1},
                                       {"alg": "SHA-256", "content": f.sha256}]}
                           for f in p.files]
    return c


def cyclonedx_document(sbom: Sbom) -> bytes:
    image_ref = f"image:{sbom.digest}"
    os_ref = f"os:{sbom.os_id}@{sbom.os_version}"
    components: list[dict[str, Any]] = []
    dependencies: list[dict[str, Any]] = []
    purls = [p.purl for p in sbom.packages]
    if sbom.os_id:
        components.append({"bom-ref": os_ref, "type": "operating-system", "name": sbom.os_id,
                           "version": sbom.os_version,
                           **({"description": sbom.os_name} if sbom.os_name else {}),
                           # How Trivy marks the OS whose packages these are.
                           "properties": [{"name": "aquasecurity:trivy:Class",
                                           "value": "os-pkgs"},
                                          {"name": "aquasecurity:trivy:Type",
                                           "value": sbom.os_id}]})
        dependencies += [{"ref": image_ref, "dependsOn": [os_ref]},
                         {"ref": os_ref, "dependsOn": purls}]
    else:
        dependencies.append({"ref": image_ref, "dependsOn": purls})
    by_name = {p.name: p for p in sbom.packages}
    for p in sbom.packages:
        components.append(_component(p))
        dependencies.append({"ref": p.purl,
                             "dependsOn": [by_name[d].purl for d in p.depends_on]})
    tool, _, version = sbom.tool.partition("-")
    doc = {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": "urn:uuid:" + str(uuid.uuid5(_SERIAL_NAMESPACE,
                                                     f"{sbom.name}/{sbom.digest}")),
        "version": 1,
        "metadata": {
            "timestamp": iso8601(sbom.created),
            "tools": {"components": [{"type": "application", "name": tool,
                                      "version": version}]},
            "component": {"bom-ref": image_ref, "type": "container", "name": sbom.name,
                          "version": sbom.digest,
                          "properties": [{"name": "assembler:platform",
                                          "value": f"linux/{sbom.arch}"}]},
        },
        "components": components,
        "dependencies": dependencies,
    }
    return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode()

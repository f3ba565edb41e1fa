"""What an image holds, as SBOM documents (SPDX, CycloneDX) beside it and attached on push."""

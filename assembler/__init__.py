"""assembler: minimal, reproducible OCI images from Debian and Alpine packages."""

__version__ = "0.1.0"

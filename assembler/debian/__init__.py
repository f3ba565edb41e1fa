"""Debian specifics: versions, archive indexes, .deb files."""

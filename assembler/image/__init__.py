"""Layers, OCI documents and image files on disk."""

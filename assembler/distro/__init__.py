"""Distro definitions and where their archives are served from."""

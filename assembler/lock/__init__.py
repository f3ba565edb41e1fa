"""The lockfile: resolving a spec per arch, reading, validating and writing locks."""

"""Package universes: the format-neutral model, loading one per arch, resolution."""

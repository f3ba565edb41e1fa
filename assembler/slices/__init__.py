"""chisel-style slices: definitions, what a slice takes, the jsonwall manifest."""

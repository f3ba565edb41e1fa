"""The in-memory image filesystem and what maintainer scripts would have made."""

"""Every dynamically linked file finds its loader and libraries."""

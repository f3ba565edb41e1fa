"""Pushing images over the OCI distribution API, with the user's credentials."""

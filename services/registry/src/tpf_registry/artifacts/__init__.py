"""Fetching release artifacts from their URIs and keeping the registry's own copies."""

"""TPF release registry service."""

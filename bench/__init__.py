"""Benchmarks of the suite (run from the repository root: `python -m bench.<module>`)."""

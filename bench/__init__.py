"""Benchmarks: scripts that print figures (see the README's Performance section)."""

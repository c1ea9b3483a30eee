"""Measurements of nets: timing (and, with later issues, FLOPs and speedups)."""

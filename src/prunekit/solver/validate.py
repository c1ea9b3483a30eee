"""Solver settings prunekit refuses up front, with a message, instead of misbehaving later."""

from __future__ import annotations

from prunekit.errors import PrunekitError


def validate_solver(param, path: str) -> None:
    """Raise PrunekitError for settings this version cannot honour."""
    if param.HasField("snapshot_format") and param.snapshot_format == param.HDF5:
        raise PrunekitError(f"{path}: snapshot_format: HDF5 is not supported; use BINARYPROTO")
    if param.snapshot_diff:
        raise PrunekitError(f"{path}: snapshot_diff is not supported (snapshots hold weights only)")
    if param.max_iter < 0:
        raise PrunekitError(f"{path}: max_iter must be >= 0, got {param.max_iter}")
    if param.iter_size < 1:
        raise PrunekitError(f"{path}: iter_size must be >= 1, got {param.iter_size}")

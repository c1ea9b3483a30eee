"""The check that snapshots can be written where ``snapshot_prefix`` points, made before training.

Used by ``prunekit train`` before it starts data-parallel ranks and by each training process;
it imports nothing heavy, so a launcher that only starts and watches ranks stays light.
"""

from __future__ import annotations

import os

from prunekit.errors import PrunekitError


def check_snapshot_prefix(prefix: str, solver_path: str) -> None:
    """Fail before training, not after hours, when snapshots could not be written."""
    folder = os.path.dirname(prefix) or "."
    if not os.path.isdir(folder):
        raise PrunekitError(
            f"{solver_path}: snapshot_prefix '{prefix}' points into '{folder}', which does not exist"
        )
    if not os.access(folder, os.W_OK):
        raise PrunekitError(f"{solver_path}: cannot write snapshots into '{folder}'")

"""Remove the hidden temporary snapshot files a killed run left behind.

Snapshots are written to ``.<name>.<random>.tmp`` beside their final name and renamed
(src/prunekit/atomic.py), so a SIGKILL (or a power cut) during a write leaves a hidden temp file,
never a truncated ``.caffemodel``/``.solverstate``. Nothing removes those temp files then; the
next run with the same ``snapshot_prefix`` does, before it writes its own. Only names of exactly
that form, for snapshots of this prefix, are touched.
"""

from __future__ import annotations

import glob
import os

from prunekit.log import get_logger


def stale_temp_files(prefix: str) -> list[str]:
    """Hidden temp files of ``<prefix>*_iter_<N>.caffemodel|.solverstate`` snapshots."""
    folder, base = os.path.split(prefix)
    found = []
    for ext in ("caffemodel", "solverstate"):
        pattern = os.path.join(glob.escape(folder), f".{glob.escape(base)}*_iter_*.{ext}.*.tmp")
        found += glob.glob(pattern)
    return sorted(found)


def remove_stale_temps(prefix: str) -> list[str]:
    """Delete :func:`stale_temp_files` (logging each); returns the paths removed."""
    removed = []
    for path in stale_temp_files(prefix):
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        get_logger().info("Removed %s, a partial snapshot left by an interrupted run", path)
        removed.append(path)
    return removed

"""How many data worker processes each ``Data``/``ImageData`` layer uses (no torch import here,
so the CLI can set it before deciding to train in this process or to launch ranks).

``PRUNEKIT_DATA_WORKERS`` (``prunekit train --data-workers N`` sets it, and launched
data-parallel ranks inherit it); unset: the usable cores divided by the data-parallel processes
on this machine (``LOCAL_WORLD_SIZE``). 0 decodes in the layer's prefetch thread (no processes).
"""

from __future__ import annotations

import os

from prunekit.errors import PrunekitError

WORKERS_ENV = "PRUNEKIT_DATA_WORKERS"


def set_data_workers(count: int) -> None:
    """``--data-workers N``: use N worker processes per data layer in this run."""
    if count < 0:
        raise PrunekitError(f"--data-workers {count}: expected a number of worker processes "
                            ">= 0 (0: decode in a thread of the training process)")
    os.environ[WORKERS_ENV] = str(count)


def data_workers() -> int:
    """Worker processes per data layer: ``$PRUNEKIT_DATA_WORKERS``, else cores per local rank."""
    text = os.environ.get(WORKERS_ENV, "").strip()
    if text:
        if not text.isdigit():
            raise PrunekitError(f"{WORKERS_ENV}={text!r}: expected a number of data worker "
                                "processes >= 0 (0: decode in a thread of the training process)")
        return int(text)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, (cores or 1) // max(1, ranks))

"""Map a function over items in worker processes, results in input order.

Decoding and resizing images is CPU-bound Python-called C code, so threads would serialise on
the GIL for the small images and on numpy copies: worker processes scale with cores instead.
Results come back in the order of the inputs, so what a caller writes does not depend on the
worker count. One worker runs in the calling process (no pool, no pickling).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_CHUNK = 8  # items handed to a worker at a time: amortises pickling, keeps the order fine-grained


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def ordered_map(func: Callable[[T], R], items: Iterable[T], workers: int,
                initializer: Callable[..., Any] | None = None,
                initargs: tuple = ()) -> Iterator[Iterator[R]]:
    """``with ordered_map(func, items, n) as results:`` ``func(item)`` for each item, in order,
    computed by ``workers`` processes.

    The workers start when the ``with`` block is entered (before the caller opens databases) and
    are terminated when it is left, also on an error or Ctrl-C. ``func`` and ``initializer`` must
    be module-level functions (they are sent to the workers); ``initializer(*initargs)`` runs once
    per worker (and once here when ``workers`` is 1).
    """
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield map(func, items)
        return
    with _context().Pool(workers, initializer=initializer, initargs=initargs) as pool:
        yield pool.imap(func, items, chunksize=_CHUNK)


def _context() -> multiprocessing.context.BaseContext:
    """fork where available (workers start in milliseconds; callers start the pool before
    opening databases or threads), else the platform default."""
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()

"""Map a function over items in worker processes, results in input order.

Decoding and resizing an image is C code, but building and serialising its Datum holds the GIL;
worker processes share nothing and scale with the cores.
Results come back in the order of the inputs, so what a caller writes does not depend on the
worker count. One worker runs in the calling process (no pool, no pickling).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_CHUNK = 8  # items sent to a worker at a time: amortises the pickling, keeps the order fine-grained
_AHEAD = 4  # chunks in flight per worker: keeps workers busy, bounds the results held in memory


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
    with ProcessPoolExecutor(workers, mp_context=_context(), initializer=initializer,
                             initargs=initargs) as pool:
        yield _in_order(pool, func, items, workers * _AHEAD)


def _run_chunk(func: Callable[[T], R], chunk: list[T]) -> list[R]:
    return [func(item) for item in chunk]


def _in_order(pool: ProcessPoolExecutor, func: Callable[[T], R], items: Iterable[T],
              window: int) -> Iterator[R]:
    """Results chunk by chunk in input order, with at most ``window`` chunks submitted and not
    yet consumed: a slow consumer (an LMDB writer) never makes results pile up in memory."""
    chunks = iter(lambda it=iter(items): list(itertools.islice(it, _CHUNK)), [])
    pending: deque[Future] = deque(pool.submit(_run_chunk, func, c)
                                   for c in itertools.islice(chunks, window))
    try:
        while pending:
            done = pending.popleft().result()
            for chunk in itertools.islice(chunks, 1):
                pending.append(pool.submit(_run_chunk, func, chunk))
            yield from done
    finally:
        for future in pending:
            future.cancel()


def _context() -> multiprocessing.context.BaseContext:
    """fork where available (workers start in milliseconds; callers start the pool before
    opening databases or threads), else the platform default."""
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()

"""Background prefetch: run a batch iterator in a thread, a bounded number of batches ahead.

Decoding and transforming the next batches overlaps the forward/backward of the current one. The
iterator is created *inside* the thread (LMDB transactions stay in the thread that opened them);
errors raised there are re-raised by :meth:`Prefetcher.get` in the caller's thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

_POLL_S = 0.1  # how often a blocked thread checks whether it was asked to stop


class _Failure:
    """Carries an exception from the prefetch thread to the consumer."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Prefetcher:
    """Yields the items of ``make(start)`` in order; ``depth`` > 0 computes them in a thread.

    With ``depth == 0`` the iterator runs synchronously in the caller's thread (no thread at all).
    """

    def __init__(self, make: Callable[[int], Iterator[Any]], start: int, depth: int,
                 name: str = "prefetch") -> None:
        self._stop = threading.Event()
        self._iter: Iterator[Any] | None = None
        self._thread: threading.Thread | None = None
        if depth <= 0:
            self._iter = make(start)
            return
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, args=(make, start), name=name,
                                        daemon=True)
        self._thread.start()

    def _run(self, make: Callable[[int], Iterator[Any]], start: int) -> None:
        iterator = None
        try:
            iterator = make(start)
            while not self._stop.is_set():
                if not self._put(next(iterator)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            self._put(_Failure(exc))
        finally:
            if iterator is not None and hasattr(iterator, "close"):
                iterator.close()

    def _put(self, item: Any) -> bool:
        """Block until ``item`` is queued; False when asked to stop first."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> Any:
        """The next item; re-raises an error from the prefetch thread."""
        if self._thread is None:
            return next(self._iter)
        while True:
            try:
                item = self._queue.get(timeout=_POLL_S)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("prefetch thread ended without producing a batch")
        if isinstance(item, _Failure):
            raise item.exc
        return item

    def close(self) -> None:
        """Stop the thread (or close the synchronous iterator) and drop prefetched items."""
        self._stop.set()
        if self._thread is None:
            if self._iter is not None and hasattr(self._iter, "close"):
                self._iter.close()
            return
        while self._thread.is_alive():
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(_POLL_S)

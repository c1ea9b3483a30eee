"""Worker processes that decode and transform batches (JPEG decoding does not scale in threads).

Why processes: decoding a 256×256 JPEG, cropping and subtracting the mean takes about a
millisecond of CPU, so one thread caps training at about 1,000 images/s. A :class:`WorkerPool`
forks ``count`` processes once per data layer; the layer's prefetch thread sends them whole-batch
tasks (the encoded bytes or file names of the batch's records, a few hundred kB) and gets back
the batch as a tensor in shared memory (only a file descriptor crosses the pipe, no pixel is
pickled). Results are handed out in task order, so the output does not depend on which worker
finishes first. Worker errors come back as one-line messages naming the record and are re-raised
in the training process; workers ignore Ctrl-C (the training process handles it and stops them)
and exit on their own when the training process is gone.

The worker count is chosen in :mod:`prunekit.data.worker_count`.
"""

from __future__ import annotations

import os
import queue
import signal
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as tmp

from prunekit.data.batch_maker import BatchMaker
from prunekit.errors import PrunekitError

_POLL_S = 1.0  # how often a waiting side checks that the other side is still alive


def _shared_batch(shape: tuple[int, ...]) -> torch.Tensor:
    """An uninitialised float32 tensor in shared memory (sent to the parent as a descriptor)."""
    count = int(np.prod(shape))
    storage = torch.UntypedStorage._new_shared(count * 4)
    return torch.empty(0, dtype=torch.float32).set_(storage, 0, shape)


def _worker_main(maker: BatchMaker, shape: tuple[int, ...], tasks, results, parent: int) -> None:
    """Loop of one worker: ``(generation, seq, seed, batch, items)`` -> ``(generation, seq,
    data, labels, error message or None)``; ``None`` stops it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    import cv2

    cv2.setNumThreads(0)  # one core per worker: OpenCV's own threads would oversubscribe
    while True:
        try:
            task = tasks.get(timeout=_POLL_S)
        except queue.Empty:
            if os.getppid() != parent:
                return
            continue
        if task is None:
            return
        generation, seq, seed, batch, items = task
        try:
            data = _shared_batch(shape)
            labels = np.zeros(shape[0], dtype=np.float32)
            maker.fill(seed, batch, items, data.numpy(), labels)
            results.put((generation, seq, data, labels, None))
        except Exception as exc:  # noqa: BLE001 - reported to the training process
            message = str(exc) if isinstance(exc, PrunekitError) else f"{type(exc).__name__}: {exc}"
            results.put((generation, seq, None, None, " ".join(message.split()) or repr(exc)))


class WorkerPool:
    """``count`` forked worker processes making batches of one layer (see module docstring)."""

    def __init__(self, maker: BatchMaker, shape: tuple[int, ...], count: int, where: str) -> None:
        context = tmp.get_context("fork")
        self.where = where
        self._tasks = context.Queue()
        self._results = context.Queue()
        self._generation = 0
        self._procs = [context.Process(target=_worker_main, name=f"data worker {i}",
                                       args=(maker, shape, self._tasks, self._results, os.getpid()),
                                       daemon=True) for i in range(count)]
        for proc in self._procs:
            proc.start()
        self._finalizer = weakref.finalize(self, _stop_workers, self._procs, self._tasks)

    def __len__(self) -> int:
        return len(self._procs)

    def batches(self, tasks: Iterator[tuple[int, int, Any]], ahead: int
                ) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        """(data, labels) for each ``(seed, batch, items)`` of ``tasks``, in order, keeping
        ``ahead`` tasks in flight. Closing the iterator abandons the tasks still in flight."""
        self._generation += 1
        generation, sent, done, ready = self._generation, 0, 0, {}
        try:
            for _ in range(max(1, ahead)):
                self._tasks.put((generation, sent, *next(tasks)))
                sent += 1
            while True:
                while done not in ready:
                    got = self._receive()
                    if got[0] == generation:
                        ready[got[1]] = got
                _, _, data, labels, error = ready.pop(done)
                if error is not None:
                    raise PrunekitError(error)
                done += 1
                self._tasks.put((generation, sent, *next(tasks)))
                sent += 1
                yield data, labels
        finally:
            self._drop_queued_tasks()

    def _receive(self) -> tuple:
        while True:
            try:
                return self._results.get(timeout=_POLL_S)
            except queue.Empty:
                dead = [p for p in self._procs if not p.is_alive()]
                if dead:
                    raise PrunekitError(f"{self.where}: {dead[0].name} died (exit code "
                                        f"{dead[0].exitcode}); out of memory?") from None

    def _drop_queued_tasks(self) -> None:
        """Tasks of an abandoned generation that no worker has taken yet are not worth doing."""
        try:
            while True:
                self._tasks.get_nowait()
        except (queue.Empty, OSError, ValueError):
            pass

    def close(self) -> None:
        """Stop the workers (also done when the pool is garbage-collected or at exit)."""
        self._finalizer()


def _stop_workers(procs: list, tasks) -> None:
    for _ in procs:
        try:
            tasks.put(None)
        except (OSError, ValueError):
            break
    for proc in procs:
        proc.join(timeout=2.0)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=1.0)

"""Caffe-shaped logging.

Caffe's training log is glog on stderr: ``I1122 23:01:02.123456 12345 solver.cpp:228] Iteration 20,
loss = 0.12``. Researchers grep and parse these lines (parse_log.py, plot scripts), so the training
log keeps that prefix and wording. The pruning log (Caffe_IncReg's ``[app]`` lines) is plain
stdout, as the fork prints it, not this logger.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

_LEVEL_CHAR = {"DEBUG": "I", "INFO": "I", "WARNING": "W", "ERROR": "E", "CRITICAL": "F"}


class GlogFormatter(logging.Formatter):
    """Format records as glog does: level letter, mmdd, wall time with microseconds, thread id."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.localtime(record.created)
        micros = int((record.created % 1) * 1e6)
        prefix = (
            f"{_LEVEL_CHAR.get(record.levelname, 'I')}{time.strftime('%m%d %H:%M:%S', stamp)}"
            f".{micros:06d} {threading.get_native_id():5d} {record.filename}:{record.lineno}] "
        )
        return prefix + record.getMessage()


def get_logger() -> logging.Logger:
    """The ``prunekit`` logger, writing glog-style lines to the *current* ``sys.stderr``."""
    logger = logging.getLogger("prunekit")
    if not getattr(logger, "_prunekit_configured", False):
        handler = _StderrHandler()
        handler.setFormatter(GlogFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger._prunekit_configured = True  # type: ignore[attr-defined]
    return logger


class _StderrHandler(logging.StreamHandler):
    """Looks up sys.stderr at emit time so pytest's capture and shell redirects both work."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401 - property
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass

"""Fixtures of the solver tests: the prunekit training log as plain message lines."""

from __future__ import annotations

import pytest
from _solver_caffe_ref import LogLines

from prunekit.log import get_logger


@pytest.fixture
def log_lines():
    """Collects every message of the 'prunekit' logger (which does not propagate to root)."""
    logger = get_logger()
    handler = LogLines()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)

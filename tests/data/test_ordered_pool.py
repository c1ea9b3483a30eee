"""ordered_map: worker processes really run the items, and results keep the input order."""

from __future__ import annotations

import os
import time

import pytest

from prunekit.data.ordered_pool import ordered_map


def _slow_square(x: int) -> tuple[int, int]:
    time.sleep(0.002 * (x % 3))  # uneven work, so workers finish out of order
    return x * x, os.getpid()


@pytest.mark.parametrize("workers", [1, 2])
def test_results_in_input_order(workers: int) -> None:
    with ordered_map(_slow_square, range(60), workers) as results:
        out = list(results)
    assert [square for square, _ in out] == [x * x for x in range(60)]
    pids = {pid for _, pid in out}
    if workers == 1:
        assert pids == {os.getpid()}
    else:
        assert os.getpid() not in pids and len(pids) == 2


def _fail_on_five(x: int) -> int:
    if x == 5:
        raise ValueError("five")
    return x


def test_worker_error_reaches_the_caller() -> None:
    with pytest.raises(ValueError, match="five"):
        with ordered_map(_fail_on_five, range(40), 2) as results:
            list(results)

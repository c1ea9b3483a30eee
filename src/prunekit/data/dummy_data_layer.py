"""Caffe's ``DummyData`` layer: tops of given shapes filled by Caffe fillers.

Shapes come from ``shape`` (one for all tops or one per top) or the legacy
``num``/``channels``/``height``/``width`` lists; ``data_filler`` gives none (zeros), one (for all
tops) or one filler per top. As in Caffe, a top with a non-constant filler is refilled every batch;
the refill of batch ``b`` depends only on (seed, b).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from prunekit.data.source import DataSource, rng_for
from prunekit.errors import PrunekitError


def dummy_shapes(dp, num_tops: int, where: str) -> list[tuple[int, ...]]:
    """One shape per top from a DummyDataParameter (``shape`` or the legacy 4 lists)."""
    legacy = [list(dp.num), list(dp.channels), list(dp.height), list(dp.width)]
    if len(dp.shape) and any(legacy):
        raise PrunekitError(f"{where}: give either shape or num/channels/height/width, not both")
    if len(dp.shape):
        if len(dp.shape) not in (1, num_tops):
            raise PrunekitError(f"{where}: {len(dp.shape)} shapes for {num_tops} tops")
        return [tuple(int(d) for d in dp.shape[i if len(dp.shape) > 1 else 0].dim)
                for i in range(num_tops)]
    if not all(len(values) in (1, num_tops) for values in legacy):
        raise PrunekitError(f"{where}: num/channels/height/width need 1 or {num_tops} values "
                            "each (or use shape)")
    return [tuple(int(v[i if len(v) > 1 else 0]) for v in legacy) for i in range(num_tops)]


class DummyDataLayer(DataSource):
    """``type: "DummyData"``: filler-generated tops, e.g. for timing a net without a dataset."""

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        dp = param.dummy_data_param
        self._top_shapes = dummy_shapes(dp, self.num_tops, self.where)
        fillers = list(dp.data_filler)
        if len(fillers) not in (0, 1, self.num_tops):
            raise PrunekitError(f"{self.where}: {len(fillers)} data_filler entries for "
                                f"{self.num_tops} tops; give 0, 1 or {self.num_tops}")
        if len(fillers) == 1:
            fillers = fillers * self.num_tops
        self.fillers = fillers or [None] * self.num_tops
        self.refill = [f is not None and f.type != "constant" for f in self.fillers]
        self._fixed = [self._fill(i) if not self.refill[i] else None
                       for i in range(self.num_tops)]

    def _fill(self, top: int) -> torch.Tensor:
        tensor = torch.zeros(self._top_shapes[top], dtype=torch.float32)
        if self.fillers[top] is not None:
            from prunekit.net.fillers import fill_

            fill_(tensor, self.fillers[top])
        return tensor

    def _batches(self, start: int) -> Iterator[list[torch.Tensor]]:
        local = start
        while True:
            seed = int(rng_for(self.seed, 3, self.global_batch(local)).integers(2**63))
            with torch.random.fork_rng(devices=[]):  # leave the global torch RNG untouched
                torch.manual_seed(seed)
                tops = [self._fill(i) if self.refill[i] else self._fixed[i].clone()
                        for i in range(self.num_tops)]
            yield tops
            local += 1

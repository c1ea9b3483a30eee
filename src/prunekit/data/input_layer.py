"""Caffe's ``Input`` layer: tops whose contents the caller provides (deploy nets, timing).

Shapes come from ``input_param.shape`` (one for all tops or one per top). Until
:meth:`InputLayer.set_inputs` is called the tops are zeros of those shapes, allocated only when
first needed, so the Net can refuse shapes too large for memory before anything is allocated
(prunekit/net/memory.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from prunekit.data.source import DataSource
from prunekit.errors import PrunekitError
from prunekit.net.memory import check_shape


class InputLayer(DataSource):
    """``type: "Input"``: returns the tensors given to :meth:`set_inputs` (zeros before)."""

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        shapes = list(param.input_param.shape)
        if len(shapes) not in (1, self.num_tops):
            raise PrunekitError(f"{self.where}: input_param has {len(shapes)} shapes for "
                                f"{self.num_tops} tops; give 1 or {self.num_tops}")
        self._top_shapes = [tuple(int(d) for d in shapes[i if len(shapes) > 1 else 0].dim)
                            for i in range(self.num_tops)]
        for top, shape in zip(param.top, self._top_shapes):
            check_shape(self.where, f"top '{top}'", shape)
        self._inputs: list[torch.Tensor] | None = None  # zeros, made on first use
        self._device = torch.device("cpu")

    def place(self, device: torch.device) -> None:
        """Keep the cached tops on the net's device, so a step copies nothing from the host."""
        self._device = torch.device(device)
        if self._inputs is not None:
            self._inputs = [t.to(device) for t in self._inputs]

    def set_inputs(self, tensors: Sequence[torch.Tensor]) -> None:
        """Tensors to return from now on, one per top (used as given: no copy, any device)."""
        if len(tensors) != self.num_tops:
            raise PrunekitError(f"{self.where}: got {len(tensors)} inputs for "
                                f"{self.num_tops} tops")
        self._inputs = list(tensors)

    def _batches(self, start: int) -> Iterator[list[torch.Tensor]]:
        if self._inputs is None:
            self._inputs = [torch.zeros(s, dtype=torch.float32, device=self._device)
                            for s in self._top_shapes]
        while True:
            yield list(self._inputs)

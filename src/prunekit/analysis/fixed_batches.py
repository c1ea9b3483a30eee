"""The same input batches for every evaluation of a sensitivity run.

Each (layer, ratio) point must be scored on the very same images, or the curves would carry
sampling noise. The batches of the net's data layers are read once and fed again each time
(``Net.forward(feed=...)``); a net without data (a deploy prototxt with ``Input`` layers) gets
seeded random normal inputs, and its score is then the output distortion (see
:mod:`prunekit.analysis.sensitivity`).
"""

from __future__ import annotations

import torch

from prunekit.net.graph import Net


class FixedBatches:
    """Quacks like the ``Net`` that :func:`prunekit.solver.evaluate.evaluate` runs: calling it
    runs the net on the next stored batch (cycling)."""

    def __init__(self, net: Net, iterations: int, seed: int = 0) -> None:
        self.net = net
        self.entries = net.entries
        self.output_names = net.output_names
        self.batches = [_read_batch(net, seed + i) for i in range(iterations)]
        self._next = 0

    def __call__(self):
        feed = self.batches[self._next % len(self.batches)]
        self._next += 1
        return self.net(feed=feed)

    def rewind(self) -> None:
        self._next = 0


def _read_batch(net: Net, seed: int) -> dict[str, torch.Tensor]:
    feed: dict[str, torch.Tensor] = {}
    generator = torch.Generator().manual_seed(seed)
    for entry, module in net.named_layers():
        if not getattr(module, "is_data", False):
            continue
        if entry.type == "Input":
            for top in entry.tops:
                shape = net.blob_shapes[top]
                feed[top] = torch.randn(shape, generator=generator).to(net.device)
        else:
            for top, tensor in zip(entry.tops, module.next_batch()):
                feed[top] = tensor.to(net.device)
    return feed

"""Measured forward time per layer on this machine and batch size (the latency cost model).

Times come from :func:`prunekit.measure.timing.time_net` (``prunekit time``'s engine: each layer
timed on its own, CUDA events on a GPU); only the forward times are used, since a deployed
model runs forward only. Units: ms per batch of the net's batch size.
"""

from __future__ import annotations

from prunekit.measure.timing import time_net
from prunekit.net.graph import Net


def forward_ms(net: Net, iterations: int = 5) -> dict[str, float]:
    """Mean forward ms per batch of every layer of ``net`` (after one warm-up pass)."""
    result = time_net(net, iterations, plain_loop=False)
    return {name: fwd for name, fwd, _ in result.layers}


def time_shares(ms: dict[str, float]) -> dict[str, float]:
    """Each layer's fraction of the summed forward time."""
    total = sum(ms.values())
    return {name: (t / total if total > 0 else 0.0) for name, t in ms.items()}

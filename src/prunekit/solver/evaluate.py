"""Run a net for N batches and average its outputs, as Caffe's ``Solver::Test`` and ``caffe test``.

Scores are per output *element* (an output blob of 3 values gives 3 scores), numbered in net
output order, because that is how Caffe numbers "Test net output #k".
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from prunekit.net.graph import Net

Score = tuple[str, float, float]  # (output blob name, value, loss weight)


def evaluate(net: Net, iterations: int,
             on_batch: Callable[[int, list[Score], float], None] | None = None
             ) -> tuple[list[Score], float]:
    """Mean of every output element over ``iterations`` forward passes, and the mean loss."""
    weights = net_loss_weights(net)
    sums: list[float] = []
    names: list[str] = []
    total_loss = 0.0
    with torch.no_grad():
        for i in range(iterations):
            loss, outputs = net()
            batch = [(name, value, weights.get(name, 0.0))
                     for name in net.output_names
                     for value in outputs[name].reshape(-1).tolist()]
            if not sums:
                names = [b[0] for b in batch]
                sums = [0.0] * len(batch)
            sums = [s + b[1] for s, b in zip(sums, batch)]
            total_loss += float(loss)
            if on_batch is not None:
                on_batch(i, batch, float(loss))
    n = max(iterations, 1)
    scores = [(name, s / n, weights.get(name, 0.0)) for name, s in zip(names, sums)]
    return scores, total_loss / n


def net_loss_weights(net: Net) -> dict[str, float]:
    """Loss weight of every top blob that is weighted into the net's loss."""
    weights: dict[str, float] = {}
    for entry in net.entries:
        for top, weight in zip(entry.tops, entry.loss_weights):
            if weight:
                weights[top] = weight
    return weights


def format_score(value: float) -> str:
    """C++ ostream's default formatting (6 significant digits), which Caffe's logs use."""
    return f"{value:.6g}"


def score_text(name: str, value: float, weight: float) -> str:
    """``accuracy = 0.99`` or ``loss = 0.03 (* 1 = 0.03 loss)`` as in Caffe's logs."""
    text = f"{name} = {format_score(value)}"
    if weight:
        text += f" (* {format_score(weight)} = {format_score(weight * value)} loss)"
    return text

"""Per-layer forward/backward timing, the engine behind ``prunekit time`` (Caffe's ``caffe time``).

Forward runs layer by layer. Backward also runs layer by layer, in reverse: each layer's segment
of the autograd graph is differentiated on its own (``torch.autograd.grad`` from its tops to its
bottoms and blobs), which is exactly Caffe's ``Layer::Backward`` granularity, so the per-layer
backward times are real and not attributed by hooks. On a GPU every boundary is a CUDA event and
the iteration ends with a synchronise, so times are device times, not launch times. All times are
milliseconds per batch of the net's batch size.

Besides Caffe's instrumented loop, a second loop runs the plain ``forward()`` + ``backward()``
with no per-layer boundaries: its mean is what a training step costs and what to compare with a
hand-written PyTorch module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from prunekit.net.graph import Net, store_tops


@dataclass
class TimingResult:
    """Mean milliseconds per batch; per-layer rows in net order: (name, forward, backward)."""

    iterations: int
    initial_loss: float
    layers: list[tuple[str, float, float]] = field(default_factory=list)
    iteration_ms: list[float] = field(default_factory=list)
    forward_ms: float = 0.0
    backward_ms: float = 0.0
    forward_backward_ms: float = 0.0
    total_ms: float = 0.0
    plain_forward_backward_ms: float = 0.0


class _Clock:
    """Marks points in time; on CUDA they are events read after one synchronise."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.device = device

    def mark(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def ms(self, start, end) -> float:
        if self.cuda:
            return start.elapsed_time(end)
        return (end - start) * 1000.0

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)


def warm_up_forward(net: Net):
    """Caffe's "Performing Forward" step; returns (loss, record) for :func:`warm_up_backward`."""
    return _forward_layers(net, _Clock(net.device), timed=False)


def warm_up_backward(net: Net, warm) -> None:
    """Caffe's "Performing Backward" step, on what :func:`warm_up_forward` returned."""
    loss, record = warm
    _backward_layers(net, record, loss, _Clock(net.device), timed=False)


def time_net(net: Net, iterations: int, on_iteration=None, plain_loop: bool = True,
             initial_loss: float | None = None) -> TimingResult:
    """Caffe's benchmark: ``iterations`` timed passes (warm up first, or let this do it)."""
    clock = _Clock(net.device)
    if initial_loss is None:
        warm = warm_up_forward(net)
        initial_loss = float(warm[0])
        warm_up_backward(net, warm)
    result = TimingResult(iterations=iterations, initial_loss=initial_loss)
    fwd = [0.0] * len(net.entries)
    bwd = [0.0] * len(net.entries)
    total_start = time.perf_counter()
    for j in range(iterations):
        start = time.perf_counter()
        loss, record = _forward_layers(net, clock, timed=True)
        backward_marks = _backward_layers(net, record, loss, clock, timed=True)
        clock.sync()
        _accumulate(clock, record["marks"], fwd)
        _accumulate(clock, backward_marks, bwd)
        result.iteration_ms.append((time.perf_counter() - start) * 1000.0)
        if on_iteration is not None:
            on_iteration(j + 1, result.iteration_ms[-1])
    result.total_ms = (time.perf_counter() - total_start) * 1000.0
    n = max(iterations, 1)
    result.layers = [(e.name, f / n, b / n) for e, f, b in zip(net.entries, fwd, bwd)]
    result.forward_ms = sum(fwd) / n
    result.backward_ms = sum(bwd) / n
    result.forward_backward_ms = result.total_ms / n
    if plain_loop:
        result.plain_forward_backward_ms = time_plain_steps(net, iterations, clock)
    return result


def time_plain_steps(net: Net, iterations: int, clock: _Clock | None = None) -> float:
    """Mean ms of ``net()`` + ``backward()`` with no per-layer boundaries (a training step)."""
    clock = clock or _Clock(net.device)
    clock.sync()
    start = time.perf_counter()
    for _ in range(iterations):
        loss, outputs = net()
        _seed_backward(net, loss, outputs)
        for p in net.parameters():
            p.grad = None
    clock.sync()
    return (time.perf_counter() - start) * 1000.0 / max(iterations, 1)


def _seed_backward(net: Net, loss: torch.Tensor, outputs: dict) -> None:
    """Backward from the loss; a net without one (deploy) back-propagates ones from its outputs."""
    if loss.requires_grad:
        loss.backward()
        return
    tensors = [t for t in outputs.values() if t.requires_grad]
    if tensors:
        torch.autograd.backward(tensors, [torch.ones_like(t) for t in tensors])


def _forward_layers(net: Net, clock: _Clock, timed: bool):
    """Run the net layer by layer on detached bottoms, so that each layer's autograd graph is a
    segment of its own that :func:`_backward_layers` can differentiate alone. A step that runs
    two layers (a fused BatchNorm + Scale, ``Net.run_step``) is timed as the first of them and
    differentiates with respect to both layers' parameters; the second shows 0 ms."""
    blobs: dict[str, torch.Tensor] = {}
    record = {"bottoms": [], "leaves": [], "tops": [], "marks": [], "params": []}
    loss = torch.zeros((), device=net.device)
    i = 0
    while i < len(net.entries):
        entry = net.entries[i]
        bottoms = [blobs[b] for b in entry.bottoms]
        leaves = [b.detach().requires_grad_() if b.requires_grad else b for b in bottoms]
        start = clock.mark() if timed else None
        covered, tops = net.run_step(i, leaves)
        end = clock.mark() if timed else None
        loss = store_tops(net.entries[i + covered - 1], tops, blobs, loss)
        covered_entries = net.entries[i:i + covered]
        params = [p for e in covered_entries for p in net.layer_modules[e.key].parameters()
                  if p.requires_grad]
        for key, value in (("bottoms", bottoms), ("leaves", leaves), ("tops", list(tops)),
                           ("marks", (start, end)), ("params", params)):
            record[key].append(value)
        for _ in covered_entries[1:]:  # ran inside the step above
            for key, value in (("bottoms", []), ("leaves", []), ("tops", []),
                               ("marks", (None, None)), ("params", [])):
                record[key].append(value)
        i += covered
    record["outputs"] = [blobs[name] for name in net.output_names]
    return loss, record


def _backward_layers(net: Net, record, loss: torch.Tensor, clock: _Clock, timed: bool):
    """Differentiate each layer's segment in reverse order, as Caffe's Net::Backward; the
    gradients of a layer's bottoms add up into the blobs it read (Caffe's Split)."""
    grads = _initial_grads(net, record, loss)
    marks: list = [(None, None)] * len(net.entries)
    for i in reversed(range(len(net.entries))):
        tops = [t for t in record["tops"][i] if id(t) in grads and t.requires_grad]
        if not tops:
            continue
        pairs = [(b, leaf) for b, leaf in zip(record["bottoms"][i], record["leaves"][i])
                 if leaf.requires_grad]
        params = record["params"][i]
        start = clock.mark() if timed else None
        if pairs or params:
            result = torch.autograd.grad(tops, [leaf for _, leaf in pairs] + params,
                                         [grads[id(t)] for t in tops], allow_unused=True)
            for (bottom, _), grad in zip(pairs, result):
                if grad is not None:
                    key = id(bottom)
                    grads[key] = grads[key] + grad if key in grads else grad
        marks[i] = (start, clock.mark() if timed else None)
    return marks


def _initial_grads(net: Net, record, loss: torch.Tensor) -> dict[int, torch.Tensor]:
    grads: dict[int, torch.Tensor] = {}
    if loss.requires_grad:
        for entry, tops in zip(net.entries, record["tops"]):
            for tensor, weight in zip(tops, entry.loss_weights):
                if weight and tensor.requires_grad:
                    grads[id(tensor)] = torch.full_like(tensor, weight)
        return grads
    for tensor in record["outputs"]:
        if tensor.requires_grad:
            grads[id(tensor)] = torch.ones_like(tensor)
    return grads


def _accumulate(clock: _Clock, marks, totals: list[float]) -> None:
    for i, (start, end) in enumerate(marks):
        if start is not None and end is not None:
            totals[i] += clock.ms(start, end)

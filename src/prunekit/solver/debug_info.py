"""The solver's ``debug_info: true``: Caffe's per-layer data/diff lines on display iterations.

Caffe (``Solver::Step``) turns the net's debug info on for iterations where ``display`` shows
the loss, and then logs, per layer, the mean absolute value (``asum / count``) of:

* forward: every top blob and every parameter blob —
  ``[Forward] Layer conv1, top blob conv1 data: 0.123`` / ``..., param blob 0 data: ...``;
* backward, from the last layer to the first: every bottom diff that is back-propagated and
  every parameter diff — ``[Backward] Layer conv1, bottom blob data diff: ...`` /
  ``..., param blob 0 diff: ...``, then the L1 and L2 norms of all learnable parameters and
  their diffs;
* update, per learnable parameter before it moves: its data and the step about to be
  subtracted — ``[Update] Layer conv1, param 0 data: ...; diff: ...``.

A parameter shared by name is shown by that name, as Caffe does. The forward here runs layer by
layer without the net's two shortcuts (BN+Scale fusion, in-place ReLU; see net/graph.py), which
compute the same values, so that every layer's top can be seen; each bottom is seen through its
own view so that its diff is this layer's contribution (Caffe's Split layers keep them apart).
"""

from __future__ import annotations

import torch

from prunekit.log import get_logger
from prunekit.net.graph import store_tops
from prunekit.net.propagate_down import cut_gradients


def _mean_abs(tensor: torch.Tensor | None) -> float:
    if tensor is None or tensor.numel() == 0:
        return 0.0
    return float(tensor.detach().abs().sum()) / tensor.numel()


def _param_name(entry, index: int) -> str:
    specs = entry.param.param
    return specs[index].name if index < len(specs) and specs[index].name else str(index)


class DebugInfo:
    """Logs Caffe's debug lines for the iterations where ``display`` shows the loss."""

    def __init__(self) -> None:
        self.log = get_logger()
        self._seen: list[tuple[object, object, list[torch.Tensor]]] = []

    @staticmethod
    def wanted(solver) -> bool:
        """Caffe: ``net_->set_debug_info(display && param_.debug_info())``."""
        display = solver.param.display
        return bool(display) and solver.iter % display == 0

    def forward(self, net):
        """``net()`` layer by layer with the forward lines; returns ``(loss, outputs)``."""
        blobs: dict[str, torch.Tensor] = {}
        loss = torch.zeros((), device=net.device)
        self._seen = []
        for entry, module in net.named_layers():
            bottoms = cut_gradients(entry.stopped, [blobs[b] for b in entry.bottoms])
            bottoms = [b.view_as(b) if b.requires_grad else b for b in bottoms]
            for bottom in bottoms:
                if bottom.requires_grad:
                    bottom.retain_grad()
            tops = net.run_layer(entry, bottoms)
            loss = store_tops(entry, tops, blobs, loss)
            for name, top in zip(entry.tops, tops):
                self.log.info("    [Forward] Layer %s, top blob %s data: %g", entry.name, name,
                              _mean_abs(top))
            for index, blob in enumerate(module.caffe_blobs()):
                self.log.info("    [Forward] Layer %s, param blob %s data: %g", entry.name,
                              _param_name(entry, index), _mean_abs(blob))
            self._seen.append((entry, module, bottoms))
        return loss, {name: blobs[name] for name in net.output_names}

    def backward(self, blob_refs) -> None:
        """The backward lines, last layer first, then the norms of all learnable parameters."""
        for entry, module, bottoms in reversed(self._seen):
            for name, bottom in zip(entry.bottoms, bottoms):
                if bottom.requires_grad:
                    self.log.info("    [Backward] Layer %s, bottom blob %s diff: %g", entry.name,
                                  name, _mean_abs(bottom.grad))
            for index, blob in enumerate(module.caffe_blobs()):
                if blob.requires_grad:
                    self.log.info("    [Backward] Layer %s, param blob %d diff: %g", entry.name,
                                  index, _mean_abs(blob.grad))
        self._seen = []
        learnable = [ref.tensor for ref in blob_refs if ref.learnable]
        data = [t.detach() for t in learnable]
        diff = [t.grad for t in learnable if t.grad is not None]
        self.log.info("    [Backward] All net params (data, diff): L1 norm = (%g, %g); "
                      "L2 norm = (%g, %g)", sum(float(t.abs().sum()) for t in data),
                      sum(float(t.abs().sum()) for t in diff),
                      sum(float((t * t).sum()) for t in data) ** 0.5,
                      sum(float((t * t).sum()) for t in diff) ** 0.5)

    def update(self, ref, step: torch.Tensor, net) -> None:
        """One parameter's update line (before the step is subtracted)."""
        entry = next(e for e in net.entries if e.name == ref.layer)
        self.log.info("    [Update] Layer %s, param %s data: %g; diff: %g", ref.layer,
                      _param_name(entry, ref.index), _mean_abs(ref.tensor), _mean_abs(step))

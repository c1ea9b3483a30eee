"""Caffe ``Accuracy``: fraction of (non-ignored) positions whose label is in the top k scores.

Matches BVLC Caffe's current rule (accuracy_layer.cpp/.cu): a position counts as correct when
fewer than top_k *other* classes score >= the true class — ties count against the label. An
optional second top gives the accuracy per class (0 for classes that do not occur).
"""

from __future__ import annotations

import torch

from prunekit.net.layers._common import (
    canonical_axis, check_label_count, check_label_range, check_num_bottoms, require,
    single_or_tuple)
from prunekit.net.channel_rules import REDUCES
from prunekit.net.layers.base import CaffeLayer
from prunekit.net.layers.softmax_loss import labels_as_index


class Accuracy(CaffeLayer):
    """Top-k accuracy along ``axis`` (default 1), honouring ``ignore_label``."""

    channel_rule = REDUCES

    needs_backward = False

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        ap = param.accuracy_param
        check_num_bottoms(self, bottom_shapes, 2)
        shape, label_shape = tuple(bottom_shapes[0]), tuple(bottom_shapes[1])
        self.axis = canonical_axis(self, ap.axis, len(shape))
        self.top_k = ap.top_k
        check_label_count(self, shape, label_shape, self.axis)
        require(self, 1 <= self.top_k <= shape[self.axis],
                f"top_k ({self.top_k}) must be between 1 and the number of classes "
                f"({shape[self.axis]})")
        self.ignore_label = ap.ignore_label if ap.HasField("ignore_label") else None
        self.per_class = len(param.top) > 1

    @torch.no_grad()
    def forward(self, scores: torch.Tensor, label: torch.Tensor):
        num_classes = scores.shape[self.axis]
        classes = scores.detach().movedim(self.axis, -1).reshape(-1, num_classes)
        label = labels_as_index(label).to(scores.device)
        valid = (label != self.ignore_label if self.ignore_label is not None
                 else torch.ones_like(label, dtype=torch.bool))
        target = torch.where(valid, label, torch.zeros_like(label))
        check_label_range(self, target, num_classes)
        true_score = classes.gather(1, target[:, None])
        better = (classes >= true_score).sum(1) - 1  # the true class itself is not "better"
        # A sample whose scores are not all finite is wrong. (Caffe's comparisons against NaN
        # are false, so a diverged net scores 100%; that hides divergence, so we don't copy it.)
        finite = torch.isfinite(classes).all(1)
        correct = (better < self.top_k) & valid & finite
        accuracy = correct.sum() / valid.sum().clamp(min=1)
        outputs = [accuracy.to(scores.dtype)]
        if self.per_class:
            outputs.append(self._per_class(target, valid, correct, num_classes, scores.dtype))
        return single_or_tuple(outputs)

    @staticmethod
    def _per_class(target, valid, correct, num_classes: int, dtype) -> torch.Tensor:
        """Correct / seen per class, 0 where a class was not seen (scatter: no host sync)."""
        zeros = torch.zeros(num_classes, dtype=dtype, device=target.device)
        seen = zeros.scatter_add(0, target, valid.to(dtype))
        hits = zeros.scatter_add(0, target, correct.to(dtype))
        return torch.where(seen > 0, hits / seen.clamp(min=1), zeros)

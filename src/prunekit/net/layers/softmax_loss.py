"""Caffe ``SoftmaxWithLoss``: multinomial logistic loss of the softmax, numerically stable.

loss = −Σ log(max(p[label], FLT_MIN)) / normaliser over the non-ignored positions, where the
normaliser is (loss_param.normalization) VALID: the non-ignored count (default), FULL: all
outer·inner positions, BATCH_SIZE: outer, NONE: 1 — then at least 1. The legacy ``normalize: false``
means BATCH_SIZE (``true``: VALID). An optional second top is the softmax itself.
"""

from __future__ import annotations

import math

import torch

from prunekit.caffe import caffe_pb2
from prunekit.net.layers._common import (
    canonical_axis, check_label_count, check_label_range, check_num_bottoms, count, require,
    single_or_tuple)
from prunekit.net.channel_rules import REDUCES
from prunekit.net.layers.base import CaffeLayer

_NORM = caffe_pb2.LossParameter
_LOG_FLT_MIN = math.log(1.17549435e-38)  # Caffe clamps p at FLT_MIN before the log


def normalization_mode(loss_param) -> int:
    """The effective LossParameter.NormalizationMode, honouring the legacy ``normalize``."""
    if not loss_param.HasField("normalization") and loss_param.HasField("normalize"):
        return _NORM.VALID if loss_param.normalize else _NORM.BATCH_SIZE
    return loss_param.normalization


def labels_as_index(label: torch.Tensor) -> torch.Tensor:
    """Caffe label blobs are float; truncate them to class indices (static_cast<int>)."""
    return label.reshape(-1).long()


class SoftmaxWithLoss(CaffeLayer):
    """Softmax over ``softmax_param.axis``, then the normalised negative log-likelihood."""

    channel_rule = REDUCES

    is_loss = True

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        check_num_bottoms(self, bottom_shapes, 2)
        shape, label_shape = tuple(bottom_shapes[0]), tuple(bottom_shapes[1])
        self.axis = canonical_axis(self, param.softmax_param.axis, len(shape))
        check_label_count(self, shape, label_shape, self.axis)
        lp = param.loss_param
        self.ignore_label = lp.ignore_label if lp.HasField("ignore_label") else None
        self.normalization = normalization_mode(lp)
        require(self, self.normalization in (_NORM.FULL, _NORM.VALID, _NORM.BATCH_SIZE,
                                             _NORM.NONE),
                f"unknown normalization {self.normalization}")
        self.output_prob = len(param.top) > 1

    def forward(self, scores: torch.Tensor, label: torch.Tensor):
        log_prob = torch.log_softmax(scores, dim=self.axis)
        classes = log_prob.movedim(self.axis, -1).reshape(-1, scores.shape[self.axis])
        label = labels_as_index(label).to(scores.device)
        valid = (label != self.ignore_label) if self.ignore_label is not None else None
        target = label if valid is None else torch.where(valid, label, torch.zeros_like(label))
        check_label_range(self, target, scores.shape[self.axis])
        picked = classes.gather(1, target[:, None])[:, 0]
        # Forward value clamped like Caffe's log(max(p, FLT_MIN)); gradient stays p − onehot.
        picked = picked + (picked.clamp(min=_LOG_FLT_MIN) - picked).detach()
        if valid is not None:
            picked = picked * valid
        loss = -picked.sum() / self._normalizer(scores, valid)
        return single_or_tuple([loss, log_prob.exp()] if self.output_prob else [loss])

    def _normalizer(self, scores: torch.Tensor, valid: torch.Tensor | None):
        """Caffe's get_normalizer, floored at 1."""
        outer = count(scores.shape, 0, self.axis)
        if self.normalization == _NORM.FULL:
            n = outer * count(scores.shape, self.axis + 1)
        elif self.normalization == _NORM.VALID:
            if valid is not None:
                return valid.sum().clamp(min=1).to(scores.dtype)
            n = outer * count(scores.shape, self.axis + 1)
        elif self.normalization == _NORM.BATCH_SIZE:
            n = outer
        else:
            n = 1
        return max(1, n)

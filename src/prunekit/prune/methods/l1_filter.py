"""``L1_Row``: Li et al. filter pruning by L1 norm.

Li, Kadav, Durdanovic, Samet, Graf, "Pruning Filters for Efficient ConvNets" (ICLR 2017): in
each layer, remove the filters with the smallest sum of absolute weights Σ|F_j| (with the
feature maps they produce and the next layer's matching input channels, which ``prunekit
compact`` removes), then retrain. The masks are hard: pruned filters stay zero.
"""

from __future__ import annotations

import torch

from prunekit.prune.units import ROW
from prunekit.prune.methods.filter_rank import RowMethod, rows_of


class L1Filter(RowMethod):
    #: prune_method spellings of the method part, and the units it prunes (prune/units.py).
    ALIASES = ("L1",)
    UNITS = (ROW,)

    ramp = True
    soft = False

    def row_scores(self, w: torch.Tensor, kept_rows: torch.Tensor) -> torch.Tensor:
        """Σ|w| per filter."""
        return rows_of(w).abs().sum(1)

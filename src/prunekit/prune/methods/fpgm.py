"""``FPGM_Row``: filter pruning via geometric median.

He, Liu, Wang, Hu, Yang, "Filter Pruning via Geometric Median for Deep Convolutional Neural
Networks Acceleration" (CVPR 2019): the filters nearest the geometric median of a layer's
filters are the most replaceable by the others. As in the paper's relaxation, each kept filter
F_j is scored by g(j) = Σ_j' ‖F_j − F_j'‖₂ over the layer's kept filters, and the filters with
the smallest g are pruned. As in the authors' code (gradient masks), pruned filters stay zero.
"""

from __future__ import annotations

import torch

from prunekit.prune.units import ROW
from prunekit.prune.methods.filter_rank import RowMethod, rows_of


def distance_sums(w: torch.Tensor, kept_rows: torch.Tensor) -> torch.Tensor:
    """g(j) = Σ over kept j' of ‖F_j − F_j'‖₂ for every row j (float64)."""
    rows = rows_of(w).double()
    dist = torch.cdist(rows, rows[kept_rows])
    return dist.sum(1)


class FPGM(RowMethod):
    #: prune_method spellings of the method part, and the units it prunes (prune/units.py).
    ALIASES = ("FPGM",)
    UNITS = (ROW,)

    ramp = True
    soft = False

    def row_scores(self, w: torch.Tensor, kept_rows: torch.Tensor) -> torch.Tensor:
        return distance_sums(w, kept_rows)

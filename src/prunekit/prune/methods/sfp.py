"""``SFP_Row``: soft filter pruning.

He, Kang, Dong, Fu, Yang, "Soft Filter Pruning for Accelerating Deep Convolutional Neural
Networks" (IJCAI 2018): every pruning interval (an epoch in the paper: ``prune_interval``
iterations here), zero the ⌊N·P⌋ filters of smallest L2 norm, but keep training *all* filters,
so a zeroed filter can grow back and be kept at the next round. prunekit makes the last round's
mask hard, so the model after it (and its fine-tuning to ``max_iter``) has exactly those
filters at zero and ``prunekit compact`` can remove them (the paper removes them at the end).
"""

from __future__ import annotations

import torch

from prunekit.prune.units import ROW
from prunekit.prune.methods.filter_rank import RowMethod, rows_of


class SoftFilter(RowMethod):
    #: prune_method spellings of the method part, and the units it prunes (prune/units.py).
    ALIASES = ("SFP",)
    UNITS = (ROW,)

    ramp = False
    soft = True

    def row_scores(self, w: torch.Tensor, kept_rows: torch.Tensor) -> torch.Tensor:
        """‖F_j‖₂ per filter."""
        return rows_of(w).double().norm(dim=1)

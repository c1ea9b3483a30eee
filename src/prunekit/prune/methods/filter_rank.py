"""Filter (row) pruning shared by L1_Row, FPGM_Row and SFP_Row: prune the lowest-scored rows.

A row is a filter of a Convolution (``W[n]``) or an output neuron of an InnerProduct. Already
pruned rows stay pruned (they are excluded from the ranking and counted first), so a ramped
schedule only ever adds rows.
"""

from __future__ import annotations

import torch

from prunekit.prune.methods.mask_method import MaskedLayer, MaskMethod, count_to_prune, row_mask


def rows_of(w: torch.Tensor) -> torch.Tensor:
    """[N, rest] view of a weight (rows = filters / output neurons)."""
    return w.reshape(w.shape[0], -1)


def prune_lowest_rows(scores: torch.Tensor, kept_rows: torch.Tensor, ratio: float) -> torch.Tensor:
    """Bool keep flags [N]: rows already pruned stay pruned, then the lowest ``scores`` among the
    kept rows go until ⌊N·ratio⌋ rows are pruned (ties by position)."""
    n_total = count_to_prune(scores.numel(), ratio)
    n_new = n_total - int((~kept_rows).sum())
    keep = kept_rows.clone()
    if n_new <= 0:
        return keep
    ranked = torch.where(kept_rows, scores.double(), torch.full_like(scores, float("inf"), dtype=torch.float64))
    keep[torch.argsort(ranked, stable=True)[:n_new]] = False
    return keep


class RowMethod(MaskMethod):
    """A MaskMethod whose rounds prune rows by ``row_scores`` (lower = pruned first)."""

    def row_scores(self, w: torch.Tensor, kept_rows: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def select(self, layer: MaskedLayer, ratio: float, solver) -> torch.Tensor:
        w = layer.weight.detach()
        kept_rows = layer.kept().reshape(w.shape[0], -1).any(1) if not self.soft else \
            torch.ones(w.shape[0], dtype=torch.bool, device=w.device)
        keep = prune_lowest_rows(self.row_scores(w, kept_rows), kept_rows, ratio)
        layer.rows_kept = int(keep.sum())
        return row_mask(keep, w)

    def describe(self, layer: MaskedLayer) -> str:
        return f", {layer.rows_kept}/{layer.weight.shape[0]} rows"

"""The pruning state of one registered layer (Convolution or InnerProduct).

Everything a method changes lives here as small tensors indexed by group (column or row of
Caffe's weight matrix), plus the weight-shaped mask derived from them. ``state_dict`` holds all
of it, so a snapshot resumes exactly (the fork saved only λ and ranks and rebuilt masks from
zeros).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from prunekit.prune import groups

NEVER = 2147483647  # the fork's INT_MAX "not finished" marker, printed as such in its logs


@dataclass
class PrunedLayer:
    """One registered layer: settings, pruned groups, per-group λ and running rank, mask."""

    name: str
    index: int
    type: str
    weight: torch.Tensor
    blob_index: int                     # position in solver.blobs (for its momentum history)
    prune_ratio: float
    prune_ratio_step: float
    if_update_row_col: bool
    current_prune_ratio: float
    base_macs: int = 0                  # multiply-accumulates of the unpruned layer per image
    col_pruned: torch.Tensor = field(default=None)
    row_pruned: torch.Tensor = field(default=None)
    running_rank: torch.Tensor = field(default=None)
    reg: torch.Tensor = field(default=None)
    iter_prune_finished: int = NEVER
    mask: torch.Tensor = field(default=None)
    num_pruned_col: int = 0
    num_pruned_row: int = 0

    def __post_init__(self) -> None:
        dev = self.weight.device
        if self.col_pruned is None:
            self.col_pruned = torch.zeros(groups.num_cols(self.weight), dtype=torch.bool, device=dev)
        if self.row_pruned is None:
            self.row_pruned = torch.zeros(groups.num_rows(self.weight), dtype=torch.bool, device=dev)
        self.refresh_mask()

    # ------------------------------------------------------------------ ratios
    @property
    def num_col(self) -> int:
        return int(self.col_pruned.numel())

    @property
    def num_row(self) -> int:
        return int(self.row_pruned.numel())

    def pruned_ratio_col(self) -> float:
        return self.num_pruned_col / self.num_col

    def pruned_ratio_row(self) -> float:
        return self.num_pruned_row / self.num_row

    def pruned_ratio(self) -> float:
        """Combined ratio pc + pr − pc·pr (a weight is gone if its row or its column is)."""
        pc, pr = self.pruned_ratio_col(), self.pruned_ratio_row()
        return pc + pr - pc * pr

    def ratio_for(self, unit: str) -> float:
        """The ratio compared with targets: columns for Col, rows for Row."""
        return self.pruned_ratio_col() if unit == "Col" else self.pruned_ratio_row()

    def group_pruned(self, unit: str) -> torch.Tensor:
        return self.col_pruned if unit == "Col" else self.row_pruned

    def num_groups(self, unit: str) -> int:
        return self.num_col if unit == "Col" else self.num_row

    # ------------------------------------------------------------------ masks
    def refresh_mask(self) -> None:
        """Rebuild the mask and the pruned counts; called only when the pruned sets change, so
        the per-iteration paths read host integers instead of syncing on tensor sums."""
        self.mask = groups.combined_mask(~self.col_pruned, ~self.row_pruned, self.weight)
        self.num_pruned_col = int(self.col_pruned.sum())
        self.num_pruned_row = int(self.row_pruned.sum())

    @property
    def has_pruned(self) -> bool:
        return self.num_pruned_col > 0 or self.num_pruned_row > 0

    @torch.no_grad()
    def apply_mask_(self) -> None:
        """Zero the pruned weights in place (nothing to do while nothing is pruned)."""
        if self.has_pruned:
            self.weight.mul_(self.mask)

    def rebuild_from_zeros(self) -> None:
        """Masks from the exact zeros of the weights (a zero-masked model given by --weights)."""
        cols, rows = groups.rebuild_from_zeros(self.weight.detach())
        self.col_pruned, self.row_pruned = cols, rows
        self.refresh_mask()

    def prune(self, unit: str, indices: torch.Tensor) -> None:
        """Mark groups pruned (bool mask or index tensor) and zero them."""
        target = self.group_pruned(unit)
        target[indices] = True
        self.refresh_mask()
        self.apply_mask_()

    # ------------------------------------------------------------------ state
    def ensure_group_state(self, unit: str) -> None:
        """λ and running ranks exist once the method starts (one value per group of ``unit``)."""
        n = self.num_groups(unit)
        if self.reg is None or self.reg.numel() != n:
            self.reg = torch.zeros(n, dtype=torch.float64, device=self.weight.device)
            self.running_rank = torch.zeros(n, dtype=torch.float64, device=self.weight.device)

    def state_dict(self) -> dict:
        out = {"col_pruned": self.col_pruned.cpu(), "row_pruned": self.row_pruned.cpu(),
               "current_prune_ratio": self.current_prune_ratio,
               "iter_prune_finished": self.iter_prune_finished}
        if self.reg is not None:
            out["reg"] = self.reg.cpu()
            out["running_rank"] = self.running_rank.cpu()
        return out

    def load_state_dict(self, state: dict) -> None:
        dev = self.weight.device
        self.col_pruned = state["col_pruned"].to(dev)
        self.row_pruned = state["row_pruned"].to(dev)
        self.current_prune_ratio = float(state["current_prune_ratio"])
        self.iter_prune_finished = int(state["iter_prune_finished"])
        if "reg" in state:
            self.reg = state["reg"].to(dev)
            self.running_rank = state["running_rank"].to(dev)
        self.refresh_mask()

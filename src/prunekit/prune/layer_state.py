"""The pruning state of one registered layer (Convolution or InnerProduct).

Everything a method changes lives here, indexed by group (column or row of Caffe's weight
matrix): the pruned flags as bool tensors on the weight's device (they build the weight-shaped
mask) with a host NumPy copy, and λ and the running ranks as host float64 NumPy arrays, because
the per-iteration bookkeeping runs on the host (see increg/math.py). ``state_dict`` holds all of it
(as CPU tensors, which ``torch.load(weights_only=True)`` reads), so a snapshot resumes exactly
(the fork saved only λ and ranks and rebuilt masks from zeros).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from prunekit.prune import groups
from prunekit.prune.units import Unit, unit_named

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
    running_rank: np.ndarray = field(default=None)   # host float64 [groups] (SPP: the score S)
    reg: np.ndarray = field(default=None)            # host float64 [groups] λ (SPP: keep prob. p)
    iter_prune_finished: int = NEVER
    mask: torch.Tensor = field(default=None)
    num_pruned_col: int = 0
    num_pruned_row: int = 0
    col_pruned_host: np.ndarray = field(default=None)  # copies of col_pruned / row_pruned,
    row_pruned_host: np.ndarray = field(default=None)  # refreshed by refresh_mask
    has_pruned: bool = field(default=False, init=False)  # any group pruned (refresh_mask)
    num_col: int = field(default=0, init=False)          # groups of each unit (refresh_mask:
    num_row: int = field(default=0, init=False)          # plain ints, read every iteration)

    def __post_init__(self) -> None:
        dev = self.weight.device
        if self.col_pruned is None:
            self.col_pruned = torch.zeros(groups.num_cols(self.weight), dtype=torch.bool, device=dev)
        if self.row_pruned is None:
            self.row_pruned = torch.zeros(groups.num_rows(self.weight), dtype=torch.bool, device=dev)
        self.refresh_mask()

    # ------------------------------------------------------------------ ratios
    def pruned_ratio_col(self) -> float:
        return self.num_pruned_col / self.num_col

    def pruned_ratio_row(self) -> float:
        return self.num_pruned_row / self.num_row

    def pruned_ratio(self) -> float:
        """Combined ratio pc + pr − pc·pr (a weight is gone if its row or its column is)."""
        pc, pr = self.pruned_ratio_col(), self.pruned_ratio_row()
        return pc + pr - pc * pr

    def ratio_for(self, unit: Unit | str) -> float:
        """The ratio compared with targets: columns for Col, rows for Row."""
        return unit_named(unit).pruned_ratio(self)

    def group_pruned(self, unit: Unit | str) -> torch.Tensor:
        """Pruned flags of ``unit``'s groups: bool tensor on the weight's device."""
        return unit_named(unit).pruned_flags(self)

    def group_pruned_host(self, unit: Unit | str) -> np.ndarray:
        """The same flags as a host bool array (a copy made when they last changed, so reading
        it costs no device sync). Do not modify it."""
        return unit_named(unit).pruned_flags_host(self)

    def num_pruned(self, unit: Unit | str) -> int:
        return unit_named(unit).num_pruned(self)

    def num_groups(self, unit: Unit | str) -> int:
        return unit_named(unit).num_groups(self)

    # ------------------------------------------------------------------ masks
    def refresh_mask(self) -> None:
        """Rebuild the mask, the host copies of the pruned flags and the pruned counts; called
        only when the pruned sets change, so the per-iteration paths read host arrays and
        integers instead of syncing on device tensors."""
        self.mask = groups.combined_mask(~self.col_pruned, ~self.row_pruned, self.weight)
        self.col_pruned_host = self.col_pruned.cpu().numpy().copy()
        self.row_pruned_host = self.row_pruned.cpu().numpy().copy()
        self.num_col, self.num_row = self.col_pruned_host.size, self.row_pruned_host.size
        self.num_pruned_col = int(np.count_nonzero(self.col_pruned_host))
        self.num_pruned_row = int(np.count_nonzero(self.row_pruned_host))
        self.has_pruned = self.num_pruned_col > 0 or self.num_pruned_row > 0

    def apply_mask_(self) -> None:
        """Zero the pruned weights in place (nothing to do, not even a no_grad switch, while
        nothing is pruned: this runs every iteration)."""
        if self.has_pruned:
            with torch.no_grad():
                self.weight.mul_(self.mask)

    def rebuild_from_zeros(self) -> None:
        """Masks from the exact zeros of the weights (a zero-masked model given by --weights)."""
        cols, rows = groups.rebuild_from_zeros(self.weight.detach())
        self.col_pruned, self.row_pruned = cols, rows
        self.refresh_mask()

    def prune(self, unit: str, indices: torch.Tensor | np.ndarray) -> None:
        """Mark groups pruned (bool mask or indices: tensor or host array) and zero them."""
        target = self.group_pruned(unit)
        target[torch.as_tensor(indices, device=target.device)] = True
        self.refresh_mask()
        self.apply_mask_()

    # ------------------------------------------------------------------ state
    def ensure_group_state(self, unit: str, reg_value: float = 0.0) -> None:
        """λ (all ``reg_value``) and running ranks (0) exist once the method starts, one host
        float64 value per group of ``unit``; state of the right size is kept (a resume)."""
        n = self.num_groups(unit)
        if self.reg is None or self.reg.size != n:
            self.reg = np.full(n, reg_value, dtype=np.float64)
            self.running_rank = np.zeros(n, dtype=np.float64)

    def state_dict(self) -> dict:
        """Flags and per-group values as CPU tensors (float64 for λ and ranks): the format of
        every snapshot so far, readable by ``torch.load(weights_only=True)``."""
        out = {"col_pruned": self.col_pruned.cpu(), "row_pruned": self.row_pruned.cpu(),
               "current_prune_ratio": self.current_prune_ratio,
               "iter_prune_finished": self.iter_prune_finished}
        if self.reg is not None:
            out["reg"] = torch.from_numpy(self.reg.copy())
            out["running_rank"] = torch.from_numpy(self.running_rank.copy())
        return out

    def load_state_dict(self, state: dict) -> None:
        dev = self.weight.device
        self.col_pruned = state["col_pruned"].to(dev)
        self.row_pruned = state["row_pruned"].to(dev)
        self.current_prune_ratio = float(state["current_prune_ratio"])
        self.iter_prune_finished = int(state["iter_prune_finished"])
        if "reg" in state:
            self.reg = host_float64(state["reg"])
            self.running_rank = host_float64(state["running_rank"])
        self.refresh_mask()


def host_float64(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """A fresh host float64 array from a tensor on any device (how snapshots store λ and ranks)
    or an array."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.array(values, dtype=np.float64)

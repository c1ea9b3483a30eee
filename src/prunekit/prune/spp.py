"""SPP (``SPP_Col``, ``SPP_Row``; legacy ``PP_*``): structured probabilistic pruning.

Wang et al., "Structured Probabilistic Pruning for Convolutional Neural Network Acceleration"
(BMVC 2018), with the 2018-03 semantics of the fork's ``PP_Col`` (reference section 2.10).
Each group (column or row) of a layer has a keep probability p, 1 at start. In the 'prune'
state, every ``prune_interval`` iterations, a discounted L1 score S ← decay·S + ‖w_g‖₁ ranks the
groups and p ← clip(p − Δ(j), 0, 1) with the scheme-1 curve; p = 0 prunes a group for good.
Every training forward in 'prune' samples a group mask (keep g iff u_g < p_g), runs the
forward/backward on the masked weights, then restores the weights, so sampled-out groups keep
their values, and masks their gradient for that iteration. A layer that reached its target uses
the deterministic mask (p > 0). No λ is added to the gradient.

Everything else (layers, schedule, propagation, permanent masks, logs, state) is IncReg's.
Per layer, ``PrunedLayer.running_rank`` holds S and ``PrunedLayer.reg`` holds p (both float64),
so they travel in the layer state like IncReg's ranks and λ.
"""

from __future__ import annotations

from typing import TextIO

import torch

from prunekit.errors import PrunekitError
from prunekit.prune import groups
from prunekit.prune.config import PruneConfig
from prunekit.prune.increg import IncReg
from prunekit.prune.layer_state import NEVER, PrunedLayer
from prunekit.prune.spp_math import (
    deterministic_mask, sample_group_mask, spp_groups_to_prune, spp_step)

_SEED_MASK = 0x5A5A_5A5A  # the mask stream differs from the data/filler streams of the same seed


class SPP(IncReg):
    """The ``SPP`` method as a solver hook (one object for the whole net)."""

    def __init__(self, config: PruneConfig, solver, net_param, out: TextIO | None = None) -> None:
        if config.spp_mask_mode not in ("group-wise", "element-wise"):
            raise PrunekitError(f"{config.source}: spp_mask_mode '{config.spp_mask_mode}' is "
                                "not available yet (use group-wise or element-wise)")
        super().__init__(config, solver, net_param, out)
        device = self.layers[0].weight.device if self.layers else torch.device("cpu")
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed((int(solver.seed) ^ _SEED_MASK) & 0xFFFF_FFFF_FFFF)
        # weights before this iteration's sampled mask, and the weight-shaped masks used
        self._backup: dict[int, torch.Tensor] = {}
        self._sampled: dict[int, torch.Tensor] = {}

    # ------------------------------------------------------------------ helpers
    def _spread(self, values: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return groups.col_broadcast(values, w) if self.unit == "Col" else groups.row_broadcast(values, w)

    def _active(self, layer: PrunedLayer) -> bool:
        return layer.prune_ratio > 0

    def _init_probabilities(self) -> None:
        for layer in self.layers:
            n = layer.num_groups(self.unit)
            if layer.reg is None or layer.reg.numel() != n:
                dev = layer.weight.device
                layer.reg = torch.ones(n, dtype=torch.float64, device=dev)          # p
                layer.running_rank = torch.zeros(n, dtype=torch.float64, device=dev)  # S
            layer.reg = torch.where(layer.group_pruned(self.unit),
                                    torch.zeros_like(layer.reg), layer.reg)

    def _sample(self, layer: PrunedLayer) -> torch.Tensor:
        """A weight-shaped 0/1 mask for this iteration's forward/backward."""
        w = layer.weight
        pruned = layer.group_pruned(self.unit)
        if layer.iter_prune_finished != NEVER:
            keep = self._spread(deterministic_mask(layer.reg, pruned), w)
            return keep.to(w.dtype).expand_as(w)
        if self.config.spp_mask_mode == "element-wise":
            prob = torch.where(pruned, torch.zeros_like(layer.reg), layer.reg)
            p = self._spread(prob, w).expand_as(w)
            u = torch.rand(w.shape, generator=self.generator, dtype=layer.reg.dtype,
                           device=w.device)
            return (u < p).to(w.dtype)
        keep = sample_group_mask(layer.reg, pruned, self.generator)
        return self._spread(keep, w).to(w.dtype).expand_as(w)

    # ------------------------------------------------------------------ solver hooks
    def _init_group_state(self) -> None:  # IncReg's start, with p = 1 / S = 0 instead of λ = 0
        self._init_probabilities()

    def before_forward(self, solver) -> None:
        super().before_forward(solver)  # pending propagation, finished checks
        self._backup.clear()
        self._sampled.clear()
        if self.schedule.state != "prune":
            return
        with torch.no_grad():
            for layer in self.layers:
                if not self._active(layer):
                    continue
                if layer.has_pruned:  # groups pruned by propagation: p = 0 too
                    pruned = layer.group_pruned(self.unit)
                    layer.reg = torch.where(pruned, torch.zeros_like(layer.reg), layer.reg)
                mask = self._sample(layer)
                self._backup[layer.index] = layer.weight.detach().clone()
                self._sampled[layer.index] = mask
                layer.weight.mul_(mask)

    def after_backward(self, solver) -> None:
        with torch.no_grad():
            for layer in self.layers:
                backup = self._backup.pop(layer.index, None)
                if backup is None:
                    continue
                layer.weight.copy_(backup)
                if layer.weight.grad is not None:
                    layer.weight.grad.mul_(self._sampled[layer.index])
        self._sampled.clear()
        super().after_backward(solver)  # the permanent mask

    # ------------------------------------------------------------------ the method
    def _regularise(self, solver, layer: PrunedLayer) -> None:
        """SPP replaces IncReg's regularisation: update S and p, prune groups at p = 0."""
        if solver.iter % self.config.prune_interval != 0:
            return
        pruned = layer.group_pruned(self.unit)
        n_p = spp_groups_to_prune(layer.num_groups(self.unit), layer.current_prune_ratio,
                                  self.config.spp_delta,
                                  layer.num_pruned_col if self.unit == "Col" else layer.num_pruned_row)
        if n_p <= 0:
            return
        w = layer.weight.detach()
        l1 = (groups.column_l1(w) if self.unit == "Col" else groups.row_l1(w)).double()
        result = spp_step(layer.running_rank, l1, layer.reg, pruned, n_p, self.config.aa,
                          decay=self.config.spp_score_decay, kk=self.config.kk)
        if result.skipped:
            return
        layer.running_rank, layer.reg = result.score, result.prob
        if bool(result.newly_pruned.any()):
            layer.prune(self.unit, result.newly_pruned)
            self.propagator.pruned(layer, result.newly_pruned)
            self._progress_stale = True

    def clear_leftover_reg(self) -> None:
        """Stage end: keep-probabilities stay (there is no λ to clear)."""

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        out = super().state_dict()
        out["spp_generator"] = self.generator.get_state()
        return out

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if "spp_generator" in state:
            self.generator.set_state(state["spp_generator"])
        self._backup.clear()
        self._sampled.clear()

    def load_rollback_state(self, state: dict) -> None:
        """Masks, p and S come back; the sampling stream carries on (like the solver's RNG)."""
        super().load_rollback_state(state)
        self._backup.clear()
        self._sampled.clear()

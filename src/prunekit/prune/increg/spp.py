"""SPP (``SPP_Col``, ``SPP_Row``; legacy ``PP_*``): structured probabilistic pruning.

Wang et al., "Structured Probabilistic Pruning for Convolutional Neural Network Acceleration"
(BMVC 2018), with the 2018-03 semantics of the fork's ``PP_Col`` (docs/pruning.md "SPP").
Each group (column or row) of a layer has a keep probability p, 1 at start. In the 'prune'
state, every ``prune_interval`` iterations, a discounted L1 score S ← decay·S + ‖w_g‖₁ ranks the
groups and p ← clip(p − Δ(j), 0, 1) with the scheme-1 curve; p = 0 prunes a group for good.
Every training forward in 'prune' samples a group mask (keep g iff u_g < p_g), runs the
forward/backward on the masked weights, then restores the weights, so sampled-out groups keep
their values, and masks their gradient for that iteration. A layer that reached its target uses
the deterministic mask (p > 0). No λ is added to the gradient.

Everything else (layers, schedule, propagation, permanent masks, logs, state) is IncReg's.
Per layer, ``PrunedLayer.running_rank`` holds S and ``PrunedLayer.reg`` holds p (both host
float64 arrays), so they travel in the layer state like IncReg's ranks and λ; p goes to the
weights' device only to sample a mask.
"""

from __future__ import annotations

from typing import TextIO

import numpy as np
import torch

from prunekit.errors import PrunekitError
from prunekit.prune.units import COL, ROW
from prunekit.prune.increg.config import SppConfig
from prunekit.prune.increg.hook import IncReg
from prunekit.prune.layer_state import NEVER, PrunedLayer
from prunekit.prune.increg.spp_math import (
    deterministic_mask, sample_group_mask, spp_groups_to_prune, spp_step)

_SEED_MASK = 0x5A5A_5A5A  # the mask stream differs from the data/filler streams of the same seed


class SPP(IncReg):
    """The ``SPP`` method as a solver hook (one object for the whole net)."""

    #: prune_method spellings of the method part, and the units it prunes (prune/units.py).
    ALIASES = ("SPP", "PP")
    CONFIG = SppConfig
    UNITS = (COL, ROW)

    def __init__(self, config: SppConfig, solver, net_param, out: TextIO | None = None) -> None:
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
        return self.unit.broadcast(values, w)

    def _active(self, layer: PrunedLayer) -> bool:
        return layer.prune_ratio > 0

    def _init_probabilities(self) -> None:
        for layer in self.layers:
            layer.ensure_group_state(self.unit, reg_value=1.0)  # p = 1, S = 0 (unless resumed)
            self._zero_pruned_p(layer)

    def _zero_pruned_p(self, layer: PrunedLayer) -> None:
        """p = 0 for every pruned group (pruned by SPP itself or by propagation)."""
        layer.reg = np.where(layer.group_pruned_host(self.unit), 0.0, layer.reg)

    def _sample(self, layer: PrunedLayer) -> torch.Tensor:
        """A weight-shaped 0/1 mask for this iteration's forward/backward. The uniform draws are
        float64 on the weights' device, from self.generator, as many per call whatever the
        pruning state (the stream resumes exactly from the solverstate)."""
        w = layer.weight
        pruned_host = layer.group_pruned_host(self.unit)
        if layer.iter_prune_finished != NEVER:
            keep = torch.from_numpy(deterministic_mask(layer.reg, pruned_host)).to(w.device)
            return self._spread(keep, w).to(w.dtype).expand_as(w)
        if self.config.spp_mask_mode == "element-wise":
            prob = torch.from_numpy(np.where(pruned_host, 0.0, layer.reg)).to(w.device)
            p = self._spread(prob, w).expand_as(w)
            u = torch.rand(w.shape, generator=self.generator, dtype=torch.float64,
                           device=w.device)
            return (u < p).to(w.dtype)
        prob = torch.from_numpy(layer.reg).to(w.device)
        keep = sample_group_mask(prob, layer.group_pruned(self.unit), self.generator)
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
                    self._zero_pruned_p(layer)
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
    def _regularise_all(self, solver, layers: list[PrunedLayer]) -> None:
        """SPP's update for each layer in turn (no λ, nothing to add to the gradients)."""
        for layer in layers:
            self._regularise(solver, layer)

    def _regularise(self, solver, layer: PrunedLayer) -> None:
        """SPP replaces IncReg's regularisation: update S and p, prune groups at p = 0."""
        if solver.iter % self.config.prune_interval != 0:
            return
        n_p = spp_groups_to_prune(layer.num_groups(self.unit), layer.current_prune_ratio,
                                  self.config.spp_delta, layer.num_pruned(self.unit))
        if n_p <= 0:
            return
        w = layer.weight.detach()
        result = spp_step(layer.running_rank, self._group_scores(w), layer.reg,
                          layer.group_pruned_host(self.unit), n_p, self.config.aa,
                          decay=self.config.spp_score_decay, kk=self.config.kk)
        if result.skipped:
            return
        layer.running_rank, layer.reg = result.score, result.prob
        if result.newly_pruned.any():
            newly = torch.from_numpy(result.newly_pruned).to(w.device)
            layer.prune(self.unit, newly)
            self.propagator.pruned(layer, newly)
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

"""The common part of the method zoo (docs/methods/): weight masks set in pruning rounds.

Every zoo method (``Mag_Weight``, ``L1_Row``, ``FPGM_Row``, ``SFP_Row``, ``GL_*``) works on the
Convolution/InnerProduct layers whose ``prune_param.prune_ratio`` is > 0 and differs only in
*which* weights a round removes (:meth:`MaskMethod.select`) and, for the regularising methods,
in a penalty added to the gradients every iteration (:meth:`MaskMethod.penalise`).

Schedule (solver fields ``prune_begin_iter``, ``prune_interval``, ``prune_rounds``): round k
(k = 1..R) runs at the start of iteration ``begin + (k−1)·interval`` (begin = 0 when
``prune_begin_iter`` is negative), so with the defaults the loaded model is pruned before the
first update. A *ramped* method prunes ``prune_ratio·k/R`` of a layer's units in round k (Han's
iterative prune/retrain); a *soft* method (SFP) prunes ``prune_ratio`` in every round but lets
the zeroed weights train on until the next one. Masks are *hard* once set (soft methods: after
the last round): the pruned weights, their gradients and their momentum are zero from then on,
so they stay exactly 0. Training always runs to ``max_iter``; the model that counts is the final
snapshot (never the best test), and its name ends the glog output as
``Pruning done. Final model: …``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

import torch

from prunekit.log import get_logger
from prunekit.prune import app_log
from prunekit.prune.config import PruneConfig
from prunekit.prune.methods.config import ZooConfig
from prunekit.solver.hooks import SolverHook


@dataclass
class MaskedLayer:
    """One layer the method prunes: its weight, momentum slot, target and current mask."""

    name: str
    type: str
    weight: torch.Tensor
    blob_index: int
    prune_ratio: float
    mask: torch.Tensor | None = None  # weight-shaped, weight dtype; None = nothing pruned

    def kept(self) -> torch.Tensor:
        """Weight-shaped bool: True where the weight is not pruned."""
        if self.mask is None:
            return torch.ones_like(self.weight, dtype=torch.bool)
        return self.mask.bool()


def count_to_prune(total: int, ratio: float) -> int:
    """⌊total·ratio⌋ (with a little slack so that 0.3·10 is 3, not 2)."""
    return int(math.floor(total * ratio + 1e-9))


def row_mask(keep_rows: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weight-shaped bool mask from per-row (filter / output neuron) keep flags."""
    return keep_rows.reshape((-1,) + (1,) * (w.dim() - 1)).expand_as(w)


class MaskMethod(SolverHook):
    """Base hook: rounds, hard/soft masks, [app] lines, state. Subclasses define ``select``."""

    CONFIG = ZooConfig  # the family's config class (prune/registry.py config_class)
    name = "pruning"
    ramp = True    # round k prunes prune_ratio·k/R (False: prune_ratio every round)
    soft = False   # masks only at rounds until the last one (SFP)

    def __init__(self, config: PruneConfig, solver, net_param, out: TextIO | None = None) -> None:
        self.config = config
        self.unit = config.unit
        self.out = out or sys.stdout
        self.layers = self._make_layers(solver, net_param)
        self.begin = max(config.prune_begin_iter, 0)
        self.rounds_done = 0

    def _make_layers(self, solver, net_param) -> list[MaskedLayer]:
        blob_index = {(b.layer, b.index): i for i, b in enumerate(solver.blobs)}
        layers = []
        for setting in self.config.layer_settings(net_param):
            if setting.prune_ratio <= 0:
                continue
            module = solver.net.layer(setting.name)
            self.check_layer(setting.name, setting.type, module.weight)
            layers.append(MaskedLayer(setting.name, setting.type, module.weight,
                                      blob_index[(setting.name, 0)], setting.prune_ratio))
        return layers

    def check_layer(self, name: str, type_: str, weight: torch.Tensor) -> None:
        """Raise PrunekitError when the method cannot prune this layer (override)."""

    # ------------------------------------------------------------------ to override
    def select(self, layer: MaskedLayer, ratio: float, solver) -> torch.Tensor:
        """Weight-shaped bool keep-mask that prunes ``ratio`` of the layer's units."""
        raise NotImplementedError

    def penalise(self, solver) -> None:
        """Add a sparsity penalty's gradient (before the update); none by default."""

    def describe(self, layer: MaskedLayer) -> str:
        """Extra text for the layer's [app] line of a round (e.g. Han's q)."""
        return ""

    # ------------------------------------------------------------------ schedule
    @property
    def rounds(self) -> int:
        return self.config.prune_rounds

    def round_iter(self, k: int) -> int:
        """Iteration at whose start round k (1-based) runs."""
        return self.begin + (k - 1) * self.config.prune_interval

    @property
    def hard(self) -> bool:
        return not self.soft or self.rounds_done >= self.rounds

    def round_ratio(self, layer: MaskedLayer, k: int) -> float:
        return layer.prune_ratio * k / self.rounds if self.ramp else layer.prune_ratio

    def emit(self, text: str) -> None:
        app_log.emit(self.out, text)

    # ------------------------------------------------------------------ solver hooks
    def on_start(self, solver) -> None:
        if self.rounds_done == 0:
            when = ", ".join(str(self.round_iter(k)) for k in range(1, self.rounds + 1))
            self.emit(f"[app] {self.config.prune_method}: {len(self.layers)} layers, "
                      f"{self.rounds} round(s) at iterations {when}{app_log.timestamp(datetime.now())}")

    def before_forward(self, solver) -> None:
        while self.rounds_done < self.rounds and solver.iter >= self.round_iter(self.rounds_done + 1):
            self._round(solver, self.rounds_done + 1)

    def _round(self, solver, k: int) -> None:
        with torch.no_grad():
            for layer in self.layers:
                keep = self.select(layer, self.round_ratio(layer, k), solver)
                if not self.soft:
                    keep = keep & layer.kept()
                layer.mask = keep.to(layer.weight.dtype)
                layer.weight.mul_(layer.mask)
                solver.history[layer.blob_index].mul_(layer.mask)
                self.emit(self._round_line(solver, k, layer))
        self.rounds_done = k

    def _round_line(self, solver, k: int, layer: MaskedLayer) -> str:
        kept = int(layer.mask.count_nonzero())
        total = layer.weight.numel()
        return (f"[app] round {k}/{self.rounds} at iter {solver.iter}: {layer.name} keeps "
                f"{kept}/{total} weights ({100.0 * kept / total:.2f}%){self.describe(layer)}")

    def after_backward(self, solver) -> None:
        if self.hard:
            for layer in self.layers:
                if layer.mask is not None and layer.weight.grad is not None:
                    layer.weight.grad.mul_(layer.mask)

    def before_update(self, solver) -> None:
        with torch.no_grad():
            self.penalise(solver)
            if not self.hard:
                return
            for layer in self.layers:
                if layer.mask is not None:
                    if layer.weight.grad is not None:
                        layer.weight.grad.mul_(layer.mask)
                    solver.history[layer.blob_index].mul_(layer.mask)

    def after_update(self, solver) -> None:
        if self.hard:
            with torch.no_grad():
                for layer in self.layers:
                    if layer.mask is not None:
                        layer.weight.mul_(layer.mask)

    def on_snapshot(self, solver, tag: str, paths: tuple[str, str]) -> None:
        if tag or solver.iter < solver.param.max_iter:
            return
        for layer in self.layers:
            kept = int(layer.weight.detach().count_nonzero())
            self.emit(f"[app] final {layer.name}: {kept}/{layer.weight.numel()} nonzero weights")
        get_logger().info("Pruning done. Final model: %s (%s, %d rounds)", paths[0],
                          self.config.prune_method, self.rounds_done)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {"rounds_done": self.rounds_done,
                "masks": [None if layer.mask is None else layer.mask.cpu() for layer in self.layers]}

    def load_state_dict(self, state: dict) -> None:
        self.rounds_done = int(state.get("rounds_done", 0))
        for layer, mask in zip(self.layers, state.get("masks", [])):
            layer.mask = None if mask is None else mask.to(layer.weight.device, layer.weight.dtype)

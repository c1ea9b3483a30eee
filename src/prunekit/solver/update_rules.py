"""Caffe's per-parameter update rules (SGD, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam).

Each rule turns the (normalised, regularised) gradient into the value subtracted from the weight,
exactly as Caffe's ``ComputeUpdateValue`` does, keeping Caffe's history layout so a solverstate
written by Caffe resumes here: one history blob per parameter, and a second set (appended after
the first) for AdaDelta and Adam.
"""

from __future__ import annotations

import torch

from prunekit.errors import PrunekitError


class UpdateRule:
    """Base: ``history_sets`` history tensors per parameter; ``update`` returns the step."""

    history_sets = 1

    def __init__(self, param) -> None:
        self.momentum = param.momentum
        self.delta = param.delta

    def update(self, grad: torch.Tensor, hist: list[torch.Tensor], rate: float, step: int) -> torch.Tensor:
        raise NotImplementedError


class SGD(UpdateRule):
    def update(self, grad, hist, rate, step):
        hist[0].mul_(self.momentum).add_(grad, alpha=rate)
        return hist[0]


class Nesterov(UpdateRule):
    def update(self, grad, hist, rate, step):
        previous = hist[0].clone()
        hist[0].mul_(self.momentum).add_(grad, alpha=rate)
        return hist[0] * (1 + self.momentum) - previous * self.momentum


class AdaGrad(UpdateRule):
    def update(self, grad, hist, rate, step):
        hist[0].add_(grad * grad)
        return rate * grad / (hist[0].sqrt() + self.delta)


class RMSProp(UpdateRule):
    def __init__(self, param) -> None:
        super().__init__(param)
        self.rms_decay = param.rms_decay

    def update(self, grad, hist, rate, step):
        hist[0].mul_(self.rms_decay).add_(grad * grad, alpha=1 - self.rms_decay)
        return rate * grad / (hist[0].sqrt() + self.delta)


class AdaDelta(UpdateRule):
    history_sets = 2

    def update(self, grad, hist, rate, step):
        grad_sq, update_sq = hist
        grad_sq.mul_(self.momentum).add_(grad * grad, alpha=1 - self.momentum)
        value = grad * ((update_sq + self.delta) / (grad_sq + self.delta)).sqrt()
        update_sq.mul_(self.momentum).add_(value * value, alpha=1 - self.momentum)
        return rate * value


class Adam(UpdateRule):
    history_sets = 2

    def __init__(self, param) -> None:
        super().__init__(param)
        self.beta2 = param.momentum2

    def update(self, grad, hist, rate, step):
        m, v = hist
        m.mul_(self.momentum).add_(grad, alpha=1 - self.momentum)
        v.mul_(self.beta2).add_(grad * grad, alpha=1 - self.beta2)
        t = step + 1
        correction = (1 - self.beta2 ** t) ** 0.5 / (1 - self.momentum ** t)
        return rate * correction * m / (v.sqrt() + self.delta)


RULES = {"SGD": SGD, "Nesterov": Nesterov, "AdaGrad": AdaGrad, "RMSProp": RMSProp,
         "AdaDelta": AdaDelta, "Adam": Adam}
_LEGACY_ENUM = ["SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam"]


def solver_type(param) -> str:
    """``type: "Adam"``, or the deprecated ``solver_type: ADAM`` enum, as a rule name."""
    if param.HasField("type") and param.HasField("solver_type"):
        # Caffe's UpgradeSolverType refuses this too.
        raise PrunekitError("solver: the old solver_type field (enum) and the new type field "
                            "(string) cannot both be specified; keep only `type`")
    if param.HasField("type"):
        name = param.type
    elif param.HasField("solver_type"):
        name = _LEGACY_ENUM[param.solver_type]
    else:
        name = "SGD"
    if name not in RULES:
        raise PrunekitError(f"solver: unknown type '{name}' (expected one of {', '.join(RULES)})")
    return name


def make_rule(param) -> UpdateRule:
    return RULES[solver_type(param)](param)

"""Caffe's learning-rate policies (``lr_policy`` in solver.prototxt).

``current_step`` is Caffe's multistep counter; it is part of the solver state (it is saved in the
solverstate) because the multistep policy advances it as iterations pass the step values.
"""

from __future__ import annotations

import math

from prunekit.errors import PrunekitError

POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")


def learning_rate(param, iteration: int, current_step: int) -> tuple[float, int]:
    """Return ``(rate, current_step)`` for ``iteration``; unknown policy → PrunekitError."""
    policy = param.lr_policy or "fixed"
    base = param.base_lr
    if policy == "fixed":
        return base, current_step
    if policy == "step":
        step = iteration // param.stepsize if param.stepsize > 0 else 0
        return base * param.gamma ** step, step
    if policy == "exp":
        return base * param.gamma ** iteration, current_step
    if policy == "inv":
        return base * (1 + param.gamma * iteration) ** (-param.power), current_step
    if policy == "multistep":
        values = list(param.stepvalue)
        # Caffe advances at most one step per iteration (an `if`, not a loop).
        if current_step < len(values) and iteration >= values[current_step]:
            current_step += 1
        return base * param.gamma ** current_step, current_step
    if policy == "poly":
        progress = iteration / param.max_iter if param.max_iter else 0.0
        return base * (1 - progress) ** param.power, current_step
    if policy == "sigmoid":
        return base / (1 + math.exp(-param.gamma * (iteration - param.stepsize))), current_step
    raise PrunekitError(f"solver: unknown lr_policy '{policy}' (expected one of {', '.join(POLICIES)})")

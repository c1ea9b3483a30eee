"""Extension points of the training loop, used by pruning methods (src/prunekit/prune/).

A hook sees the solver at fixed points of every iteration. Whatever it needs to continue exactly
after a resume goes into ``state_dict()``, which the solver stores in the ``.solverstate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class TrainingControl:
    """What a hook may change about the training loop, and nothing else: the solver reads it every
    iteration (``solver.control``). IncReg applies its schedule's decisions through all three
    (prune/increg/decisions.py).

    ``lr_override``: the learning rate used instead of the lr policy's (None: the policy's);
    ``extra_iter_size``: un-normalised forward/backward passes per iteration, multiplying the
    solver's ``iter_size`` (the fork's per-state ``iter_size_*``); ``finished``: the hook ended
    the run on its own terms (no further iteration, no periodic snapshot).
    """

    lr_override: float | None = None
    extra_iter_size: int = 1
    finished: bool = False

    def lr(self, policy_rate: float) -> float:
        """The rate in force: the override, else the policy's."""
        return self.lr_override if self.lr_override is not None else policy_rate

    def freeze_lr(self, rate: float) -> None:
        """Keep ``rate`` from now on unless an override is already set (the fork's frozen lr)."""
        if self.lr_override is None:
            self.lr_override = rate

    def set_lr(self, rate: float) -> None:
        self.lr_override = rate

    def multiply_lr(self, factor: float) -> None:
        """lr ×= factor (an lr decay), on the override."""
        self.lr_override *= factor

    def divide_lr(self, factor: float) -> None:
        """lr /= factor: undoes a multiply_lr by the same factor as the fork did (a division,
        not a multiplication by the inverse, so the numbers are the fork's)."""
        self.lr_override /= factor

    def set_iter_size(self, passes: int) -> None:
        self.extra_iter_size = int(passes)

    def finish(self) -> None:
        self.finished = True


class SolverHook:
    """Do-nothing base; override the points you need. ``name`` keys the saved state."""

    name = "hook"

    def on_start(self, solver) -> None:
        """After weights/snapshot are loaded, before the first iteration."""

    def before_forward(self, solver) -> None:
        """At the start of an iteration, before its first forward pass (e.g. sample masks)."""

    def after_backward(self, solver) -> None:
        """After all forward/backward passes of an iteration (e.g. mask gradients)."""

    def before_update(self, solver) -> None:
        """After gradients are normalised and weight decay added, before the update rule
        (add per-group regularisation; mask momentum)."""

    def after_update(self, solver) -> None:
        """After the weights moved (re-apply masks, advance schedules)."""

    def on_test(self, solver, scores: list[tuple[str, float, float]]) -> None:
        """After a periodic test with (output name, mean value, loss weight) per output element."""

    def on_snapshot(self, solver, tag: str, paths: tuple[str, str]) -> None:
        """After a snapshot (``tag`` "" for the periodic one) was written to ``paths``."""

    def should_stop(self, solver) -> bool:
        """Return True to end training after this iteration (with a final snapshot)."""
        return False

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned (a ``--snapshot`` resume)."""

    def load_rollback_state(self, state: dict[str, Any]) -> None:
        """A rollback to an earlier snapshot of this run (the pruning fork's internal Restore):
        take back the model-side state (masks, λ, ranks) from ``state`` but keep the schedule."""

"""Extension points of the training loop, used by pruning methods (src/prunekit/prune/).

A hook sees the solver at fixed points of every iteration. Whatever it needs to continue exactly
after a resume goes into ``state_dict()``, which the solver stores in the ``.solverstate``.
"""

from __future__ import annotations

from typing import Any


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

"""What the IncReg schedule (prune/increg/schedule.py) decides, as objects the hook applies.

The schedule never acts on the solver: its entry points are generators that yield one decision
at a time (take a snapshot, roll back to a snapshot, enter a run state, change the lr, run the
TEST nets, finish) and :func:`apply_decisions` (called by prune/increg/hook.py) carries each out
through the solver's public calls and ``solver.control`` (solver/hooks.py TrainingControl) before
the schedule goes on, so what the schedule reads next (the lr in force, the restored counters)
is what the fork saw at that point. A decision's ``apply`` returns what the schedule needs back
(the test scores of :class:`RunTests`), sent into the generator.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Union


@dataclass(frozen=True)
class TakeSnapshot:
    """Write ``<prefix><tag>_iter_<k>`` (.caffemodel + .solverstate)."""
    tag: str

    def apply(self, solver) -> None:
        solver.snapshot(self.tag)


@dataclass(frozen=True)
class RollBack:
    """Restore the weights and counters of the solverstate ``path`` (the schedule keeps its own
    state: a rollback, not a resume)."""
    path: str

    def apply(self, solver) -> None:
        solver.restore(self.path, rollback=True)


@dataclass(frozen=True)
class EnterState:
    """Go to run state ``state`` (prune, losseval, retrain, final_retrain), whose gradient
    accumulation factor is ``iter_size`` (multiplying the solver's own iter_size)."""
    state: str
    iter_size: int

    def apply(self, solver) -> None:
        solver.control.set_iter_size(self.iter_size)


@dataclass(frozen=True)
class DecayLr:
    """lr ×= factor (the end of an lr period)."""
    factor: float

    def apply(self, solver) -> None:
        solver.control.multiply_lr(self.factor)


@dataclass(frozen=True)
class UndoLrDecay:
    """lr /= factor: takes back the last DecayLr by a division, as the fork did."""
    factor: float

    def apply(self, solver) -> None:
        solver.control.divide_lr(self.factor)


@dataclass(frozen=True)
class SetLr:
    """Use ``rate`` as the learning rate from now on (learning rate units of the solver)."""
    rate: float

    def apply(self, solver) -> None:
        solver.control.set_lr(self.rate)


@dataclass(frozen=True)
class RunTests:
    """Run every TEST net now; ``apply`` returns their scores (solver.test_all)."""

    def apply(self, solver) -> list:
        return solver.test_all()


@dataclass(frozen=True)
class Finish:
    """End the run; ``best_model`` is the snapshot stem of the model it ends on."""
    best_model: str

    def apply(self, solver) -> None:
        solver.control.finish()


Decision = Union[TakeSnapshot, RollBack, EnterState, DecayLr, UndoLrDecay, SetLr, RunTests, Finish]
Decisions = Generator[Decision, Any, None]


def apply_decisions(decisions: Decisions, solver) -> list[Decision]:
    """Carry out each decision as the schedule yields it, sending back what it returns; the
    decisions, in order (for tests and logs)."""
    done: list[Decision] = []
    result = None
    while True:
        try:
            decision = decisions.send(result)
        except StopIteration:
            return done
        result = decision.apply(solver)
        done.append(decision)

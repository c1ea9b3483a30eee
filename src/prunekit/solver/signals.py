"""Caffe's ``-sigint_effect`` / ``-sighup_effect`` for ``prunekit train``, plus SIGTERM.

Caffe's ``SignalHandler`` only records that a signal came; the solver looks at it between
iterations (``Solver::Step`` → ``GetRequestedAction``) and then stops or snapshots, so an
iteration is never cut in half and a snapshot never races the update. Same here: the handler
sets a flag and :meth:`SignalActions.apply` acts on it after the iteration.

Effects: ``stop`` (Caffe: leave the loop; the final snapshot is written when
``snapshot_after_train`` says so, as after ``max_iter``), ``snapshot`` (write one and train on),
``none`` (ignore the signal), and prunekit's ``snapshot_stop`` (write a snapshot whatever
``snapshot_after_train`` says, then stop). Defaults: SIGINT ``stop`` and SIGHUP ``snapshot``
(Caffe's), SIGTERM ``snapshot_stop`` — what a cluster scheduler sends before it kills a job, so
the job can be resumed from where it was.

With several data-parallel ranks a stop is agreed through the gradient all-reduce (every rank
leaves after the same iteration, see solver/distributed.py); a lone ``snapshot`` cannot be
agreed that way, so there it is refused up front.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

from prunekit.errors import PrunekitError
from prunekit.log import get_logger

EFFECTS = ("stop", "snapshot", "none", "snapshot_stop")
DEFAULTS = {"sigint": "stop", "sighup": "snapshot", "sigterm": "snapshot_stop"}
_SIGNALS = {"sigint": signal.SIGINT, "sighup": signal.SIGHUP, "sigterm": signal.SIGTERM}


def parse_effects(sigint: str | None, sighup: str | None, sigterm: str | None,
                  distributed: bool = False) -> dict[str, str]:
    """The effect per signal name, defaults filled in; PrunekitError for an unknown effect."""
    effects = {}
    for name, value in (("sigint", sigint), ("sighup", sighup), ("sigterm", sigterm)):
        value = value or DEFAULTS[name]
        if value not in EFFECTS:
            raise PrunekitError(f"--{name}_effect {value}: expected one of {', '.join(EFFECTS)}")
        if distributed and value == "snapshot":
            if name == "sighup" and sighup is None:
                value = "none"  # the default cannot be agreed between ranks: leave SIGHUP alone
            else:
                raise PrunekitError(f"--{name}_effect snapshot: a snapshot without a stop "
                                    "cannot be agreed between data-parallel ranks; use stop, "
                                    "snapshot_stop or none")
        effects[name] = value
    return effects


class SignalActions:
    """Signals seen since the last iteration, and what to do about them."""

    def __init__(self, effects: dict[str, str]) -> None:
        self.effects = effects
        self.pending: list[str] = []

    def _handler(self, name: str):
        def handler(signum, frame) -> None:
            self.pending.append(name)
        return handler

    @contextmanager
    def installed(self) -> Iterator["SignalActions"]:
        """Handle the three signals inside the block; the previous handlers come back after."""
        previous = {name: signal.signal(sig, self._handler(name))
                    for name, sig in _SIGNALS.items()}
        try:
            yield self
        finally:
            for name, handler in previous.items():
                signal.signal(_SIGNALS[name], handler)

    def apply(self, solver) -> None:
        """Act on the signals that came during the last iteration (called between iterations).

        In a data-parallel run a stop only sets ``solver.interrupted``: the ranks agree in the
        next gradient all-reduce and stop together (solver.py)."""
        while self.pending:
            name = self.pending.pop(0)
            effect = self.effects[name]
            log = get_logger()
            if effect == "none":
                log.info("%s received: ignored (--%s_effect none)", name.upper(), name)
                continue
            if effect == "snapshot":
                log.info("%s received: writing a snapshot and training on", name.upper())
                solver.snapshot()
                continue
            log.info("%s received: stopping after iteration %d%s", name.upper(), solver.iter,
                     " with a snapshot" if effect == "snapshot_stop" else "")
            if effect == "snapshot_stop":
                solver.snapshot_on_stop = True
            solver.interrupted = True
            if not solver.dist.active:
                solver.stop_requested = True

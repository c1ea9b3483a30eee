"""A pruning run read back from its two logs (Caffe's glog lines on stderr, the [app] pruning
log on stdout; ``compression_experiments/lenet5/train.sh`` writes them to ``log_*_acc.txt`` and
``log_*_prune.txt``).

Iterations restart when the schedule rolls back to a snapshot (a retrain period resumes from
its best iteration), so every event gets a **step**: the number of iterations run so far, which
only grows. Read from the logs:

* training loss (``Iteration N, loss = x``) and test scores (``Test net output #k: accuracy =``
  / ``loss =``; the [app] ``'retrain' going on, current acc = x`` lines too);
* theoretical speedup (``**** Step N (after update): s/target …``) — IncReg and SPP print it;
* phases: prune until ``Current pruning stage … finished``, then losseval until ``'losseval'
  done``, then retrain; ``All layer prune finished`` starts the final retrain; a mask method
  (L1_Row, FPGM_Row, Mag_Weight, …) prunes until its last ``round k/R`` and retrains after;
* per-layer pruned ratio at the end: ``<layer> prune finished! … pruned_ratio: p`` (IncReg) or
  the last ``round k/R …: <layer> keeps a/b weights`` (mask methods: 1 − a/b).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from prunekit.errors import PrunekitError

_ITER = re.compile(r"\] Iteration (\d+), loss = ([-+0-9.eE]+|nan)")
_TESTING = re.compile(r"\] Iteration (\d+), Testing net")
_TEST = re.compile(r"Test net output #\d+: (\S+) = ([-+0-9.eE]+|nan)")
_STEP = re.compile(r"^\*\*\*\* Step (\d+) \(after update\): ([-+0-9.eE]+|inf)/")
_RETRAIN_ACC = re.compile(
    r"'(?:retrain|final_retrain)' going on, current acc = ([0-9.]+), iter: (\d+)")
_STAGE_DONE = re.compile(r"Current pruning stage .* iter: (\d+)")
_LOSSEVAL_DONE = re.compile(r"'losseval' done.* iter: (\d+)")
_ALL_PRUNED = re.compile(r"All layer prune finished: iter = (\d+)")
_LAYER_DONE = re.compile(r"^(\S+) prune finished!.*? pruned_ratio: ([0-9.]+)")
_ROUND = re.compile(r"round \d+/\d+ at iter (\d+): (\S+) keeps (\d+)/(\d+) weights")
_RESUME = re.compile(r"Restoring previous solver status from \S+_iter_(\d+)\.solverstate")
_APP_RESUME = re.compile(r"(?:Resuming from iter = |final acc = [0-9.]+, iter = )(\d+)")


@dataclass
class RunLog:
    """Series as (step, value) lists; ``phases`` as (start step, end step, name)."""

    train_loss: list[tuple[int, float]] = field(default_factory=list)
    test: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    speedup: list[tuple[int, float]] = field(default_factory=list)
    phases: list[tuple[int, int, str]] = field(default_factory=list)
    pruned_ratio: dict[str, float] = field(default_factory=dict)


class _Clock:
    """Turns the logs' iteration numbers into monotone steps (rollbacks add, never subtract)."""

    def __init__(self) -> None:
        self.offset = 0
        self.last = 0

    def step(self, iteration: int) -> int:
        if iteration < self.last:
            self.offset += self.last - iteration
        self.last = iteration
        return iteration + self.offset


def parse_caffe_log(text: str, run: RunLog) -> None:
    clock = _Clock()
    testing_at = 0
    for line in text.splitlines():
        if m := _RESUME.search(line):
            clock.step(int(m.group(1)))
        elif m := _ITER.search(line):
            run.train_loss.append((clock.step(int(m.group(1))), float(m.group(2))))
        elif m := _TESTING.search(line):
            testing_at = clock.step(int(m.group(1)))
        elif m := _TEST.search(line):
            run.test.setdefault(m.group(1), []).append((testing_at, float(m.group(2))))


def parse_app_log(text: str, run: RunLog) -> None:
    clock = _Clock()
    state, start = "prune", 0
    for line in text.splitlines():
        if m := _APP_RESUME.search(line):
            clock.step(int(m.group(1)))
        if m := _STEP.search(line):
            run.speedup.append((clock.step(int(m.group(1))), float(m.group(2))))
        elif m := _RETRAIN_ACC.search(line):
            run.test.setdefault("retrain acc", []).append((clock.step(int(m.group(2))),
                                                           float(m.group(1))))
        elif m := _LAYER_DONE.search(line):
            run.pruned_ratio[m.group(1)] = float(m.group(2))
        elif m := _ROUND.search(line):
            clock.step(int(m.group(1)))
            run.pruned_ratio[m.group(2)] = 1 - int(m.group(3)) / int(m.group(4))
        for pattern, nxt in ((_STAGE_DONE, "losseval"), (_LOSSEVAL_DONE, "retrain"),
                             (_ALL_PRUNED, "final_retrain")):
            if m := pattern.search(line):
                at = clock.step(int(m.group(1)))
                run.phases.append((start, at, state))
                state, start = nxt, at
    last = max([s for s, _ in run.speedup] + [clock.last + clock.offset, start])
    if last > start:
        run.phases.append((start, last, state))


def read_run(paths: list[str]) -> RunLog:
    """Both logs of a run, in any order (a file is read as a Caffe log when it has glog
    training lines, as a pruning log when it has [app] lines; one file may be both)."""
    run = RunLog()
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError as e:
            raise PrunekitError(f"--logs {path}: cannot read it ({e.strerror})") from None
        if _ITER.search(text) or _TEST.search(text):
            parse_caffe_log(text, run)
        if "[app]" in text or _STEP.search(text):
            parse_app_log(text, run)
    _close_phases(run)
    if not run.train_loss and not run.test and not run.speedup:
        raise PrunekitError(f"--logs {' '.join(paths)}: no training lines (Iteration N, loss = "
                            "...), test scores or [app] lines; expected the logs of prunekit train")
    return run


def _close_phases(run: RunLog) -> None:
    """The [app] log does not say when training ends: the last phase runs to the last step of
    the Caffe log. A mask method's log has prune rounds only; what follows them is retraining."""
    end = max([s for s, _ in run.train_loss] + [s for series in run.test.values()
                                                   for s, _ in series] + [0])
    if not run.phases or run.phases[-1][1] >= end:
        return
    start, stop, name = run.phases[-1]
    if [p[2] for p in run.phases] == ["prune"]:
        run.phases.append((stop, end, "retrain"))
    else:
        run.phases[-1] = (start, end, name)

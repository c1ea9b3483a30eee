"""The LeNet-5 experiment's pruning log (stdout: the ``[app]`` course and its companion lines)
stays exactly what it was before ``prune/`` was regrouped (issue 14): a shortened
``compression_experiments/lenet5/train.sh`` run through the real CLI, compared line by line
with a golden log, wall-clock stamps masked.

The run is train.sh's, shortened to fit the suite (~30 s on 2 cores):
  1. ``prunekit data mnist --out data/mnist`` (the embedded MNIST subset);
  2. the baseline from ``baseline_solver.prototxt`` for 300 iterations instead of 8,000;
  3. ``solver.prototxt`` (Reg_Col IncReg in the solver, given-ratio mode, speedup 4, the shipped
     ``train_val.prototxt``) with ``--weights`` = that baseline, shortened by SHORT_REG_COL
     (target_reg 0.05 -> 0.01 so columns are pruned in ~300 iterations; tests of 100 digits
     every 20 iterations; losseval 20 iterations) -> golden/lenet5_reg_col_prune_log.txt;
  4. ``solver_l1_row.prototxt`` (L1_Row, a non-IncReg family: two rounds every 20 iterations,
     60 iterations) on ``train_val_filters.prototxt`` from the same baseline
     -> golden/lenet5_l1_row_prune_log.txt.
Each golden file is the run's stdout (the prune log) followed by its stderr lines with the loss,
test scores, removed snapshots and final model (glog prefix cut). Everything runs with OMP_NUM_THREADS=1 (same seed, CPU), so float reductions do not depend on the
number of cores.

The golden files were produced from the code of commit a6b72d6 (before the regrouping) with::

    mkdir /tmp/gold_a6b72d6 && git archive a6b72d6 src setup.py | tar -x -C /tmp/gold_a6b72d6
    (cd /tmp/gold_a6b72d6 && /work/main/.venv/bin/python setup.py build_ext --inplace)
    PYTHONPATH=/tmp/gold_a6b72d6/src:tests/cli /work/main/.venv/bin/python \
        tests/cli/test_app_course_golden.py --write

run from the repository root (Python 3.11, torch 2.13.0+cpu; the C step built at a6b72d6, which
the recording copied in as the .so of that checkout); rerun that only when a change of the log
is intended, and say why.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from cli_helpers import LENET_DIR, run_cli

GOLDEN = Path(__file__).resolve().parent / "golden"

SHORT_BASELINE = {"max_iter: 8000": "max_iter: 300", "test_interval: 2000": "test_interval: 300",
                  "snapshot: 0": "snapshot: 300"}
SHORT_REG_COL = {"test_iter: 10 ": "test_iter: 1 ", "target_reg: 0.05 ": "target_reg: 0.01 ",
                 "losseval_interval: 200": "losseval_interval: 20",
                 "retrain_test_interval: 100": "retrain_test_interval: 20",
                 "max_iter: 100000": "max_iter: 1000", "snapshot: 500": "snapshot: 0"}
SHORT_L1_ROW = {"test_iter: 10 ": "test_iter: 1 ", "test_interval: 500": "test_interval: 60",
                "max_iter: 2000": "max_iter: 60", "stepvalue: 1500": "stepvalue: 40",
                "display: 500": "display: 20", "prune_interval: 500": "prune_interval: 20"}
RUNS = {"lenet5_reg_col_prune_log.txt": ("solver.prototxt", SHORT_REG_COL),
        "lenet5_l1_row_prune_log.txt": ("solver_l1_row.prototxt", SHORT_L1_ROW)}

#: The wall-clock stamp the [app] lines carry, e.g. " (2026/12/03-13:46)".
STAMP = re.compile(r"\(\d{4}/\d\d/\d\d-\d\d:\d\d\)")
#: The glog (stderr) lines kept after the stdout, their "I1203 13:46:06.12 9516 file.py:86] " cut.
TRAINING_LINE = re.compile(r"\] (Iteration \d+, (loss|lr|Testing)|    Test net output|Pruning done|Removed old)")
SEPARATOR = "---- stderr: Iteration loss, lr, testing / Test net output / Pruning done / Removed old lines ----\n"


def _copy_solver(root: Path, name: str, changes: dict[str, str]) -> Path:
    """compression_experiments/lenet5/NAME under ``root`` with ``changes`` applied (each must hit)."""
    text = (LENET_DIR / name).read_text()
    for old, new in changes.items():
        assert old in text, f"{name}: {old!r} not found"
        text = text.replace(old, new)
    path = root / "compression_experiments" / "lenet5" / name
    path.write_text(text)
    return path


def produce(root: Path) -> dict[str, str]:
    """Run the shortened experiment under ``root``; the stdout of each pruning run by golden name."""
    os.environ["OMP_NUM_THREADS"] = "1"
    exp = root / "compression_experiments" / "lenet5"
    (exp / "weights").mkdir(parents=True)
    for name in ("train_val.prototxt", "train_val_filters.prototxt"):
        shutil.copy(LENET_DIR / name, exp / name)
    run_cli(["data", "mnist", "--out", "data/mnist"], root, check=True)
    base = _copy_solver(root, "baseline_solver.prototxt", SHORT_BASELINE)
    run_cli(["train", "--solver", str(base.relative_to(root))], root, check=True)
    weights = "compression_experiments/lenet5/weights/baseline_iter_300.caffemodel"
    logs = {}
    for golden, (solver, changes) in RUNS.items():
        path = _copy_solver(root, solver, changes)
        proc = run_cli(["train", "--solver", str(path.relative_to(root)), "--weights", weights],
                       root, check=True)
        logs[golden] = proc.stdout + SEPARATOR + "".join(
            line.split("] ", 1)[1] + "\n" for line in proc.stderr.splitlines()
            if TRAINING_LINE.search(line))
    return logs


def _masked(log: str) -> list[str]:
    return [STAMP.sub("(TIME)", line) for line in log.splitlines()]


def test_lenet5_prune_logs_match_the_golden_logs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    logs = produce(tmp_path)
    for golden, log in logs.items():
        want = _masked((GOLDEN / golden).read_text())
        got = _masked(log)
        assert sum("[app]" in line for line in want) >= 5, golden    # the golden file is a real log
        for number, (w, g) in enumerate(zip(want, got), 1):
            assert g == w, f"{golden} line {number}:\n want {w}\n got  {g}"
        assert len(got) == len(want), f"{golden}: {len(got)} lines, golden has {len(want)}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: PYTHONPATH=src:tests/cli python tests/cli/test_app_course_golden.py --write")
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        for golden, log in produce(Path(tmp)).items():
            GOLDEN.mkdir(exist_ok=True)
            (GOLDEN / golden).write_text(log)
            print(f"wrote {GOLDEN / golden}: {log.count('[app]')} [app] lines")

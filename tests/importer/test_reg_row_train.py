"""Issue 16, must show: Reg_Row (IncReg on filters) runs in-solver pruning iterations on CPU on
imported torchvision ResNet-18 and MobileNetV2, through ``prunekit train`` on the
train_val.prototxt and solver skeleton that ``prunekit import --train-val`` writes (small real
LMDBs). The skeleton's AA / target_reg are raised so that filters reach their target (2.452 x 0.2 = 0.49, two steps of 0.25) within six
iterations: the solver's log counts a conv speedup above 1 and the snapshot has fewer conv MACs left
(``prunekit flops --weights``)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from cli_helpers import run_cli  # noqa: E402
from prune_helpers import import_for_training, shorten_solver  # noqa: E402


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_reg_row_prunes_filters_of_an_imported_net_in_the_solver(name, tmp_path):
    import_for_training(name, tmp_path, "Reg_Row", 0.5)
    shorten_solver(tmp_path / "solver.prototxt", {
        "max_iter: 10000000 ": "max_iter: 6 ", "test_iter: 10": "test_iter: 1",
        "display: 20": "display: 1", "AA: 0.00025 ": "AA: 0.25 ",
        "target_reg: 2.5 ": "target_reg: 0.2 "})
    proc = run_cli(["train", "--solver", "solver.prototxt", "--weights", "w.caffemodel"],
                   tmp_path, check=True)
    log = proc.stdout + proc.stderr
    assert "Iteration 6" in log and "**** Step 6 (after update)" in log, log[-2000:]
    step6 = re.search(r"\*\*\*\* Step 6 \(after update\): ([0-9.]+)/", log)
    assert step6 and float(step6[1]) > 1.0, log[-2000:]  # the solver's own speedup count
    report = json.loads(run_cli(["flops", "--model", "deploy.prototxt", "--weights",
                                 "weights/_iter_6.caffemodel", "--json"], tmp_path,
                                check=True).stdout)["totals"]
    assert report["conv_macs_left"] < report["conv_macs"]

"""prunekit sensitivity on the Caffe_IncReg LeNet-5 fixture: its dense point is what
prunekit test scores on the same batch, pruning more never helps much, and bad input is a
one-line error."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cli_helpers import LENET_FIXTURE, fixture_experiment, run_cli


def test_sensitivity_dense_point_is_prunekit_test(workdir: Path) -> None:
    exp = fixture_experiment(workdir, LENET_FIXTURE)
    model, weights = exp / "train_val.prototxt", LENET_FIXTURE / "baseline_lenet5.caffemodel"
    proc = run_cli(["sensitivity", "--model", str(model), "--weights", str(weights), "--unit",
                    "Col", "--ratios", "0.5,0.95", "--iterations", "1", "--out", "s.json"],
                   workdir, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((workdir / "s.json").read_text())
    test = run_cli(["test", "--model", str(model), "--weights", str(weights), "--iterations", "1"],
                   workdir, timeout=300, check=True)
    accuracy = float(re.findall(r"\] accuracy = ([0-9.]+)", test.stderr)[-1])
    loss = float(re.findall(r"\] loss = ([0-9.]+)", test.stderr)[-1])
    assert [c["name"] for c in data["curves"]] == ["conv1", "conv2"]
    for curve in data["curves"]:
        assert curve["accuracy"][0] == data["dense_accuracy"]
        assert abs(curve["accuracy"][0] - accuracy) < 1e-6
        assert abs(curve["loss"][0] - loss) < 1e-4 * max(1.0, loss)
        assert curve["loss"][2] > 2 * curve["loss"][0]      # 95% of the columns hurts
    assert data["curves"][0]["num_groups"] == 25 and data["curves"][1]["num_groups"] == 500


def test_sensitivity_refuses_bad_ratios_and_unit(workdir: Path) -> None:
    exp = fixture_experiment(workdir, LENET_FIXTURE)
    base = ["sensitivity", "--model", str(exp / "train_val.prototxt"), "--weights",
            str(LENET_FIXTURE / "baseline_lenet5.caffemodel"), "--out", "s.json"]
    for extra, message in ((["--ratios", "0.5:0.2"], "--ratios 0.5:0.2"),
                           (["--ratios", "0.5,1.5"], "(0, 1)"),
                           (["--unit", "Kernel"], "--unit Kernel")):
        proc = run_cli(base + extra, workdir, timeout=120)
        assert proc.returncode == 1, extra
        assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (workdir / "s.json").exists()

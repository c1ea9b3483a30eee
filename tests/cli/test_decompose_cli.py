"""`prunekit decompose` through the real CLI on the Caffe_IncReg LeNet-5 fixture (trained
weights) and the embedded MNIST LMDBs: --ratio 2, the speedup `prunekit flops` agrees with, a
50-iteration fine-tune with `prunekit train --weights PREFIX.caffemodel` that keeps accuracy within 1
point; --energy data; clear errors for bad ranks and flags."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import pytest

from cli_helpers import LENET_FIXTURE, run_cli
from prunekit.cli import main

MODEL = str(LENET_FIXTURE / "train_val.prototxt")
WEIGHTS = str(LENET_FIXTURE / "baseline_lenet5.caffemodel")
SPEEDUP = re.compile(r"conv MACs: +([\d,]+) -> ([\d,]+) \(theoretical conv speedup ([\d.]+)x\)")
ACCURACY = re.compile(r"\] accuracy = ([\d.]+)\n")

SOLVER = """net: "lenet_r2.prototxt"
test_iter: 10
test_interval: 50
test_initialization: false
base_lr: 0.001
momentum: 0.9
weight_decay: 0.0005
lr_policy: "fixed"
display: 50
max_iter: 50
snapshot: 50
snapshot_prefix: "ft"
random_seed: 1
"""


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_ratio_2_flops_agree_and_finetune_keeps_accuracy(workdir: Path, capsys):
    """decompose and train run as subprocesses; flops and test in-process (the same main())."""
    proc = run_cli(["decompose", "--model", MODEL, "--weights", WEIGHTS, "--ratio", "2",
                    "--save-model", "lenet_r2"], workdir, check=True)
    dense, left, speedup = SPEEDUP.search(proc.stdout).groups()
    assert 2.0 <= float(speedup) <= 2.1
    ranks = json.loads((workdir / "lenet_r2.json").read_text())
    assert ranks["fc_params"] == {} and ranks["conv_params"]
    with contextlib.chdir(workdir):
        code, out, _ = _main(["flops", "--model", "lenet_r2.prototxt", "--json"], capsys)
        totals = json.loads(out)["totals"]
        assert code == 0 and totals["conv_macs"] == _number(left)
        assert _number(dense) == 1_888_000
        code, _, err = _main(["test", "--model", MODEL, "--weights", WEIGHTS, "--iterations",
                              "10"], capsys)
    base_acc = float(ACCURACY.search(err).group(1))
    (workdir / "solver.prototxt").write_text(SOLVER)
    train = run_cli(["train", "--solver", "solver.prototxt", "--weights", "lenet_r2.caffemodel"],
                    workdir, check=True)
    tuned = float(re.findall(r"Test net output #\d+: accuracy = ([\d.]+)", train.stderr)[-1])
    assert tuned >= base_acc - 0.01, (base_acc, tuned)
    assert (workdir / "ft_iter_50.caffemodel").exists()


def _main(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_data_energies_and_one_layer(workdir: Path, capsys):
    with contextlib.chdir(workdir):
        code, out, _ = _main(["decompose", "--model", MODEL, "--weights", WEIGHTS, "--ratio", "2",
                              "--energy", "data", "--batches", "1", "--include-fc",
                              "--save-model", "d"], capsys)
        # --include-fc: the target counts conv + InnerProduct MACs, = all of LeNet-5's MACs
        all_layers = re.search(r"all-layer MACs: .*theoretical speedup ([\d.]+)x", out).group(1)
        assert code == 0 and 2.0 <= float(all_layers) <= 2.1
        code, out, _ = _main(["decompose", "--model", MODEL, "--weights", WEIGHTS, "--layer", "ip1",
                              "--K", "20", "--save-model", "one"], capsys)
        assert code == 0 and json.loads(Path("one.json").read_text())["fc_params"] == {"ip1": 20}


@pytest.mark.parametrize("config,message", [
    ({"conv_params": {"conv9": 3}}, "layer 'conv9' is not in the net"),
    ({"conv_params": {"ip1": 3}}, "'ip1' is listed in conv_params but is a InnerProduct layer"),
    ({"conv_params": {"conv2": 101}}, "rank 101 exceeds its full rank 100"),
    ({"conv_params": {"conv2": 0}}, "conv_params.conv2 = 0: expected an integer rank >= 1"),
])
def test_bad_config_is_a_clear_error(workdir: Path, capsys, config, message):
    path = workdir / "bad.json"
    path.write_text(json.dumps(config))
    with contextlib.chdir(workdir):   # the Data layers' LMDB paths are relative
        code, _, err = _main(["decompose", "--model", MODEL, "--weights", WEIGHTS, "--config",
                              str(path), "--save-model", "x"], capsys)
    assert code == 1 and message in err and str(path) in err
    assert not (workdir / "x.prototxt").exists()


def test_bad_flags_are_clear_errors(workdir: Path, capsys):
    base = ["decompose", "--model", MODEL, "--weights", WEIGHTS, "--save-model", "x"]
    for extra, message in ((["--layer", "conv2"], "--layer and --K go together"),
                           ([], "give exactly one of --ratio"),
                           (["--ratio", "50"], "--ratio 50 cannot be reached"),
                           (["--layer", "pool1", "--K", "2"], "'pool1' is a Pooling layer")):
        with contextlib.chdir(workdir):
            code, _, err = _main(base + extra, capsys)
        assert code == 1 and message in err, err

"""prunekit plot on a real short IncReg run of the Caffe_IncReg fixture (its two logs), on a
real sensitivity table and on a methods-table JSON: the PNGs are opened and checked."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from cli_helpers import LENET_FIXTURE, REPO, fixture_experiment, run_cli
from prunekit import caffe
from prunekit.report.run_log import read_run

#: Beyond FAST_FIXTURE_SOLVER: a 10x smaller target_reg and 5-iteration intervals, so the
#: whole schedule (prune, losseval, retrain, final_retrain) runs in ~150 iterations.
TINY = {"target_reg: 0.005": "target_reg: 0.0005", "losseval_interval: 20": "losseval_interval: 5",
        "retrain_test_interval: 10": "retrain_test_interval: 5", "display: 25": "display: 5"}


def _check_png(path: Path, width: int, height: int) -> None:
    image = mpimg.imread(path)
    assert image.shape[:2] == (height, width)
    assert float(np.var(image[..., :3])) > 1e-3     # not blank


@pytest.fixture(scope="module")
def short_run(mnist_root: Path, tmp_path_factory) -> Path:
    if not LENET_FIXTURE.is_dir():
        pytest.skip("shared fixtures missing")
    root = tmp_path_factory.mktemp("plot_run")
    (root / "data").mkdir()
    (root / "data" / "mnist").symlink_to(mnist_root / "data" / "mnist")
    fixture_experiment(root, LENET_FIXTURE, TINY)
    _train_with_logs(root, "solver.prototxt")
    return root


def _train_with_logs(root: Path, solver: str) -> None:
    """A real prunekit train from the fixture baseline; its stderr/stdout as acc.txt/prune.txt."""
    proc = run_cli(["train", "--solver", f"compression_experiments/lenet5/{solver}",
                    "--weights", str(LENET_FIXTURE / "baseline_lenet5.caffemodel")], root,
                   timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (root / "acc.txt").write_text(proc.stderr)
    (root / "prune.txt").write_text(proc.stdout)


def test_run_log_has_phases_speedup_and_final_ratios(short_run: Path) -> None:
    run = read_run([str(short_run / "prune.txt"), str(short_run / "acc.txt")])
    names = [p[2] for p in run.phases]
    assert names[:3] == ["prune", "losseval", "retrain"]   # given ratios: no final_retrain
    assert all(a[1] == b[0] for a, b in zip(run.phases, run.phases[1:]))   # contiguous
    assert all(p[0] < p[1] for p in run.phases)
    assert run.speedup[0][1] == 1 and run.speedup[-1][1] > 4
    assert set(run.pruned_ratio) == {"conv1", "conv2"}
    assert all(0.5 < r <= 1 for r in run.pruned_ratio.values())
    steps = [s for s, _ in run.train_loss]
    assert steps == sorted(steps) and len(steps) > 10
    assert run.test["accuracy"] and all(0 <= a <= 1 for _, a in run.test["accuracy"])


def test_plot_of_a_pruning_run(short_run: Path) -> None:
    proc = run_cli(["plot", "--logs", "acc.txt", "prune.txt", "--out", "run.png"], short_run,
                   timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _check_png(short_run / "run.png", 1300, 400)


def test_plot_of_sensitivity_curves_and_methods_table(tmp_path: Path) -> None:
    sens = {"unit": "Row", "criterion": "l1", "score": "accuracy", "dense_accuracy": 0.9,
            "dense_loss": 0.3, "total_conv_macs": 100,
            "curves": [{"name": "conv1", "members": ["conv1"], "num_groups": 4, "macs": 40,
                        "time_share": 0.2, "ratios": [0, 0.5], "accuracy": [0.9, 0.5],
                        "loss": [0.3, 1.0]}]}
    (tmp_path / "s.json").write_text(json.dumps(sens))
    proc = run_cli(["plot", "--sensitivity", "s.json", "--out", "s.png"], tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _check_png(tmp_path / "s.png", 650, 450)
    table = sorted((REPO / "benchmarks" / "results").glob("*_methods_table.json"))[-1]
    proc = run_cli(["plot", "--methods", str(table), "--out", "m.png"], tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _check_png(tmp_path / "m.png", 650, 450)


def test_plot_refuses_a_log_without_training_lines(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    proc = run_cli(["plot", "--logs", "notes.txt", "--out", "x.png"], tmp_path, timeout=60)
    assert proc.returncode == 1 and "notes.txt" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_run_log_of_a_mask_method_prunes_then_retrains(workdir: Path) -> None:
    """A real 40-iteration L1_Row run: rounds at 0 and 10, then retraining to the end."""
    exp = fixture_experiment(workdir, LENET_FIXTURE)
    (exp / "solver_l1.prototxt").write_text(
        'net: "compression_experiments/lenet5/train_val.prototxt"\ntest_iter: 1\n'
        'test_interval: 20\ntest_initialization: true\nbase_lr: 0.001\nmomentum: 0.9\n'
        'lr_policy: "fixed"\ndisplay: 10\nmax_iter: 40\nsnapshot: 0\nrandom_seed: 1\n'
        'snapshot_prefix: "compression_experiments/lenet5/weights/l1"\nsolver_mode: CPU\n'
        'prune_method: "L1_Row"\nprune_rounds: 2\nprune_interval: 10\n')
    _train_with_logs(workdir, "solver_l1.prototxt")
    run = read_run([str(workdir / "acc.txt"), str(workdir / "prune.txt")])
    assert run.phases == [(0, 10, "prune"), (10, 40, "retrain")]
    ratios = {layer.name: layer.prune_param.prune_ratio for layer in
              caffe.read_net_prototxt(exp / "train_val.prototxt").layer
              if layer.HasField("prune_param") and layer.prune_param.prune_ratio > 0}
    assert run.pruned_ratio.keys() == ratios.keys()
    for name, ratio in ratios.items():     # whole filters: ⌊N·r⌋ of N rows
        assert run.pruned_ratio[name] == pytest.approx(ratio, abs=0.05)
    proc = run_cli(["plot", "--logs", "acc.txt", "prune.txt", "--out", "run.png"], workdir,
                   timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _check_png(workdir / "run.png", 1300, 400)

"""The method zoo through the real CLI on the real LeNet experiment files (shortened runs):
L1_Row on LeNet-5 compacts to half the filters (>= 2x fewer conv MACs); Reg_Shape learns a
smaller conv2 kernel that compact emits (with a Slice crop) and that tests the same; Mag_Weight on
LeNet-300-100 leaves exactly its targets; a wrong unit is a clear error."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from cli_helpers import REPO, run_cli
from prunekit import caffe

EXP = REPO / "compression_experiments"


def _short_solver(workdir: Path, exp: str, solver: str, changes: dict[str, str]) -> Path:
    """The experiment's solver with its net copied into ``workdir`` and ``changes`` applied."""
    param = caffe.read_solver_prototxt(EXP / exp / solver)
    net = Path(param.net).name
    shutil.copy(EXP / exp / net, workdir / net)
    shutil.copy(EXP / exp / "deploy.prototxt", workdir / "deploy.prototxt")
    text = (EXP / exp / solver).read_text()
    for old, new in {f"compression_experiments/{exp}/{net}": net,
                     f"compression_experiments/{exp}/weights/": "", **changes}.items():
        assert old in text, old
        text = text.replace(old, new)
    (workdir / solver).write_text(text)
    return workdir / solver


def test_l1_row_lenet5_compacts_to_half_the_filters(workdir: Path) -> None:
    solver = _short_solver(workdir, "lenet5", "solver_l1_row.prototxt", {
        "max_iter: 2000": "max_iter: 30", "prune_interval: 500": "prune_interval: 10",
        "test_iter: 10": "test_iter: 1", "test_interval: 500": "test_interval: 30"})
    proc = run_cli(["train", "--solver", solver.name], workdir, check=True)
    assert "[app] round 2/2 at iter 10: conv2 keeps 12500/25000 weights (50.00%), 25/50 rows" in proc.stdout
    assert re.search(r"Pruning done\. Final model: l1_row_iter_30\.caffemodel", proc.stderr)
    run_cli(["compact", "--model", "deploy.prototxt", "--weights", "l1_row_iter_30.caffemodel",
             "--out-model", "small.prototxt", "--out-weights", "small.caffemodel"], workdir,
            check=True)
    small = {lp.name: lp for lp in caffe.read_net_prototxt(workdir / "small.prototxt").layer}
    assert small["conv1"].convolution_param.num_output == 10
    assert small["conv2"].convolution_param.num_output == 25
    run_cli(["flops", "--model", "small.prototxt", "--weights", "small.caffemodel", "--json",
             "flops.json"], workdir, check=True)
    layers = json.loads((workdir / "flops.json").read_text())["layers"]
    conv = sum(l["macs"] for l in layers if l["type"] == "Convolution")
    assert 1_888_000 / conv >= 2.0


def _accuracy(proc) -> float:
    return float(re.findall(r"\] accuracy = ([0-9.]+)", proc.stderr)[-1])


def test_reg_shape_lenet5_kernel_compacts_and_scores_the_same(workdir: Path) -> None:
    solver = _short_solver(workdir, "lenet5", "solver_reg_shape.prototxt", {
        "max_iter: 2000": "max_iter: 30", "AA: 0.005": "AA: 0.25",      # 4 iterations an edge
        "test_iter: 10": "test_iter: 2", "test_interval: 500": "test_interval: 30"})
    proc = run_cli(["train", "--solver", solver.name], workdir, check=True)
    assert proc.stdout.count("conv2 prunes its kernel") >= 3 and "(target reached)" in proc.stdout
    final = re.search(r"Pruning done\. Final model: (\S+) \(Reg_Shape, kernels conv2 (\d)x(\d)\)",
                      proc.stderr)
    assert final and int(final[2]) * int(final[3]) <= 10
    for net in ("deploy", "train_val_shape"):
        run_cli(["compact", "--model", f"{net}.prototxt", "--weights", final[1], "--out-model",
                 f"small_{net}.prototxt", "--out-weights", f"small_{net}.caffemodel"], workdir,
                check=True)
    small = {lp.name: lp for lp in caffe.read_net_prototxt(workdir / "small_deploy.prototxt").layer}
    cp = small["conv2"].convolution_param
    assert (cp.kernel_h, cp.kernel_w) == (int(final[2]), int(final[3]))
    assert any(lp.type == "Slice" and lp.name.startswith("conv2_crop") for lp in small.values())
    masked = run_cli(["test", "--model", "train_val_shape.prototxt", "--weights", final[1],
                      "--iterations", "2"], workdir, check=True)
    compacted = run_cli(["test", "--model", "small_train_val_shape.prototxt", "--weights",
                         "small_train_val_shape.caffemodel", "--iterations", "2"], workdir,
                        check=True)
    assert _accuracy(masked) == _accuracy(compacted)


def test_mag_weight_lenet300100_keeps_its_targets(workdir: Path) -> None:
    solver = _short_solver(workdir, "lenet300100", "solver_mag_weight.prototxt", {
        "max_iter: 2000": "max_iter: 12", "prune_interval: 200": "prune_interval: 2",
        "test_iter: 10": "test_iter: 1", "test_interval: 500": "test_interval: 12"})
    run_cli(["train", "--solver", solver.name], workdir, check=True)
    net = caffe.read_caffemodel(workdir / "mag_weight_iter_12.caffemodel")
    kept = {lp.name: caffe.blob_to_array(lp.blobs[0]) for lp in net.layer if lp.blobs}
    assert {name: int((w != 0).sum()) for name, w in kept.items()} == {
        "ip1": 235200 - int(235200 * 0.92), "ip2": 30000 - int(30000 * 0.91),
        "ip3": 1000 - int(1000 * 0.74)}
    total = sum(w.size for w in kept.values())
    assert sum(int((w != 0).sum()) for w in kept.values()) / total <= 0.10


def test_unknown_unit_is_a_clear_error(workdir: Path) -> None:
    solver = _short_solver(workdir, "lenet5", "solver_fpgm_row.prototxt",
                           {'prune_method: "FPGM_Row"': 'prune_method: "FPGM_Col"'})
    proc = run_cli(["train", "--solver", solver.name], workdir)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "solver_fpgm_row.prototxt: prune_method 'FPGM_Col' is not a pruning method" in proc.stderr
    assert "FPGM_Row" in proc.stderr

"""Data-parallel ``prunekit train --procs 2`` (gloo on the CPU) against one process, end to end.

Caffe's rule: N ranks with batch B update like one process with iter_size × N, because the ranks'
batches k are the records the single process reads in its iteration k. Checked on real MNIST
LMDBs with real subprocesses: weights and solver history after 10 iterations within 1e-6, the
same loss lines, a world-size-independent solverstate (resumed by 1 process and by 2), SIGKILL of
one rank ending the job with one clear line, and the same Reg_Col masks in 2 processes as in 1.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_helpers import LENET_DIR, LENET_FIXTURE, app_course, fixture_experiment, run_cli
from prunekit import caffe

SOLVER = """net: "train_val.prototxt"
test_iter: 1
test_interval: 10
base_lr: 0.01
momentum: 0.9
weight_decay: 0.0005
lr_policy: "inv"
gamma: 0.0001
power: 0.75
clip_gradients: 5
display: 2
random_seed: 5
snapshot: 10
"""


def _solver(folder: Path, name: str, prefix: str, max_iter: int, iter_size: int) -> str:
    (folder / prefix).mkdir(exist_ok=True)
    text = SOLVER + f'max_iter: {max_iter}\niter_size: {iter_size}\nsnapshot_prefix: "{prefix}/lenet"\n'
    (folder / name).write_text(text)
    return name


def _blobs(path: Path) -> dict[str, list[np.ndarray]]:
    return caffe.layer_blobs(caffe.read_caffemodel(path))


def _max_weight_diff(a: Path, b: Path) -> float:
    wa, wb = _blobs(a), _blobs(b)
    assert sorted(wa) == sorted(wb)
    return max(float(np.abs(x - y).max()) for name in wa for x, y in zip(wa[name], wb[name]))


def _state(path: Path) -> tuple:
    state = caffe.read_solverstate(path)
    extra = torch.load(io.BytesIO(state.prunekit_state), weights_only=True)
    return state, extra


def _loss_lines(stderr: str, upto: int) -> list[str]:
    out = []
    for line in stderr.splitlines():
        match = re.search(r"] (Iteration (\d+), loss = .*)", line)
        if match and int(match.group(2)) <= upto:
            out.append(match.group(1))
    return out


@pytest.fixture(scope="module")
def root(mnist_root: Path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ddp")
    (folder / "data").mkdir()
    (folder / "data" / "mnist").symlink_to(mnist_root / "data" / "mnist")
    (folder / "train_val.prototxt").write_text((LENET_DIR / "train_val.prototxt").read_text())
    return folder


@pytest.fixture(scope="module")
def single(root: Path) -> subprocess.CompletedProcess:
    """One process, iter_size 2, 20 iterations (snapshots at 10 and 20): the reference."""
    solver = _solver(root, "single.prototxt", "one", 20, 2)
    return run_cli(["train", "--solver", solver], root, check=True)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _rank_pid(launcher: int, rank: int) -> int:
    for pid in _children(launcher):
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in environ:
            return pid
    raise AssertionError(f"no rank {rank} under launcher {launcher}")


@pytest.fixture(scope="module")
def killed(root: Path) -> tuple[subprocess.CompletedProcess, float]:
    """Two processes, iter_size 1, an endless max_iter; rank 1 SIGKILLed after the first
    snapshot. Returns the launcher's result and the seconds from the kill to its exit."""
    solver = _solver(root, "two.prototxt", "two", 100000, 1)
    out, err = open(root / "two.out", "w"), open(root / "two.err", "w")
    proc = subprocess.Popen([sys.executable, "-m", "prunekit.cli", "train", "--solver", solver,
                             "--procs", "2"], cwd=root, stdout=out, stderr=err,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    ranks: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while not (root / "two" / "lenet_iter_10.solverstate").is_file():
            assert proc.poll() is None, (root / "two.err").read_text()[-3000:]
            assert time.monotonic() < deadline, "no snapshot at iteration 10"
            time.sleep(0.05)
        ranks = [_rank_pid(proc.pid, rank) for rank in (0, 1)]
        os.kill(ranks[1], signal.SIGKILL)
        killed_at = time.monotonic()
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:  # the launcher failed us: leave nothing running
            proc.terminate()  # the launcher passes SIGTERM on to its ranks
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                for pid in [*ranks, proc.pid]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                proc.wait()
        out.close()
        err.close()
    done = subprocess.CompletedProcess(proc.args, code, (root / "two.out").read_text(),
                                       (root / "two.err").read_text())
    return done, time.monotonic() - killed_at


def test_two_ranks_update_like_one_with_twice_the_iter_size(root, single, killed) -> None:
    """After 10 iterations: same weights (1e-6), history, data position and loss lines."""
    run, _ = killed
    assert _max_weight_diff(root / "one" / "lenet_iter_10.caffemodel",
                            root / "two" / "lenet_iter_10.caffemodel") < 1e-6
    (s1, x1), (s2, x2) = (_state(root / d / "lenet_iter_10.solverstate") for d in ("one", "two"))
    assert s1.iter == s2.iter == 10
    for h1, h2 in zip(s1.history, s2.history, strict=True):
        assert np.abs(caffe.blob_to_array(h1) - caffe.blob_to_array(h2)).max() < 1e-6
    assert x1["train_data"] == x2["train_data"] == [{"batches": 20, "seed": 5}]
    assert x1["test_data"] == x2["test_data"]
    ours = _loss_lines(run.stderr, 9)  # iteration 10 runs after the kill
    assert len(ours) == 5 and ours == _loss_lines(single.stderr, 9)
    assert "Data-parallel rank 0 of 2" in run.stderr
    assert "Data-parallel rank 1" not in run.stderr  # only rank 0 logs


def test_killing_one_rank_stops_the_job_with_one_clear_line(killed) -> None:
    run, seconds = killed
    assert run.returncode == 1
    assert seconds < 30, seconds
    last = run.stderr.strip().splitlines()[-1]
    match = re.fullmatch(r"prunekit train: error: rank 1 of 2 \(pid \d+\) was killed by SIGKILL; "
                         r"stopped the other ranks\. Resume with --snapshot "
                         r"(two/lenet_iter_\d+0\.solverstate) \(any number of processes\)", last)
    assert match, last
    assert "Traceback" not in run.stderr


def test_resume_a_two_rank_snapshot_in_one_process(root, single, killed) -> None:
    """The 2-rank solverstate at 10, resumed by 1 process with iter_size 2, ends where the
    single run ends."""
    solver = _solver(root, "resume1.prototxt", "resume1", 20, 2)
    proc = run_cli(["train", "--solver", solver, "--snapshot", "two/lenet_iter_10.solverstate"],
                   root, check=True)
    assert _loss_lines(proc.stderr, 20) == _loss_lines(single.stderr, 20)[5:]
    assert _max_weight_diff(root / "one" / "lenet_iter_20.caffemodel",
                            root / "resume1" / "lenet_iter_20.caffemodel") < 1e-6


def test_resume_a_one_process_snapshot_in_two_ranks(root, single) -> None:
    solver = _solver(root, "resume2.prototxt", "resume2", 20, 1)
    run_cli(["train", "--solver", solver, "--snapshot", "one/lenet_iter_10.solverstate",
             "--procs", "2"], root, check=True)
    assert _max_weight_diff(root / "one" / "lenet_iter_20.caffemodel",
                            root / "resume2" / "lenet_iter_20.caffemodel") < 1e-6


#: 25 iterations, with λ reaching its target sooner, so that conv1 and conv2 are part-way pruned.
FAST_PRUNING = {"max_iter : 10000000": "max_iter: 25", "target_reg: 0.005": "target_reg: 0.002",
                "snapshot: 50": "snapshot: 25"}


def _pruning_state(exp: Path, iteration: int) -> dict:
    return _state(exp / "weights" / f"_iter_{iteration}.solverstate")[1]["hooks"]["pruning"]


def test_reg_col_masks_are_the_same_in_two_ranks(mnist_root: Path, tmp_path_factory) -> None:
    """The Caffe_IncReg fixture solver (Reg_Col) for 25 iterations from its baseline: two
    ranks prune the same columns, with the same λ and ranks, as one process with iter_size 2."""
    if not LENET_FIXTURE.is_dir():
        pytest.skip("shared fixtures missing")
    runs = []
    for name, extra, procs in (("p1", "iter_size: 2\n", []), ("p2", "", ["--procs", "2"])):
        folder = tmp_path_factory.mktemp(name)
        (folder / "data").mkdir()
        (folder / "data" / "mnist").symlink_to(mnist_root / "data" / "mnist")
        exp = fixture_experiment(folder, LENET_FIXTURE, FAST_PRUNING, extra="random_seed: 3\n" + extra)
        proc = run_cli(["train", "--solver", "compression_experiments/lenet5/solver.prototxt",
                        "--weights", str(LENET_FIXTURE / "baseline_lenet5.caffemodel"), *procs],
                       folder, check=True)
        runs.append((exp, proc))
    (exp1, one), (exp2, two) = runs
    layers1, layers2 = _pruning_state(exp1, 25)["layers"], _pruning_state(exp2, 25)["layers"]
    pruned = [int(np.asarray(layer["col_pruned"]).sum()) for layer in layers1]
    assert pruned[0] > 0 and pruned[1] > 0, pruned  # conv1, conv2 are part-way pruned
    for a, b in zip(layers1, layers2, strict=True):
        np.testing.assert_array_equal(np.asarray(a["col_pruned"]), np.asarray(b["col_pruned"]))
        np.testing.assert_allclose(np.asarray(a["reg"]), np.asarray(b["reg"]), atol=1e-9)
        np.testing.assert_array_equal(np.asarray(a["running_rank"]), np.asarray(b["running_rank"]))
    w1, w2 = (_blobs(exp / "weights" / "_iter_25.caffemodel") for exp in (exp1, exp2))
    for name in ("conv1", "conv2"):
        zero1 = np.abs(w1[name][0].reshape(w1[name][0].shape[0], -1)).sum(0) == 0
        zero2 = np.abs(w2[name][0].reshape(w2[name][0].shape[0], -1)).sum(0) == 0
        np.testing.assert_array_equal(zero1, zero2)
    assert app_course(two.stdout) == app_course(one.stdout)  # rank 0 alone prints [app]
    assert two.stdout.count("Training starts") == 1

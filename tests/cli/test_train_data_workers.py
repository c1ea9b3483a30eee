"""``prunekit train`` on a JPEG LMDB with data worker processes: the data-wait display line,
Caffe's own lines untouched, resume exact across worker counts, Ctrl-C leaves no worker behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from cli_helpers import REPO, run_cli
from prunekit.caffe import array_to_blob, array_to_datum, write_binaryproto
from prunekit.data.lmdb_io import write_lmdb

from photo_set import photo_variants

NET = """
name: "tiny"
layer { name: "data" type: "Data" top: "data" top: "label"
  transform_param { crop_size: 24 mirror: true mean_file: "mean.binaryproto" scale: 0.0078125 }
  data_param { source: "jpeg_lmdb" batch_size: 4 } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 stride: 2 weight_filler { type: "xavier" } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip"
  inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""

SOLVER = """
net: "net.prototxt"
base_lr: 0.01
momentum: 0.9
lr_policy: "fixed"
display: 1
max_iter: {max_iter}
snapshot: 3
snapshot_prefix: "snap/tiny"
random_seed: 3
solver_mode: CPU
"""


def _setup(folder: Path, max_iter: int = 6) -> Path:
    images = [im.transpose(2, 0, 1) for im in photo_variants(10, 28, 32)]
    write_lmdb(folder / "jpeg_lmdb", [(b"%08d" % i, array_to_datum(im, i % 3, "jpg")
                                       .SerializeToString()) for i, im in enumerate(images)])
    mean = np.mean(images, axis=0).astype(np.float32)[None]
    write_binaryproto(folder / "mean.binaryproto", array_to_blob(mean))
    (folder / "net.prototxt").write_text(NET)
    (folder / "solver.prototxt").write_text(SOLVER.format(max_iter=max_iter))
    (folder / "snap").mkdir()
    return folder


def _losses_from(stderr: str, k: int) -> list[str]:
    lines = [line.split("] ", 1)[-1] for line in stderr.splitlines()]
    return [b for b in lines if (m := re.match(r"Iteration (\d+), (loss|lr) = ", b))
            and int(m.group(1)) >= k]


def test_data_wait_line_and_resume_across_worker_counts(tmp_path: Path) -> None:
    full = run_cli(["train", "--solver", "solver.prototxt", "--data-workers", "2"],
                   _setup(tmp_path / "a"), check=True)
    waits = re.findall(r"\] Iteration (\d+), data wait (\d+\.\d)% of (\d+) ms/iter\n",
                       full.stderr)
    assert [int(w[0]) for w in waits] == list(range(6)), full.stderr[-2000:]
    assert all(0.0 <= float(w[1]) <= 100.0 and int(w[2]) >= 0 for w in waits)
    # Caffe's display lines keep their form, in Caffe's order, the new line after them
    bodies = [line.split("] ", 1)[-1] for line in full.stderr.splitlines()]
    at = next(i for i, b in enumerate(bodies) if b.startswith("Iteration 2, loss = "))
    block = bodies[at:at + 4]
    assert block[1].startswith("    Train net output #0: loss = ") and block[2].startswith(
        "Iteration 2, lr = ") and block[3].startswith("Iteration 2, data wait "), block

    other = _setup(tmp_path / "b")
    for ext in ("caffemodel", "solverstate"):
        (other / "snap" / f"tiny_iter_3.{ext}").write_bytes(
            (tmp_path / "a" / "snap" / f"tiny_iter_3.{ext}").read_bytes())
    resumed = run_cli(["train", "--solver", "solver.prototxt", "--data-workers", "1",
                       "--snapshot", "snap/tiny_iter_3.solverstate"], other, check=True)
    assert _losses_from(resumed.stderr, 3) == _losses_from(full.stderr, 3)
    assert len(_losses_from(full.stderr, 3)) == 7  # loss and lr of 3, 4, 5, final loss of 6


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_ctrl_c_stops_training_and_its_workers(tmp_path: Path) -> None:
    folder = _setup(tmp_path, max_iter=100000)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "prunekit.cli", "train", "--solver",
                             "solver.prototxt", "--data-workers", "2"], cwd=folder, env=env,
                            stderr=subprocess.PIPE, text=True)
    seen = ""
    while "data wait" not in seen:
        line = proc.stderr.readline()
        assert line, seen[-2000:]
        seen += line
    workers = _children(proc.pid)
    assert len(workers) >= 2
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest[-2000:]
    assert "Optimization stopped early." in rest
    deadline = time.time() + 10
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{w}").exists() for w in workers)


def test_negative_data_workers_is_a_one_line_error(tmp_path: Path) -> None:
    proc = run_cli(["train", "--solver", "solver.prototxt", "--data-workers", "-1"], tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "--data-workers -1" in proc.stderr

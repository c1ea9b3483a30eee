#!/usr/bin/env python3
"""Share of VGG-16's training iteration spent waiting for JPEG decoding (the ImageNet issue's GPU check).

Builds a small ImageNet-style folder of real photos (random crops of scikit-learn's two sample
JPEGs, ``tests/cli/photo_set.py``), runs ``prunekit data list`` → ``data imageset --encoded``
(JPEG Datums, so the Data layer decodes every image, as a JPEG LMDB on a GPU server does) at
256x256 → ``data mean``, then trains the experiment's own ``compression_experiments/vgg16``
train_val (crop 224, mirror, mean_file) with only the sources, mean file, batch size and
iteration counts changed, and reads the training log's ``Iteration N, data wait X% of Y ms/iter``
lines. Target (issue): data wait < 5% of the iteration time at batch 32 on a GPU.

    python benchmarks/vgg16_jpeg_data_wait.py --gpu 0 --batch 32 --iterations 60 --workers 8
    python benchmarks/vgg16_jpeg_data_wait.py --batch 2 --iterations 4      # CPU smoke run

Writes benchmarks/results/<date>T<hhmm>Z_<machine>_vgg16_jpeg_data_wait_b<batch>.json/.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "cli"))

from photo_set import make_photo_folder  # noqa: E402

from prunekit.measure.machine import machine_name  # noqa: E402

WAIT = re.compile(r"Iteration (\d+), data wait ([\d.]+)% of (\d+) ms/iter")


def _cli(args: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "prunekit.cli", *args], env=env,
                          capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"prunekit {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc


def _solver_and_net(work: Path, batch: int, iterations: int, display: int) -> Path:
    """The experiment's files, sources/mean/batch/iterations replaced (each replacement checked)."""
    tv = (REPO / "compression_experiments/vgg16/train_val.prototxt").read_text()
    for old, new in [('"data/ilsvrc12/ilsvrc12_train_lmdb"', f'"{work}/train_lmdb"'),
                     ('"data/ilsvrc12/ilsvrc12_val_lmdb"', f'"{work}/train_lmdb"'),
                     ("batch_size: 16", f"batch_size: {batch}")]:
        assert old in tv, old
        tv = tv.replace(old, new)
    tv = re.sub(r'mean_file: "[^"]*"', f'mean_file: "{work}/mean.binaryproto"', tv)
    (work / "train_val.prototxt").write_text(tv)
    solver = (REPO / "compression_experiments/vgg16/solver.prototxt").read_text()
    for old, new in [('net: "compression_experiments/vgg16/train_val.prototxt"',
                      f'net: "{work}/train_val.prototxt"'),
                     ('snapshot_prefix: "compression_experiments/vgg16/weights/"',
                      f'snapshot_prefix: "{work}/snap"'),
                     ("snapshot: 1000", "snapshot: 0"), ("display: 20", f"display: {display}"),
                     ("max_iter: 10000000", f"max_iter: {iterations}"), ("iter_size: 2", "iter_size: 1"),
                     ('prune_method: "Reg_Col"', 'prune_method: "None"'),
                     ('regularization_type: "Reg_Col"', 'regularization_type: "L2"')]:
        assert old in solver, old
        solver = solver.replace(old, new)
    (work / "solver.prototxt").write_text(solver)
    return work / "solver.prototxt"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gpu", default=None)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--iterations", type=int, default=60)
    p.add_argument("--display", type=int, default=10)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--images", type=int, default=256, help="JPEGs in the photo folder")
    p.add_argument("--out", default=str(HERE / "results"))
    a = p.parse_args()
    env = dict(os.environ, PYTHONUNBUFFERED="1", PRUNEKIT_DATA_WORKERS=str(a.workers))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_photo_folder(work / "photos", classes=4, per_class=max(1, a.images // 4), seed=0)
        _cli(["data", "list", str(work / "photos"), "--out", str(work / "train.txt")], env)
        _cli(["data", "imageset", "--encoded", "--encode_type", "jpg", "--resize_height", "256",
              "--resize_width", "256", "--shuffle", f"{work}/photos/", str(work / "train.txt"),
              str(work / "train_lmdb")], env)
        _cli(["data", "mean", str(work / "train_lmdb"), str(work / "mean.binaryproto")], env)
        solver = _solver_and_net(work, a.batch, a.iterations, a.display)
        gpu = ["--gpu", a.gpu] if a.gpu is not None else []
        start = time.perf_counter()
        log = _cli(["train", "--solver", str(solver), *gpu], env).stderr
        wall = time.perf_counter() - start
    lines = [(int(i), float(s), int(ms)) for i, s, ms in WAIT.findall(log)]
    if not lines:
        raise SystemExit("no 'data wait' line in the training log")
    steady = lines[1:] or lines  # the first display window holds start-up (cuDNN autotuning, fork)
    share = sorted(s for _, s, _ in steady)[len(steady) // 2]
    ms = sorted(m for _, _, m in steady)[len(steady) // 2]
    device = torch.device(f"cuda:{a.gpu}" if a.gpu is not None else "cpu")
    machine = machine_name(device)
    stamp = time.strftime("%Y-%m-%dT%H%MZ", time.gmtime())
    command = "python benchmarks/vgg16_jpeg_data_wait.py " + " ".join(sys.argv[1:])
    verdict = "met" if share < 5.0 else "NOT met"
    row = (f"| {stamp[:10]} | {machine} | {a.batch} | {a.workers} | {ms} | {share:.1f}% | "
           f"{verdict} (< 5%) | `{command}` |")
    table = ("| date | device | batch | data workers | ms/iter (median) | data wait (median) | target "
             "| command |\n|---|---|---|---|---|---|---|---|\n" + row)
    print(table)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")
    stem = out / f"{stamp}_{slug}_vgg16_jpeg_data_wait_b{a.batch}"
    stem.with_suffix(".md").write_text(table + "\n")
    stem.with_suffix(".json").write_text(json.dumps({
        "date": stamp, "machine": machine, "torch": torch.__version__, "batch": a.batch,
        "workers": a.workers, "iterations": a.iterations, "wall_s": wall, "command": command,
        "display_lines": [{"iteration": i, "wait_pct": s, "ms_per_iter": m} for i, s, m in lines],
        "median_wait_pct": share, "median_ms_per_iter": ms, "target_met": share < 5.0}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

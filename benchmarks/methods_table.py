#!/usr/bin/env python3
"""The method zoo on equal terms: each method's solver, the same budget, one Markdown table.

For every run (an experiment folder and one of its ``solver_<method>.prototxt``; all of them
train 4,000 iterations of batch 16 from the folder's baseline on the embedded MNIST digits):

1. ``prunekit train --solver S --weights <baseline>`` with the snapshot prefix moved to a work
   folder (wall time of this step is the "train s" column; with ``--jobs N`` N trainings share
   the machine, so compare those times only within one table);
2. top-1 of the baseline and of the FINAL model (the snapshot at max_iter, never the best test)
   by ``prunekit test`` on the 1,000 test digits;
3. params kept = nonzero / all Convolution+InnerProduct weights (biases excluded, as Han et al.
   count);
4. ``prunekit compact`` of the deploy net with the final weights (conv MACs kept = conv MACs of
   the compacted net / dense, per image, ``prunekit flops``), then ``prunekit speedup`` of
   the compacted net against the masked (dense-cost) final net, both at ``--batch``, in
   interleaved rounds in one process: theoretical = MAC ratio (conv MACs, or all MACs for a net
   without convs), measured = ratio of the median forward times (ms per batch, no_grad).

    python benchmarks/methods_table.py                      # every run
    python benchmarks/methods_table.py --only lenet5/l1_row lenet300100/mag_weight

Needs the baselines (``sh compression_experiments/<exp>/train.sh`` makes them). Writes
benchmarks/results/<date>T<hhmm>Z_<machine>_methods_table.json/.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

from prunekit import caffe  # noqa: E402
from prunekit.measure.machine import machine_name  # noqa: E402

RUNS = {  # name -> (experiment folder, solver, baseline caffemodel[, train_val, deploy])
    "lenet300100/mag_weight": ("lenet300100", "solver_mag_weight.prototxt", "baseline_lenet300100.caffemodel"),
    "lenet5/mag_weight": ("lenet5", "solver_mag_weight.prototxt", "baseline_lenet5.caffemodel"),
    "lenet5/l1_row": ("lenet5", "solver_l1_row.prototxt", "baseline_lenet5.caffemodel"),
    "lenet5/fpgm_row": ("lenet5", "solver_fpgm_row.prototxt", "baseline_lenet5.caffemodel"),
    "lenet5/sfp_row": ("lenet5", "solver_sfp_row.prototxt", "baseline_lenet5.caffemodel"),
    "lenet5/gl_shape": ("lenet5", "solver_gl_shape.prototxt", "baseline_lenet5.caffemodel",
                        "train_val_shape.prototxt", "deploy.prototxt"),
    "lenet5/reg_shape": ("lenet5", "solver_reg_shape.prototxt", "baseline_lenet5.caffemodel",
                         "train_val_shape.prototxt", "deploy.prototxt"),
    "lenet5/slim_channel": ("lenet5", "solver_slim_channel.prototxt", "baseline_lenet5_bn.caffemodel",
                            "train_val_bn.prototxt", "deploy_bn.prototxt"),
}


def nets_of(name: str) -> tuple[str, str]:
    """(train_val, deploy) prototxt names of a run."""
    run = RUNS[name]
    return (run[3], run[4]) if len(run) > 3 else ("train_val.prototxt", "deploy.prototxt")
PRUNED_TYPES = ("Convolution", "InnerProduct")


#: Environment of the trainings: with --jobs J side by side, each gets cores/J OpenMP threads
#: (set in main), since oversubscribed threads spin and slow every run many times over.
TRAIN_ENV: dict[str, str] | None = None


def cli(args: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "prunekit.cli", *args], cwd=REPO,
                          capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"prunekit {shlex.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc


def accuracy(model: Path, weights: Path) -> float:
    out = cli(["test", "--model", str(model), "--weights", str(weights), "--iterations", "10"]).stderr
    return float(re.findall(r"\] accuracy = ([0-9.]+)", out)[-1])


def weights_kept(weights: Path) -> tuple[int, int]:
    """(nonzero, all) weights (blob 0) of the Convolution/InnerProduct layers."""
    net = caffe.read_caffemodel(weights)
    nonzero = total = 0
    for layer in net.layer:
        if layer.type in PRUNED_TYPES and layer.blobs:
            w = caffe.blob_to_array(layer.blobs[0])
            nonzero, total = nonzero + int((w != 0).sum()), total + int(w.size)
    return nonzero, total


def macs(model: Path, weights: Path) -> dict:
    """Dense and left (zero structure skipped) MACs, conv and all, per image."""
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cli(["flops", "--model", str(model), "--weights", str(weights), "--json", f.name])
        layers = json.loads(Path(f.name).read_text())["layers"]
    conv = [l for l in layers if l["type"] == "Convolution"]
    return {"conv": sum(l["macs"] for l in conv), "conv_left": sum(l["macs_left"] for l in conv),
            "all": sum(l["macs"] for l in layers), "all_left": sum(l["macs_left"] for l in layers)}


def train(exp: Path, solver: str, baseline: Path, work: Path, name: str,
          reuse: bool = False) -> tuple[Path, float]:
    """Train with the snapshot prefix in ``work``; (final caffemodel, wall seconds). With
    ``reuse``, a final model already in ``work`` (and its recorded time) is taken instead."""
    param = caffe.read_solver_prototxt(exp / solver)
    param.snapshot_prefix = str(work / name.replace("/", "_"))
    final = Path(f"{param.snapshot_prefix}_iter_{param.max_iter}.caffemodel")
    seconds_file = work / f"{name.replace('/', '_')}.seconds"
    if reuse and final.is_file() and seconds_file.is_file():
        return final, float(seconds_file.read_text())
    path = work / f"{name.replace('/', '_')}_solver.prototxt"
    caffe.write_prototxt(path, param)
    start = time.perf_counter()
    proc = cli(["train", "--solver", str(path), "--weights", str(baseline)], env=TRAIN_ENV)
    seconds = time.perf_counter() - start
    (work / f"{name.replace('/', '_')}.log").write_text(proc.stderr + proc.stdout)
    seconds_file.write_text(f"{seconds}\n")
    return final, seconds


def speedup(deploy: Path, final: Path, work: Path, name: str, args) -> dict:
    stem = work / f"{name.replace('/', '_')}_small"
    small_model, small_weights = stem.with_suffix(".prototxt"), stem.with_suffix(".caffemodel")
    cli(["compact", "--model", str(deploy), "--weights", str(final), "--out-model",
         str(small_model), "--out-weights", str(small_weights)])
    out = stem.with_suffix(".speedup.json")
    cli(["speedup", "--model", str(small_model), "--weights", str(small_weights), "--vs-model",
         str(deploy), "--vs-weights", str(final), "--batch", str(args.batch), "--rounds",
         str(args.rounds), "--iterations", str(args.iterations), "--json", str(out)])
    result = json.loads(out.read_text())
    small = macs(small_model, small_weights)
    dense = macs(deploy, final)
    key = "conv" if dense["conv"] else "all"
    return {"theoretical": dense[key] / small[key], "theoretical_macs": key,
            "conv_macs_kept": small["conv"] / dense["conv"] if dense["conv"] else None,
            "measured": result["measured_forward"], "forward_ms": result["forward_ms"],
            "vs_forward_ms": result["vs_forward_ms"]}


def baseline_of(name: str) -> Path:
    exp_name, _, baseline_name = RUNS[name][:3]
    baseline = REPO / "compression_experiments" / exp_name / "weights" / baseline_name
    if not baseline.is_file():
        raise SystemExit(f"{baseline} is missing: run sh compression_experiments/{exp_name}/train.sh"
                         " (baseline_lenet5_bn: see baseline_bn_solver.prototxt)")
    return baseline


def train_run(name: str, work: Path, reuse: bool) -> tuple[Path, float]:
    exp_name, solver, _ = RUNS[name][:3]
    return train(REPO / "compression_experiments" / exp_name, solver, baseline_of(name), work,
                 name, reuse)


def measure_run(name: str, final: Path, seconds: float, work: Path, args) -> dict:
    exp_name, solver, _ = RUNS[name][:3]
    exp = REPO / "compression_experiments" / exp_name
    baseline = baseline_of(name)
    train_val, deploy = nets_of(name)
    nonzero, total = weights_kept(final)
    row = {"run": name, "method": caffe.read_solver_prototxt(exp / solver).prune_method,
           "solver": f"compression_experiments/{exp_name}/{solver}",
           "params_kept": nonzero / total, "params_nonzero": nonzero, "params_total": total,
           "top1_before": accuracy(exp / train_val, baseline),
           "top1_after": accuracy(exp / train_val, final), "train_s": seconds}
    row.update(speedup(exp / deploy, final, work, name, args))
    return row


def table(rows: list[dict]) -> list[str]:
    lines = ["| run | method | params kept | conv MACs kept | theoretical speedup | measured CPU "
             "speedup (compacted) | top-1 before | top-1 after (final model) | train s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        conv = "n/a (no conv)" if r["conv_macs_kept"] is None else f"{100 * r['conv_macs_kept']:.1f}%"
        lines.append(
            f"| {r['run']} | {r['method']} | {100 * r['params_kept']:.2f}% "
            f"({r['params_nonzero']:,}/{r['params_total']:,}) | {conv} | "
            f"{r['theoretical']:.2f}x ({r['theoretical_macs']} MACs) | {r['measured']:.2f}x "
            f"({r['vs_forward_ms']:.2f} -> {r['forward_ms']:.2f} ms) | {100 * r['top1_before']:.1f}% | "
            f"{100 * r['top1_after']:.1f}% | {r['train_s']:.0f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=sorted(RUNS), help="runs to do (default: all)")
    ap.add_argument("--batch", type=int, default=64, help="batch for the timing (default 64)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=1,
                    help="trainings run side by side (the timing runs one at a time after them)")
    ap.add_argument("--reuse", action="store_true",
                    help="take final models already trained in --work (after a failed timing)")
    ap.add_argument("--work", type=Path, help="folder for models and logs (default: a temp dir)")
    args = ap.parse_args(argv)
    if not (REPO / "data/mnist/mnist_test_lmdb").is_dir():
        cli(["data", "mnist", "--out", "data/mnist"])
    work = args.work or Path(tempfile.mkdtemp(prefix="methods_table_"))
    work.mkdir(parents=True, exist_ok=True)
    names = args.only or list(RUNS)
    global TRAIN_ENV
    if args.jobs > 1:
        threads = max(1, (os.cpu_count() or 1) // args.jobs)
        TRAIN_ENV = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    for name in names:
        baseline_of(name)
    print(f"training {', '.join(names)} ({args.jobs} at a time; work folder {work}) ...", flush=True)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        trained = list(pool.map(lambda n: train_run(n, work, args.reuse), names))
    rows = []
    for name, (final, seconds) in zip(names, trained):
        rows.append(measure_run(name, final, seconds, work, args))
        print("\n".join(table(rows[-1:])[2:]), flush=True)
    stamp = datetime.now(timezone.utc)
    machine = machine_name(torch.device("cpu"))
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")
    out = REPO / "benchmarks" / "results" / f"{stamp:%Y-%m-%dT%H%MZ}_{slug}_methods_table"
    command = "python benchmarks/methods_table.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    record = {"date": stamp.isoformat(timespec="seconds"), "machine": machine,
              "torch": torch.__version__, "command": command.strip(), "batch": args.batch,
              "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    head = [f"Method zoo, {stamp:%Y-%m-%d %H:%M} UTC, {machine}, torch {torch.__version__}; "
            f"`{command.strip()}`. Timing: forward, batch {args.batch}, median of {args.rounds} "
            "interleaved rounds, compacted vs masked final model. Accuracy: 1,000 embedded test "
            "digits, final model.", ""]
    out.with_suffix(".md").write_text("\n".join(head + table(rows)) + "\n")
    print("\n".join(table(rows)))
    print(f"wrote {out}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

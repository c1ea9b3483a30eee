#!/usr/bin/env python3
"""Planned per-layer ratios vs uniform ratios at the same 4x conv-MAC target, LeNet-5.

For one method (``--method L1_Row`` or ``Reg_Col``), in one run:

1. ``prunekit sensitivity`` of the baseline (compression_experiments/lenet5/weights/
   baseline_lenet5.caffemodel) with the method's unit (Row / Col), l1, ratios 0.05…0.95;
2. ``prunekit plan --by macs --speedup 4`` writes the planned train_val; the uniform arm gets
   the smallest ratio, the same in conv1 and conv2, whose whole pruned groups reach 4x under the
   same cost model (:func:`uniform_ratio`; it is also what the conv-MAC count below measures);
3. each arm trains 3 times (``random_seed`` 1, 2, 3) with the method's solver
   (solver_l1_row.prototxt / solver.prototxt) shortened by ``--scale`` — every iteration count
   (max_iter, intervals, step values) multiplied by the same factor for both arms, so both get
   the same pruning + retraining budget — two trainings side by side, one OpenMP thread each.
   Both arms start from the same baseline weights and read the same fixed-order LMDB, so without
   more the seed would change nothing (the first run of this script gave three identical runs per
   arm). Each arm's TRAIN Data layer therefore gets ``rand_skip`` = the number of records in its
   LMDB: Caffe's seed-determined skip of [0, rand_skip) records at the start, so seed s starts
   both arms at the same record and different seeds see the digits in different rotations;
4. top-1 of the result (L1_Row: the final snapshot; Reg_Col: the best retrain model the schedule
   outputs, "Pruning done. Best model") on the 1,000 embedded test digits (``prunekit test``),
   and its conv-MAC speedup (``prunekit flops --weights``: zero rows/columns skipped).

    python benchmarks/plan_vs_uniform.py --method L1_Row --scale 0.4
    python benchmarks/plan_vs_uniform.py --method Reg_Col --scale 1

Writes benchmarks/results/<date>T<hhmm>Z_<machine>_plan_vs_uniform_<method>.json/.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import lmdb
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import methods_table as mt  # noqa: E402
from prunekit import caffe  # noqa: E402
from prunekit.analysis.planner import kept_fraction  # noqa: E402
from prunekit.measure.machine import machine_name  # noqa: E402

EXP = REPO / "compression_experiments" / "lenet5"
BASELINE = EXP / "weights" / "baseline_lenet5.caffemodel"
METHODS = {  # method -> (unit, solver, train_val)
    "L1_Row": ("Row", "solver_l1_row.prototxt", "train_val_filters.prototxt"),
    "Reg_Col": ("Col", "solver.prototxt", "train_val.prototxt"),
}
SCALED = ("max_iter", "test_interval", "prune_interval", "losseval_interval",
          "retrain_test_interval", "display")
SEEDS = (1, 2, 3)
TARGET = 4.0


def solver_for(method: str, net: Path, prefix: Path, seed: int, scale: float) -> Path:
    """The method's solver with ``net``, the snapshot prefix, the seed and every iteration count
    times ``scale`` (the same for both arms)."""
    param = caffe.read_solver_prototxt(EXP / METHODS[method][1])
    param.net = str(net)
    param.snapshot_prefix = str(prefix)
    param.random_seed = seed
    for field in SCALED:
        if param.HasField(field) and getattr(param, field) < 1000000:
            setattr(param, field, max(1, round(getattr(param, field) * scale)))
    steps = [max(1, round(v * scale)) for v in param.stepvalue]
    del param.stepvalue[:]
    param.stepvalue.extend(steps)
    path = prefix.with_name(prefix.name + "_solver.prototxt")
    caffe.write_prototxt(path, param)
    return path


def uniform_ratio(sens: dict) -> float:
    """The smallest ratio (0.01 steps), the same in every conv, whose whole pruned groups keep
    at most 1/TARGET of the conv MACs (0.75 alone falls short: ⌊0.75·20⌋ = 15 of 20 filters)."""
    curves, total = sens["curves"], sens["total_conv_macs"]
    for step in range(1, 100):
        r = step / 100
        if sum(c["macs"] * kept_fraction(c, r) for c in curves) <= total / TARGET + 1e-9:
            return r
    raise SystemExit("no uniform ratio reaches the target")


def uniform_prototxt(method: str, ratio: float, out: Path) -> None:
    param = caffe.read_net_prototxt(EXP / METHODS[method][2])
    for layer in param.layer:
        if layer.type == "Convolution":
            layer.prune_param.prune_ratio = ratio
    caffe.write_prototxt(out, param)


def set_rand_skip(path: Path) -> int:
    """Give the TRAIN-phase Data layer of ``path`` a ``rand_skip`` of its LMDB's record count
    (relative sources are relative to the repository root, where the trainings run)."""
    param = caffe.read_net_prototxt(path)
    layers = [layer for layer in param.layer if layer.type == "Data"
              and any(rule.phase == 0 for rule in layer.include)]
    if len(layers) != 1:
        raise SystemExit(f"{path}: expected one TRAIN Data layer, found {len(layers)}")
    source = REPO / layers[0].data_param.source
    with lmdb.open(str(source), readonly=True, lock=False) as env:
        records = env.stat()["entries"]
    layers[0].data_param.rand_skip = records
    caffe.write_prototxt(path, param)
    return records


def train_one(method: str, arm: str, net: Path, seed: int, work: Path, scale: float) -> dict:
    prefix = work / f"{arm}_seed{seed}"
    solver = solver_for(method, net, prefix, seed, scale)
    proc = mt.cli(["train", "--solver", str(solver), "--weights", str(BASELINE)], env=mt.TRAIN_ENV)
    (work / f"{arm}_seed{seed}.log").write_text(proc.stderr + proc.stdout)
    best = re.findall(r"Pruning done\. Best model: (\S+)", proc.stderr)
    if best:
        final = Path(best[-1])
    else:
        final = Path(f"{prefix}_iter_{caffe.read_solver_prototxt(solver).max_iter}.caffemodel")
    macs = mt.macs(net, final)
    return {"arm": arm, "seed": seed, "weights": str(final), "top1": mt.accuracy(net, final),
            "conv_speedup": macs["conv"] / macs["conv_left"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", choices=sorted(METHODS), required=True)
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply every iteration count of the solver by this (both arms)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--work", type=Path)
    args = ap.parse_args(argv)
    if not BASELINE.is_file():
        raise SystemExit(f"{BASELINE} is missing: run sh compression_experiments/lenet5/train.sh")
    work = args.work or Path(tempfile.mkdtemp(prefix="plan_vs_uniform_"))
    work.mkdir(parents=True, exist_ok=True)
    unit, _, train_val = METHODS[args.method]
    sens = work / "sensitivity.json"
    mt.cli(["sensitivity", "--model", str(EXP / train_val), "--weights", str(BASELINE), "--unit",
            unit, "--ratios", "0.05:0.95:0.05", "--out", str(sens), "--timing-iterations", "0"])
    planned = work / "planned.prototxt"
    plan_out = mt.cli(["plan", "--sensitivity", str(sens), "--speedup", str(TARGET), "--model",
                       str(EXP / train_val), "--out", str(planned), "--json",
                       str(work / "plan.json")]).stdout
    print(plan_out, flush=True)
    uniform = uniform_ratio(json.loads(sens.read_text()))
    uniform_prototxt(args.method, uniform, work / "uniform.prototxt")
    for arm_net in (planned, work / "uniform.prototxt"):
        skip = set_rand_skip(arm_net)
    mt.TRAIN_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
    jobs = [(arm, net, seed) for seed in SEEDS
            for arm, net in (("planned", planned), ("uniform", work / "uniform.prototxt"))]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(lambda j: train_one(args.method, j[0], j[1], j[2], work, args.scale),
                             jobs))
    write_results(args, argv, runs, json.loads((work / "plan.json").read_text()),
                  mt.accuracy(EXP / train_val, BASELINE), uniform, skip)
    return 0


def summary(runs: list[dict], arm: str) -> dict:
    mine = [r for r in runs if r["arm"] == arm]
    tops = [r["top1"] for r in mine]
    return {"arm": arm, "top1": tops, "mean_top1": statistics.mean(tops),
            "stdev_top1": statistics.stdev(tops) if len(tops) > 1 else 0.0,
            "conv_speedup": [r["conv_speedup"] for r in mine]}


def write_results(args, argv, runs: list[dict], plan: dict, baseline_top1: float,
                  uniform: float, rand_skip: int) -> None:
    stamp = datetime.now(timezone.utc)
    machine = machine_name(torch.device("cpu"))
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")
    out = REPO / "benchmarks" / "results" / f"{stamp:%Y-%m-%dT%H%MZ}_{slug}_plan_vs_uniform_{args.method}"
    command = "python benchmarks/plan_vs_uniform.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    arms = [summary(runs, "planned"), summary(runs, "uniform")]
    ratios = ", ".join(f"{i['name']} {i['ratio']:.2f}" for i in plan["items"])
    record = {"date": stamp.isoformat(timespec="seconds"), "machine": machine,
              "torch": torch.__version__, "command": command.strip(), "method": args.method,
              "scale": args.scale, "target_conv_speedup": TARGET, "baseline_top1": baseline_top1,
              "planned_ratios": {i["name"]: i["ratio"] for i in plan["items"]},
              "uniform_ratio": uniform, "rand_skip": rand_skip, "arms": arms, "runs": runs}
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    lines = [f"Planned vs uniform ratios, {args.method} on LeNet-5, {TARGET:g}x conv-MAC target, "
             f"{stamp:%Y-%m-%d %H:%M} UTC, {machine}, torch {torch.__version__}; `{command.strip()}`. "
             f"Solver iteration counts x{args.scale:g} for both arms; seeds {list(SEEDS)} (each also "
             f"sets where training starts: rand_skip {rand_skip}); top-1 on "
             f"the 1,000 embedded test digits (baseline {baseline_top1:.4f}).", "",
             "| arm | ratios | top-1 per seed | mean top-1 | conv-MAC speedup per seed |",
             "|---|---|---|---|---|"]
    for arm in arms:
        r = ratios if arm["arm"] == "planned" else f"conv1 {uniform:.2f}, conv2 {uniform:.2f}"
        lines.append(f"| {arm['arm']} | {r} | {', '.join(f'{t:.3f}' for t in arm['top1'])} | "
                     f"{arm['mean_top1']:.4f} | "
                     f"{', '.join(f'{s:.2f}' for s in arm['conv_speedup'])} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}.json and .md")


if __name__ == "__main__":
    sys.exit(main())

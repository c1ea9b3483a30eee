#!/usr/bin/env python3
"""Per-iteration cost of IncReg pruning vs. plain SGD on LeNet-5, both in one process.

  A  plain:   ``Solver.step`` on compression_experiments/lenet5/train_val.prototxt (TRAIN net),
              the fixture's SGD settings (base_lr 0.0005, momentum 0.9, weight_decay 0.00025),
              prune_method None;
  B  pruning: the same solver and net (same initial weights, same batches) with the IncReg hook
              (``--method``, default Reg_Col as in the Caffe_IncReg fixture) in its 'prune' state:
              every iteration it checks the stage, applies masks, ranks the groups of conv1/conv2
              (their prune_param: 0.9), updates every λ and adds λ⊙w to the gradients.
              ``target_reg`` is huge (the effective target is capped at target_reg_cap = 10, i.e.
              40,000 iterations at AA = 0.00025 per iteration), so no group is pruned and no layer
              finishes during the timed window: the script checks that afterwards.
  C  masked:  B with groups already pruned (``--pruned-fraction``, default 0.5, of each prune
              layer's target: the groups with the smallest L1 norm, marked through IncReg's own
              path, so masks, zeroed weights, gradient masks and neighbour propagation are live),
              still in 'prune' with the rest of the groups being regularised: the regime most of
              a pruning run spends its time in. The script checks afterwards that exactly those
              groups stayed pruned and no layer finished.

Data (``--data``): ``lmdb`` reads data/mnist/mnist_train_lmdb (make it with
``prunekit data mnist --out data/mnist``), as the experiment does; ``input`` replaces the Data
layer by an Input layer holding one fixed batch (pure compute, no decoding: the stricter ratio);
``auto`` (default) is lmdb when data/mnist/mnist_train_lmdb exists, else input. Both sides read
their own copy of the same batches.

An iteration is one full ``Solver.step(1)``: forward, backward, hooks, update (no test, no
snapshot, no display). Warm-up iterations are not timed; then ``--rounds`` rounds of
``--iterations`` iterations per side, the sides alternating (A B, B A, ...), and the table shows
medians of ms per iteration, overhead = B/A − 1 (before the first pruning) and masked overhead
= C/A − 1 (while groups are pruned; C runs in the same alternating rounds). The targets (issue): overhead ≤ 5 % on a CPU
for LeNet-5; ≤ 3 % on a GPU for VGG-16 at batch 32 (``--model vgg16 --gpu 0 --batch 32``: its
train_val with the Data layer replaced by an Input layer of random 3x224x224 images; the prune
layers are those with a prune_param, conv1_2 … conv5_3).

``--breakdown`` then times each hook method of B (wrapped, not cProfile: no profiler overhead);
``--profile`` runs B under cProfile and prints the functions with the most own time
(ms per iteration, inflated by the profiler for Python-heavy code).

    python benchmarks/prune_overhead.py
    python benchmarks/prune_overhead.py --data input --breakdown --profile
    python benchmarks/prune_overhead.py --model vgg16 --gpu 0 --batch 32 --warmup 10 --iterations 20

Writes benchmarks/results/<date>T<hhmm>Z_<machine>_prune_overhead_[vgg16_]<method>_<data>_b<batch>.json
and a .md with the same stem (one Markdown table line, with the command), and prints the table.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import platform
import pstats
import re
import shlex
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
NETS = {"lenet5": REPO / "compression_experiments" / "lenet5" / "train_val.prototxt",
        "vgg16": REPO / "compression_experiments" / "vgg16" / "train_val.prototxt"}
#: Input-layer image shape (channels, height, width) replacing each model's TRAIN Data layer.
IMAGE = {"lenet5": (1, 28, 28), "vgg16": (3, 224, 224)}
LMDB = REPO / "data" / "mnist" / "mnist_train_lmdb"

from prunekit import caffe  # noqa: E402
from prunekit.measure.machine import machine_name  # noqa: E402
from prunekit.net.batch_size import with_batch_size  # noqa: E402
from prunekit.net.graph import Net  # noqa: E402
from prunekit.net.layers.base import TRAIN  # noqa: E402
from prunekit.prune.config import PruneConfig  # noqa: E402
from prunekit.prune.layer_state import NEVER  # noqa: E402
from prunekit.prune.registry import make_method  # noqa: E402
from prunekit.solver.solver import Solver  # noqa: E402

SOLVER = """
base_lr: 0.0005
momentum: 0.9
weight_decay: 0.00025
lr_policy: "fixed"
display: 0
max_iter: 100000000
snapshot: 0
test_interval: 0
random_seed: {seed}
solver_mode: CPU
"""
PRUNING = """
prune_method: "{method}"
AA: 0.00025
target_reg: 1000000
iter_size_prune: 1
acc_borderline: -1
losseval_interval: 1000
retrain_test_interval: 500
"""
HOOKS = ("before_forward", "after_backward", "before_update", "after_update")


# ---------------------------------------------------------------------------- the two solvers
def net_param(data: str, batch: int | None, model: str = "lenet5"):
    """The model's TRAIN net; with ``data == "input"`` its Data layer becomes an Input layer
    (one fixed batch of ``IMAGE[model]`` images: VGG-16 has no ImageNet here)."""
    param = caffe.read_net_prototxt(str(NETS[model]))
    if data == "input":
        for layer in param.layer:
            if layer.type == "Data" and not any(r.phase == 1 for r in layer.include):
                size = layer.data_param.batch_size
                layer.type = "Input"
                layer.ClearField("data_param")
                layer.ClearField("transform_param")
                layer.input_param.shape.add().dim.extend([size, *IMAGE[model]])
                layer.input_param.shape.add().dim.extend([size])
    return with_batch_size(param, batch) if batch else param


def fill_zero_weights(net: Net, seed: int) -> None:
    """He-normal weights for Convolution/InnerProduct layers that start all zero: a train_val
    meant for --weights (VGG-16's) has no fillers, Caffe's default is constant 0, and IncReg
    would rebuild its masks from those zeros and start with everything pruned."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for entry, module in net.named_layers():
            w = getattr(module, "weight", None)
            if entry.type in ("Convolution", "InnerProduct") and w is not None and not w.any():
                std = math.sqrt(2.0 / w[0].numel())
                w.copy_((torch.randn(w.shape, generator=g) * std).to(w.device))


def build(param_net, data: str, method: str | None, seed: int, prefix: str,
          app_out=None, device: torch.device = torch.device("cpu")) -> Solver:
    text = SOLVER.format(seed=seed) + (PRUNING.format(method=method) if method else "")
    param = caffe.parse_solver_text(text)
    torch.manual_seed(seed)  # same initial weights on both sides
    net = Net(param_net, TRAIN, source="<prune_overhead net>")
    net.set_seed(seed)
    net.place(device)
    fill_zero_weights(net, seed)
    if data == "input":
        name = next(layer.name for layer in param_net.layer if layer.type == "Input")
        shapes = net.layer(name).top_shapes()
        g = torch.Generator().manual_seed(seed)
        net.layer(name).set_inputs([torch.rand(shapes[0], generator=g).to(device),
                                    torch.randint(0, 10, shapes[1], generator=g).float()
                                    .to(device)])
    solver = Solver(param, net, [], snapshot_prefix=prefix, seed=seed)
    if method:
        config = PruneConfig.from_solver(param, "<prune_overhead solver>")
        solver.hooks.append(make_method(config, solver, param_net, out=app_out))
    for hook in solver.hooks:  # what Solver.solve does first (IncReg writes its _stage0 snapshot)
        hook.on_start(solver)
    return solver


def time_steps(solver: Solver, iterations: int) -> float:
    """Mean ms per ``Solver.step`` iteration (a GPU is synchronised at both ends)."""
    sync = torch.cuda.synchronize if solver.net.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    solver.step(iterations)
    sync()
    return (time.perf_counter() - start) * 1000.0 / iterations


def pruned_groups(solver: Solver) -> dict[str, int]:
    """Pruned columns + rows of every layer the method watches."""
    return {l.name: int(l.col_pruned.sum()) + int(l.row_pruned.sum())
            for l in solver.hooks[0].layers}


def prune_smallest(solver: Solver, fraction: float) -> dict[str, int]:
    """Side C's setup: in each prune layer, mark pruned the ``fraction`` × its prune_ratio of its
    groups with the smallest L1 norm, through IncReg's own path for crossers (mask, zeroed
    weights, propagation queued for the next iteration). Returns how many each layer got."""
    method = solver.hooks[0]
    marked = {}
    for layer in method.layers:
        if layer.prune_ratio <= 0:
            continue
        n = layer.num_groups(method.unit)
        k = int(round(fraction * layer.prune_ratio * n))
        scores = np.asarray(method._group_scores(layer.weight.detach()), dtype=np.float64)
        newly = np.zeros(n, dtype=bool)
        newly[np.argsort(scores, kind="stable")[:k]] = True
        method._pruned_now(layer, newly)
        marked[layer.name] = k
    return marked


def check_still_pruning(solver: Solver, expected: dict[str, int] | None = None,
                        side: str = "B") -> dict:
    """The side must have stayed in 'prune' with no layer finished and exactly the ``expected``
    groups pruned (None: nothing pruned, side B)."""
    method = solver.hooks[0]
    state = method.schedule.state
    layers = method.layers
    pruned = pruned_groups(solver)
    finished = [l.name for l in layers if l.iter_prune_finished != NEVER and l.prune_ratio > 0]
    max_reg = max(float(l.reg.max()) for l in layers if l.reg is not None and l.prune_ratio > 0)
    wrong = any(pruned.values()) if expected is None else pruned != expected
    if state != "prune" or wrong or finished:
        raise SystemExit(f"{side} left its regime during timing: state {state}, pruned "
                         f"{pruned} (expected {expected or 'none'}), finished {finished}")
    return {"state": state, "groups_pruned": pruned, "max_reg": max_reg,
            "target_reg_eff": method.target_eff,
            "prune_layers": [l.name for l in method.layers if l.prune_ratio > 0]}


# ---------------------------------------------------------------------------- breakdown
def _wrap(owner, name: str, label: str, spent: dict, undo: list) -> None:
    """Replace ``owner.name`` by a timed wrapper adding to ``spent[label]``; ``undo`` restores."""
    inner = getattr(owner, name)
    had_own = name in vars(owner)

    def timed(*a, **k):
        t = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            spent[label] += time.perf_counter() - t

    setattr(owner, name, timed)
    spent.setdefault(label, 0.0)  # keeps the registration order for the table
    undo.append(lambda: setattr(owner, name, inner) if had_own else delattr(owner, name))


def hook_breakdown(solver: Solver, iterations: int) -> dict:
    """ms per iteration of B spent in each hook method and in the main calls inside them
    (indented = included in the line above it; ``pruned_ratio`` is called from several hooks)."""
    from prunekit.prune import app_log, groups
    from prunekit.prune.increg import hook as increg, host as increg_host
    from prunekit.prune.layer_state import PrunedLayer

    method = solver.hooks[0]
    spent: dict[str, float] = defaultdict(float)
    undo: list = []
    scores = "column_l1" if method.unit == "Col" else "row_l1"
    _wrap(method, "before_forward", "hook before_forward", spent, undo)
    _wrap(method.propagator, "apply_pending", "  propagator.apply_pending", spent, undo)
    _wrap(method, "_check_finished", "  _check_finished (progress, ratios)", spent, undo)
    _wrap(method, "after_backward", "hook after_backward (grad masks)", spent, undo)
    _wrap(method, "before_update", "hook before_update", spent, undo)
    _wrap(method, "_regularise_all", "  _regularise_all (all pruned layers)", spent, undo)
    _wrap(increg, "columns_to_prune", "    columns_to_prune", spent, undo)
    _wrap(method, "_host_step", "    _host_step (CPU Col layers: one call each)", spent, undo)
    _wrap(increg_host, "col_step", f"      increg_host.col_step ({increg_host.BACKEND})", spent,
          undo)
    _wrap(method, "_group_scores", "    _group_scores (other layers: L1, copy to host)", spent, undo)
    _wrap(groups, scores, f"      groups.{scores}", spent, undo)
    _wrap(increg, "increg_step", "    increg_step (NumPy, on the host)", spent, undo)
    _wrap(method, "_add_reg_grad", "    _add_reg_grad (λ⊙w into the grad)", spent, undo)
    _wrap(app_log, "emit", "    app_log.emit ([app] lines)", spent, undo)
    _wrap(method, "after_update", "hook after_update", spent, undo)
    _wrap(PrunedLayer, "apply_mask_", "  PrunedLayer.apply_mask_", spent, undo)
    _wrap(method.schedule, "after_update", "  schedule.after_update", spent, undo)
    _wrap(PrunedLayer, "pruned_ratio", "PrunedLayer.pruned_ratio (in any hook)", spent, undo)
    try:
        total = time_steps(solver, iterations)
    finally:
        for restore in reversed(undo):
            restore()
    out = {name: spent[name] * 1000.0 / iterations for name in spent}
    out["B step (total)"] = total
    return out


def profile(solver: Solver, iterations: int, top: int) -> tuple[list[dict], str]:
    prof = cProfile.Profile()
    prof.enable()
    solver.step(iterations)
    prof.disable()
    stats = pstats.Stats(prof)
    rows = []
    for (file, line, func), (cc, nc, tt, ct, _) in stats.stats.items():
        where = re.sub(r".*/site-packages/", "", file)
        where = re.sub(r".*/src/prunekit/", "prunekit/", where)
        rows.append({"function": f"{where}:{line}({func})", "calls_per_iter": nc / iterations,
                     "own_ms_per_iter": tt * 1000.0 / iterations,
                     "cum_ms_per_iter": ct * 1000.0 / iterations})
    rows.sort(key=lambda r: -r["own_ms_per_iter"])
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(r"prunekit/prune", 25)
    return rows[:top], buf.getvalue()


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=sorted(NETS), default="lenet5",
                    help="lenet5 (default) or vgg16 (its train_val with an Input layer)")
    ap.add_argument("--gpu", default=None, help="GPU id (default: CPU)")
    ap.add_argument("--method", choices=("Reg_Col", "Reg_Row"), default="Reg_Col")
    ap.add_argument("--data", choices=("auto", "lmdb", "input"), default="auto")
    ap.add_argument("--batch", type=int, default=None,
                    help="batch size (default: the train_val's, 16)")
    ap.add_argument("--iterations", type=int, default=50, help="timed iterations per round/side")
    ap.add_argument("--rounds", type=int, default=9, help="alternating rounds (medians)")
    ap.add_argument("--warmup", type=int, default=30, help="untimed iterations per side first")
    ap.add_argument("--breakdown", action="store_true", help="time B's hook methods afterwards")
    ap.add_argument("--profile", action="store_true", help="cProfile B afterwards")
    ap.add_argument("--profile-iterations", type=int, default=300)
    ap.add_argument("--pruned-fraction", type=float, default=0.5,
                    help="side C: fraction of each prune layer's target pruned before timing")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(RESULTS), help="results folder")
    args = ap.parse_args(argv)
    command = "python benchmarks/prune_overhead.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))

    data = args.data if args.model == "lenet5" else "input"
    device = torch.device(f"cuda:{args.gpu}" if args.gpu is not None else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if data == "auto":
        data = "lmdb" if LMDB.is_dir() else "input"
    if data == "lmdb" and not LMDB.is_dir():
        raise SystemExit(f"{LMDB} not found: run `prunekit data mnist --out data/mnist` from the "
                         "repository root, or use --data input")
    if data == "lmdb" and Path.cwd().resolve() != REPO:
        raise SystemExit(f"run from the repository root ({REPO}): the net reads data/mnist/...")
    param_net = net_param(data, args.batch, args.model)
    snapshots = tempfile.TemporaryDirectory(prefix="prune_overhead_")
    plain = build(param_net, data, None, args.seed, f"{snapshots.name}/plain", device=device)
    # the [app] log goes to a real file, as `prunekit train > log` would write it
    app_path = Path(snapshots.name) / "app.log"
    app_out = app_path.open("w")
    pruning = build(param_net, data, args.method, args.seed, f"{snapshots.name}/prune", app_out,
                    device)
    masked = build(param_net, data, args.method, args.seed, f"{snapshots.name}/masked", app_out,
                   device)
    batch = plain.net.blob_shapes["data"][0]
    net_file = NETS[args.model].relative_to(REPO)
    print(f"{args.model} ({net_file}) on {device}, data: {data}, batch {batch}, {args.method} on "
          f"{pruning.hooks[0].schedule.state!r} state; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads", flush=True)

    time_steps(plain, args.warmup)
    time_steps(pruning, args.warmup)
    time_steps(masked, args.warmup)
    marked = prune_smallest(masked, args.pruned_fraction)
    time_steps(masked, args.warmup)                # propagation lands, then steady state
    masked_groups = pruned_groups(masked)
    print(f"C: pruned {marked} groups ({args.pruned_fraction:g} of each target), "
          f"{masked_groups} after propagation", flush=True)
    sides = {"A": (plain, []), "B": (pruning, []), "C": (masked, [])}
    orders = ("A", "B", "C"), ("C", "B", "A"), ("B", "C", "A")
    for r in range(args.rounds):
        for side in orders[r % len(orders)]:
            solver, times = sides[side]
            times.append(time_steps(solver, args.iterations))
        a, b, c = (sides[k][1] for k in "ABC")
        print(f"round {r + 1}/{args.rounds}: plain {a[-1]:.3f} ms/iter, pruning {b[-1]:.3f} "
              f"({b[-1] / a[-1] - 1:+.1%}), masked {c[-1]:.3f} ({c[-1] / a[-1] - 1:+.1%})",
              flush=True)
    a, b, c = (sides[k][1] for k in "ABC")
    check = check_still_pruning(pruning)
    check_masked = check_still_pruning(masked, masked_groups, "C")

    med = statistics.median
    target = "<= +3.0% (GPU, VGG-16 b32)" if args.model == "vgg16" else "<= +5.0% (CPU)"
    overhead = med(b) / med(a) - 1.0
    extra_ms = med([y - x for x, y in zip(a, b)])
    paired = med([y / x for x, y in zip(a, b)]) - 1.0
    best = min(b) / min(a) - 1.0
    masked_overhead = med(c) / med(a) - 1.0
    masked_paired = med([z / x for x, z in zip(a, c)]) - 1.0
    masked_extra_ms = med([z - x for x, z in zip(a, c)])

    breakdown = None
    if args.breakdown:
        time_steps(plain, args.iterations)
        n = max(args.iterations * 4, 100)
        plain_ms = time_steps(plain, n)
        breakdown = hook_breakdown(pruning, n)
        breakdown["A step (total, same window)"] = plain_ms
    prof_rows, prof_text = None, ""
    if args.profile:
        prof_rows, prof_text = profile(pruning, args.profile_iterations, 30)
    check_still_pruning(pruning)
    for solver in (plain, pruning, masked):
        solver.net.close()
    app_out.close()
    app_lines = sum(1 for _ in app_path.open())
    app_iters = pruning.iter + masked.iter

    machine = machine_name(device)
    now = datetime.now(timezone.utc)
    record = {
        "net": str(net_file), "data": data, "batch": batch, "method": args.method,
        "device": str(device), "machine": machine, "plain_ms": med(a), "pruning_ms": med(b),
        "overhead": overhead, "paired_overhead": paired,
        "extra_ms_per_iteration": extra_ms, "best_of_rounds_overhead": best,
        "units": "ms per solver iteration (forward+backward+update of one batch)",
        "date": now.isoformat(timespec="seconds"), "command": command,
        "torch": torch.__version__, "python": platform.python_version(),
        "threads": torch.get_num_threads(), "iterations": args.iterations,
        "rounds": args.rounds, "warmup": args.warmup, "plain_rounds_ms": a,
        "pruning_rounds_ms": b, "check": check,
        "masked_ms": med(c), "masked_overhead": masked_overhead,
        "masked_paired_overhead": masked_paired, "masked_extra_ms_per_iteration": masked_extra_ms,
        "masked_rounds_ms": c, "pruned_fraction": args.pruned_fraction,
        "masked_groups_pruned": masked_groups, "check_masked": check_masked, "hook_breakdown_ms": breakdown,
        "profile_top_own_ms": prof_rows,
        "app_lines": app_lines, "app_lines_per_iteration": app_lines / max(app_iters, 1),
        "target": "CPU, LeNet-5: overhead <= 5%; GPU, VGG-16 at batch 32: <= 3%",
    }
    header = ("| date | net | data | batch | method | machine | torch | plain ms/iter | "
              "pruning ms/iter | overhead | extra ms/iter | masked ms/iter | masked overhead "
              "| masked extra ms/iter | command |")
    line = (f"| {now.date()} | {args.model} | {data} | {batch} | {args.method} | {machine} | "
            f"{torch.__version__} | {med(a):.3f} | {med(b):.3f} | {overhead:+.1%} | "
            f"{extra_ms:.3f} | {med(c):.3f} | {masked_overhead:+.1%} | {masked_extra_ms:.3f} "
            f"| `{command}` |")
    print()
    print(f"{'data':<6} {'batch':>5} {'method':<8} {'plain ms/iter':>14} {'pruning ms/iter':>16} "
          f"{'overhead':>9} {'extra ms/iter':>14}")
    print(f"{data:<6} {batch:>5} {args.method:<8} {med(a):>14.3f} {med(b):>16.3f} "
          f"{overhead:>+9.1%} {extra_ms:>14.3f}")
    print(f"{'masked (C, groups pruned)':<38} {med(c):>16.3f} {masked_overhead:>+9.1%} "
          f"{masked_extra_ms:>14.3f}")
    print(f"(medians of {args.rounds} rounds x {args.iterations} iterations; median of per-round "
          f"overheads {paired:+.1%}; best of rounds {best:+.1%}; target {target}; B wrote "
          f"{app_lines / max(app_iters, 1):.2f} [app] lines per iteration)")
    if breakdown:
        print("\nhook breakdown, ms per iteration of B (wrapped timers):")
        for name, ms in breakdown.items():
            print(f"  {name:<46} {ms:8.3f}")
    if prof_rows:
        print(f"\ncProfile of B, {args.profile_iterations} iterations, top own time "
              "(ms per iteration; the profiler inflates Python-heavy code):")
        for row in prof_rows[:20]:
            print(f"  {row['own_ms_per_iter']:7.3f} own {row['cum_ms_per_iter']:7.3f} cum "
                  f"{row['calls_per_iter']:6.1f} calls  {row['function']}")
        print("\nprunekit.prune functions by cumulative time:\n" + prof_text)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_part = "" if args.model == "lenet5" else f"{args.model}_"
    stem = (f"{now:%Y-%m-%dT%H%MZ}_{slug(machine)}_prune_overhead_{model_part}"
            f"{args.method.lower()}_{data}_b{batch}")
    (out / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    (out / f"{stem}.md").write_text(header + "\n|" + "---|" * 15 + "\n" + line + "\n")
    print(f"wrote {out / stem}.json and .md")
    snapshots.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

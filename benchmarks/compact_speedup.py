#!/usr/bin/env python3
"""Measured vs theoretical speedup of compacted VGG-16 / ResNet-50 (issue: measured ≥ 0.8 ×
theoretical on a CPU at batch 8, 224×224).

For each model and each target conv-MAC reduction (``--targets 2 4``), in one process:

1. the deploy net (compression_experiments/<model>/deploy.prototxt) gets random He-normal
   weights, biases and BatchNorm statistics (tests/compact's ``randomise``);
2. whole filters are zeroed, the same fraction f in every layer that may lose filters — every
   conv of VGG-16, branch2a/branch2b of every ResNet-50 block (the identity path keeps its
   width; with ``--residual`` each stage's residual channels go too: the same random set in
   its branch1 and every branch2c, so the Eltwise drops them) — with f chosen by bisection so
   that the conv MACs left after compaction are 1/target of the dense count (predicted from
   the layer shapes);
3. ``prunekit.compact`` makes the smaller net, which is checked against the masked one on a
   random batch-1 input (``prunekit.compact.verify.compare``): the run stops with an error if
   any output differs by more than ``COMPACT_TOLERANCE`` of its scale;
4. the masked (= dense-cost) net and the compacted net, both at ``--batch``, are timed in
   alternating rounds (``prunekit.measure.compare``): forward under no_grad and a plain
   forward+backward step, medians over rounds.

With ``--fold-bn`` both nets have their BatchNorm + Scale layers folded into the convs before
them (``prunekit.compact.fold_bn``, as deployed; each folded net is checked against its unfolded
one on a batch-1 random input) before step 4.

Theoretical speedup = dense conv MACs / compacted conv MACs (per image, prunekit flops'
convention); measured = dense time / compacted time. Times are ms per batch.

    python benchmarks/compact_speedup.py --model vgg16 --targets 2 4 --batch 8
    python benchmarks/compact_speedup.py --model resnet50 --targets 2 4 --batch 8 [--residual]
    python benchmarks/compact_speedup.py --model resnet50 --batch 8 --channels-last --residual \
        --fold-bn
    python benchmarks/compact_speedup.py --model vgg16 --batch 64 --gpu 0 [--round-to 8]

Writes benchmarks/results/<date>T<hhmm>Z_<machine>_compact_speedup_<model>_b<batch>[_round<N>]
[_residual][_nhwc][_fold-bn].json/.md.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_files import write_results  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "compact"))

from _compact_helpers import randomise  # noqa: E402

from prunekit import caffe  # noqa: E402
from prunekit.compact import build_compacted, build_with_blobs, compact  # noqa: E402
from prunekit.compact.fold_bn import fold_batch_norms  # noqa: E402
from prunekit.compact.verify import compare as compare_outputs  # noqa: E402
from prunekit.device import resolve_device  # noqa: E402
from prunekit.measure.compare import compare  # noqa: E402
from prunekit.measure.flops import count_net, totals  # noqa: E402
from prunekit.measure.machine import machine_name  # noqa: E402
from prunekit.net.batch_size import with_batch_size  # noqa: E402
from prunekit.net.graph import Net  # noqa: E402
from prunekit.net.layers.base import TEST  # noqa: E402
from prunekit.net.weights import load_net_param_blobs  # noqa: E402


def prunable(model: str, name: str) -> bool:
    """Layers that lose filters: every VGG conv; ResNet's branch2a/2b (not the Eltwise path)."""
    if model == "vgg16":
        return name.startswith("conv")
    return name.endswith("branch2a") or name.endswith("branch2b")


def resnet_keep(name: str, f: float, residual: bool) -> tuple[float, float]:
    """(output, input) channel fractions a ResNet-50 conv keeps: branch2a/2b lose f of their
    filters, branch2b/2c f of their inputs; with ``residual`` each stage's Eltwise-coupled
    channels (branch1 and branch2c outputs, and the inputs of the next blocks) lose f too."""
    if not name.startswith("res"):
        return 1.0, 1.0                                   # conv1
    block, branch = name[3:].split("_", 1)
    reads_residual = branch in ("branch1", "branch2a")
    in_keep = (1 - f) if not reads_residual or (residual and block != "2a") else 1.0
    out_keep = (1 - f) if branch in ("branch2a", "branch2b") or residual else 1.0
    return out_keep, in_keep


def kept(n: int, keep: float, round_to: int = 1) -> int:
    """Channels of ``n`` a layer keeps when a fraction 1 − ``keep`` of them is zeroed (as
    :func:`mask` does), rounded up to a multiple of ``round_to`` as compaction does."""
    if keep >= 1.0:
        return n
    left = n - min(int(round((1.0 - keep) * n)), n - 1)
    return min(n, -(-left // round_to) * round_to)


def predicted_ratio(net: Net, model: str, f: float, residual: bool = False,
                    round_to: int = 1) -> float:
    """Dense / compacted conv MACs if a fraction f of the prunable filters goes (and with them
    the consumers' input channels: the next conv in VGG, the next branch conv in ResNet), with
    the kept counts rounded up to ``round_to`` as ``compact --round-to`` does."""
    rows = [r for r in count_net(net, dense=True) if r.kind == "conv"]
    dense = left = 0.0
    previous_pruned = False
    for r in rows:
        n_out, c_in = net.layer(r.name).weight.shape[:2]
        if model == "resnet50":
            out_keep, in_keep = resnet_keep(r.name, f, residual)
        else:
            out_keep = 1 - f if prunable(model, r.name) else 1.0
            in_keep = 1 - f if previous_pruned else 1.0
        dense += r.macs
        left += (r.macs * kept(n_out, out_keep, round_to) / n_out
                 * kept(c_in, in_keep, round_to) / c_in)
        previous_pruned = prunable(model, r.name)
    return dense / left


def fraction_for(net: Net, model: str, target: float, residual: bool = False,
                 round_to: int = 1) -> float:
    lo, hi = 0.0, 0.95
    for _ in range(40):
        mid = (lo + hi) / 2
        ratio = predicted_ratio(net, model, mid, residual, round_to)
        lo, hi = (mid, hi) if ratio < target else (lo, mid)
    return hi


def mask(net: Net, model: str, f: float, seed: int, residual: bool = False) -> None:
    gen = torch.Generator().manual_seed(seed)
    stage_rows: dict[str, torch.Tensor] = {}  # one random set of residual channels per stage
    with torch.no_grad():
        for entry, module in net.named_layers():
            if entry.type != "Convolution":
                continue
            n = module.weight.shape[0]
            k = min(int(round(f * n)), n - 1)
            if prunable(model, entry.name):
                module.weight[torch.randperm(n, generator=gen)[:k]] = 0
            elif residual and entry.name.endswith(("branch1", "branch2c")):
                stage = entry.name[3]
                if stage not in stage_rows:
                    stage_rows[stage] = torch.randperm(n, generator=gen)[:k]
                module.weight[stage_rows[stage]] = 0


def build_at(param, batch: int, device, arrays=None, channels_last: bool = False) -> Net:
    net = Net(with_batch_size(param, batch), TEST)
    if arrays is not None:
        load_net_param_blobs(net, arrays, "<benchmark>")
    net.place(device)
    if channels_last:  # 4-D weights NHWC: convolutions then keep their activations NHWC
        net.to(memory_format=torch.channels_last)
    return net


#: Folded vs unfolded outputs further apart than this (relative to the output scale): a bug.
FOLD_TOLERANCE = 1e-4
#: Compacted vs masked outputs further apart than this (relative to the output scale): a bug.
COMPACT_TOLERANCE = 1e-4


def check_compacted(masked: Net, result, what: str) -> float:
    """Largest |masked − compacted| / output scale on a random batch-1 input; exits with an
    error above COMPACT_TOLERANCE (compaction is exact up to float32 rounding)."""
    small = build_compacted(result, TEST, f"<{what}>")
    worst = max(d.relative for d in compare_outputs(masked, small, set()))
    small.close()
    print(f"{what}: max |masked - compacted| / output scale {worst:.2g}", file=sys.stderr)
    if not worst <= COMPACT_TOLERANCE:
        raise SystemExit(f"{what}: compacted net differs from the masked one ({worst:.3g} of "
                         f"the output scale, tolerance {COMPACT_TOLERANCE:g})")
    return worst


def folded(param, arrays: dict, what: str):
    """``param`` and ``arrays`` with BatchNorm + Scale folded into the convs, after checking the
    folded net against the unfolded one on a random batch-1 input (TEST phase)."""
    folding = fold_batch_norms(param, arrays)
    before = build_with_blobs(param, arrays, TEST, f"<{what}>")
    after = build_with_blobs(folding.net_param, folding.blobs, TEST, f"<{what} folded>")
    worst = max(d.relative for d in compare_outputs(before, after, set()))
    before.close()
    after.close()
    print(f"{what}: {folding.summary()}; max |unfolded - folded| / output scale {worst:.2g}",
          file=sys.stderr)
    if worst > FOLD_TOLERANCE:
        raise SystemExit(f"{what}: folded net differs from the unfolded one ({worst:.3g})")
    return folding.net_param, folding.blobs, len(folding.folded)


def one_target(model: str, target: float, args, device) -> dict:
    param = caffe.read_net_prototxt(REPO / "compression_experiments" / model / "deploy.prototxt")
    masked = Net(with_batch_size(param, 1), TEST)
    randomise(masked, seed=args.seed)
    residual = args.residual and model == "resnet50"
    f = fraction_for(masked, model, target, residual, args.round_to)
    mask(masked, model, f, args.seed, residual)
    result = compact(param, masked, args.round_to)
    compact_error = check_compacted(masked, result, f"{model} {target:g}x compact")
    dense_arrays = {e.name: [t.detach().float().numpy() for t in m.caffe_blobs()]
                    for e, m in masked.named_layers() if list(m.caffe_blobs())}
    small_arrays = {n: [t.float().numpy() for t in b] for n, b in result.weights.blobs.items()}
    big_param, small_param, folds = param, result.net_param, (0, 0)
    if args.fold_bn:
        big_param, dense_arrays, n_big = folded(param, dense_arrays, f"{model} dense")
        small_param, small_arrays, n_small = folded(small_param, small_arrays,
                                                    f"{model} {target:g}x compact")
        folds = (n_big, n_small)
    big = build_at(big_param, args.batch, device, dense_arrays, args.channels_last)
    small = build_at(small_param, args.batch, device, small_arrays, args.channels_last)
    t_big, t_small = totals(count_net(big, dense=True)), totals(count_net(small, dense=True))
    c = compare(small, big, rounds=args.rounds, iterations=args.iterations, warmup=args.warmup,
                per_layer=False)
    theory = t_big.conv_macs / t_small.conv_macs
    row = {"model": model, "target": target, "filter_fraction": f, "round_to": args.round_to,
           "channels_last": args.channels_last, "residual_pruned": residual,
           "fold_bn": args.fold_bn, "max_relative_error_compact_vs_masked": compact_error,
           "folded_batch_norms_dense": folds[0],
           "folded_batch_norms_compact": folds[1],
           "params_dense": t_big.params, "params_compact": t_small.params,
           "conv_macs_dense": t_big.conv_macs, "conv_macs_compact": t_small.conv_macs,
           "theoretical": theory, "forward_ms_dense": c.vs_forward_ms,
           "forward_ms_compact": c.forward_ms, "measured_forward": c.measured_forward,
           "step_ms_dense": c.vs_step_ms, "step_ms_compact": c.step_ms,
           "measured_step": c.measured_step,
           "forward_fraction_of_theory": c.measured_forward / theory,
           "step_fraction_of_theory": c.measured_step / theory}
    for net in (masked, big, small):
        net.close()
    return row


TABLE = ("| date | model | batch | device | target | filters removed | conv GMACs dense → compact "
         "| theoretical | fwd ms dense → compact | measured fwd | fwd+bwd ms dense → compact "
         "| measured fwd+bwd | measured / theoretical (fwd, fwd+bwd) | command |")


def table_line(date: str, row: dict, batch: int, device: str, command: str) -> str:
    model = row["model"] + (" fold-bn" if row.get("fold_bn") else "")
    return (f"| {date} | {model} | {batch} | {device} | {row['target']:g}x "
            f"| {row['filter_fraction']:.3f} | {row['conv_macs_dense'] / 1e9:.3f} → "
            f"{row['conv_macs_compact'] / 1e9:.3f} | {row['theoretical']:.2f}x "
            f"| {row['forward_ms_dense']:.1f} → {row['forward_ms_compact']:.1f} "
            f"| {row['measured_forward']:.2f}x | {row['step_ms_dense']:.1f} → "
            f"{row['step_ms_compact']:.1f} | {row['measured_step']:.2f}x "
            f"| {row['forward_fraction_of_theory']:.2f}, {row['step_fraction_of_theory']:.2f} "
            f"| `{command}` |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("vgg16", "resnet50"), default="vgg16")
    p.add_argument("--targets", type=float, nargs="+", default=[2.0, 4.0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--gpu", default=None)
    p.add_argument("--round-to", type=int, default=1)
    p.add_argument("--residual", action="store_true",
                   help="ResNet-50: also remove each stage's Eltwise-coupled residual channels")
    p.add_argument("--channels-last", action="store_true",
                   help="time both nets with NHWC (channels_last) weights and activations")
    p.add_argument("--fold-bn", action="store_true",
                   help="fold BatchNorm + Scale into the convs of both nets before timing")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iterations", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)
    device = resolve_device(args.gpu)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    command = "python benchmarks/compact_speedup.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    now = datetime.now(timezone.utc)
    machine = machine_name(device)
    rows = [one_target(args.model, t, args, device) for t in args.targets]
    lines = [TABLE, "|" + "---|" * 14]
    lines += [table_line(now.strftime("%Y-%m-%d"), r, args.batch, machine, command) for r in rows]
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")
    layout = (f"_round{args.round_to}" if args.round_to > 1 else "") + (
        "_residual" if args.residual and args.model == "resnet50" else "") + (
        "_nhwc" if args.channels_last else "") + ("_fold-bn" if args.fold_bn else "")
    stem = out / f"{now:%Y-%m-%dT%H%MZ}_{slug}_compact_speedup_{args.model}_b{args.batch}{layout}"
    record = {"date": now.isoformat(timespec="seconds"), "machine": machine,
              "device": str(device), "torch": torch.__version__, "command": command,
              "batch": args.batch, "rounds": args.rounds, "iterations": args.iterations,
              "rows": rows}
    write_results(stem, record, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())

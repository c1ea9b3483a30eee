#!/usr/bin/env python3
"""Theoretical vs measured speedup of low-rank decomposed VGG-16 / ResNet-50 (issue 6: measured
≥ 0.7 × theoretical on a CPU for VGG-16 at ratio 2; conv MACs within 5% of each target).

For each model, in one process:

1. the deploy net (compression_experiments/<model>/deploy.prototxt, 224×224) gets random
   He-normal weights (tests/compact's ``randomise``; real ImageNet weights are not here);
2. data-free energies (singular values, accnn) and rank selection for each ``--ratios`` target
   (``--search dp`` or ``greedy``), then the split (:mod:`prunekit.decompose`) — the steps of
   ``prunekit decompose --ratio R``;
3. the dense net and each decomposed net, at ``--batch``, are timed in alternating rounds
   (:mod:`prunekit.measure.compare`): forward under no_grad and a plain forward+backward step,
   medians over rounds.

Theoretical speedup = dense conv MACs / decomposed conv MACs per image (``prunekit flops``'
count on both nets); measured = dense time / decomposed time (ms per batch).

    python benchmarks/decompose_speedup.py --model vgg16 --ratios 2 3 --batch 8
    python benchmarks/decompose_speedup.py --model resnet50 --ratios 2 3 --batch 8
    python benchmarks/decompose_speedup.py --model vgg16 --batch 64 --gpu 0

Writes benchmarks/results/<date>T<hhmm>Z_<machine>_decompose_speedup_<model>_b<batch>.json/.md;
``--note contended`` marks a run taken while other work shared the CPU.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import time
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
from prunekit.decompose.auto import auto_ranks, decompose_net  # noqa: E402
from prunekit.decompose.candidates import find_candidates  # noqa: E402
from prunekit.decompose.energies import weight_energies  # noqa: E402
from prunekit.device import resolve_device  # noqa: E402
from prunekit.measure.compare import compare  # noqa: E402
from prunekit.measure.flops import count_net, totals  # noqa: E402
from prunekit.measure.machine import machine_name  # noqa: E402
from prunekit.net.batch_size import with_batch_size  # noqa: E402
from prunekit.net.graph import Net  # noqa: E402
from prunekit.net.layers.base import TEST  # noqa: E402
from prunekit.net.weights import load_net_param_blobs  # noqa: E402


def blobs_of(net: Net) -> dict:
    return {e.name: [t.detach().float().numpy() for t in m.caffe_blobs()]
            for e, m in net.named_layers() if list(m.caffe_blobs())}


def build_at(param, batch: int, device, arrays: dict, channels_last: bool = False) -> Net:
    net = Net(with_batch_size(param, batch), TEST)
    load_net_param_blobs(net, arrays, "<benchmark>")
    net.place(device)
    return net.use_channels_last() if channels_last else net


def run_model(args, device) -> list[dict]:
    param = caffe.read_net_prototxt(REPO / "compression_experiments" / args.model / "deploy.prototxt")
    small = Net(with_batch_size(param, 1), TEST)
    randomise(small, seed=args.seed)
    arrays = blobs_of(small)
    start = time.perf_counter()
    energies = weight_energies(small, find_candidates(small, False))
    energy_s = time.perf_counter() - start
    dense = build_at(param, args.batch, device, arrays, args.channels_last)
    t_dense = totals(count_net(dense, dense=True))
    rows = []
    for ratio in args.ratios:
        start = time.perf_counter()
        ranks = auto_ranks(small, ratio, search=args.search, energies=energies)
        new_param, new = decompose_net(param, small, ranks)
        split_s = time.perf_counter() - start
        dec = build_at(new_param, args.batch, device, {**arrays, **new}, args.channels_last)
        t_dec = totals(count_net(dec, dense=True))
        c = compare(dec, dense, rounds=args.rounds, iterations=args.iterations,
                    warmup=args.warmup, per_layer=False)
        theory = t_dense.conv_macs / t_dec.conv_macs
        rows.append({
            "model": args.model, "ratio": ratio, "search": args.search,
            "channels_last": args.channels_last,
            "layers_split": len(ranks), "ranks": {n: k for n, (_, k) in ranks.items()},
            "conv_macs_dense": t_dense.conv_macs, "conv_macs_decomposed": t_dec.conv_macs,
            "theoretical": theory, "off_target": theory / ratio - 1,
            "energy_s": energy_s, "select_and_split_s": split_s,
            "forward_ms_dense": c.vs_forward_ms, "forward_ms_decomposed": c.forward_ms,
            "measured_forward": c.measured_forward, "step_ms_dense": c.vs_step_ms,
            "step_ms_decomposed": c.step_ms, "measured_step": c.measured_step,
            "forward_fraction_of_theory": c.measured_forward / theory,
            "step_fraction_of_theory": c.measured_step / theory})
        dec.close()
    dense.close()
    return rows


TABLE = ("| date | model | batch | device | ratio | layers split | conv GMACs dense → decomposed "
         "| theoretical | fwd ms dense → decomposed | measured fwd | fwd+bwd ms dense → decomposed "
         "| measured fwd+bwd | measured / theoretical (fwd, fwd+bwd) | note | command |")


def table_line(date: str, r: dict, batch: int, device: str, note: str, command: str) -> str:
    return (f"| {date} | {r['model']} | {batch} | {device} | {r['ratio']:g}x | {r['layers_split']} "
            f"| {r['conv_macs_dense'] / 1e9:.3f} → {r['conv_macs_decomposed'] / 1e9:.3f} "
            f"| {r['theoretical']:.2f}x | {r['forward_ms_dense']:.1f} → "
            f"{r['forward_ms_decomposed']:.1f} | {r['measured_forward']:.2f}x "
            f"| {r['step_ms_dense']:.1f} → {r['step_ms_decomposed']:.1f} "
            f"| {r['measured_step']:.2f}x | {r['forward_fraction_of_theory']:.2f}, "
            f"{r['step_fraction_of_theory']:.2f} | {note} | `{command}` |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("vgg16", "resnet50"), default="vgg16")
    p.add_argument("--ratios", type=float, nargs="+", default=[2.0, 3.0])
    p.add_argument("--search", choices=("dp", "greedy"), default="dp")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--gpu", default=None)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iterations", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--channels-last", action="store_true",
                   help="time both nets with NHWC (channels_last) weights and activations")
    p.add_argument("--note", default="", help="e.g. 'contended' for a shared machine")
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)
    device = resolve_device(args.gpu)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    command = "python benchmarks/decompose_speedup.py " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    now = datetime.now(timezone.utc)
    machine = machine_name(device)
    rows = run_model(args, device)
    lines = [TABLE, "|" + "---|" * 15]
    lines += [table_line(now.strftime("%Y-%m-%d"), r, args.batch, machine, args.note, command)
              for r in rows]
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")
    layout = "_nhwc" if args.channels_last else ""
    stem = out / f"{now:%Y-%m-%dT%H%MZ}_{slug}_decompose_speedup_{args.model}_b{args.batch}{layout}"
    record = {"date": now.isoformat(timespec="seconds"), "machine": machine,
              "device": str(device), "torch": torch.__version__, "command": command,
              "note": args.note, "batch": args.batch, "rounds": args.rounds,
              "iterations": args.iterations, "rows": rows}
    write_results(stem, record, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())

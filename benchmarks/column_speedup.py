#!/usr/bin/env python3
"""Measured vs theoretical speedup of column-pruned VGG-16 / ResNet-50 run as ColumnConvolution
layers (issue 15: at batch 8, 224×224, on a CPU in the recommended layout, VGG-16 with 75% of
its columns removed ≥ 2.4x, 50% ≥ 1.2x; ResNet-50 at 75% ≥ 0.5 × theoretical).

For each model and each fraction f (``--fractions 0.5 0.75``), in one process:

1. the deploy net (compression_experiments/<model>/deploy.prototxt) gets random weights
   (tests/compact's ``randomise``);
2. in every conv with a kernel larger than 1×1, a fraction f of the weight-matrix columns is
   zeroed at random such that every input channel keeps at least one tap (no whole channel is
   removed, so compact's channel removal cannot help; 1×1 convs stay dense: a column there *is*
   a channel);
3. the column net: those convs become ColumnConvolution layers
   (prunekit.compact.column_form); its outputs are checked against the masked dense net's;
4. per layer, the masked Convolution and the ColumnConvolution are timed on a random input of
   the layer's shape (forward under no_grad, forward+backward), in alternating rounds; a layer
   whose column form is slower forward keeps its dense form in the net ("auto", as compact);
5. the masked (= dense-cost) net and the column net are timed in alternating rounds
   (prunekit.measure.compare): forward under no_grad and a plain forward+backward step.

Both layouts are measured (``--layouts nhwc nchw``): NHWC = channels_last weights and input.
Theoretical speedup = dense conv MACs / column-net conv MACs (per image, prunekit flops'
convention: a ColumnConvolution costs num_output · n_kept per output pixel). Times are ms per
batch, medians over rounds.

    python benchmarks/column_speedup.py --model vgg16 --batch 8
    python benchmarks/column_speedup.py --model resnet50 --batch 8
    python benchmarks/column_speedup.py --model vgg16 --batch 64 --gpu 0

Writes benchmarks/results/<date>T<hhmm>Z_<machine>_column_speedup_<model>_b<batch>.json/.md.
"""

from __future__ import annotations

import argparse
import re
import shlex
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_files import write_results  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "compact"))
sys.path.insert(0, str(HERE))

from _compact_helpers import randomise  # noqa: E402
from compact_speedup import build_at  # noqa: E402

from prunekit import caffe  # noqa: E402
from prunekit.compact.column_form import column_blobs, column_layer  # noqa: E402
from prunekit.compact.verify import compare as compare_outputs  # noqa: E402
from prunekit.device import resolve_device  # noqa: E402
from prunekit.measure.compare import compare  # noqa: E402
from prunekit.measure.flops import count_net, totals  # noqa: E402
from prunekit.measure.machine import machine_name  # noqa: E402
from prunekit.measure.timing import _Clock  # noqa: E402
from prunekit.net.batch_size import with_batch_size  # noqa: E402
from prunekit.net.graph import Net  # noqa: E402
from prunekit.net.layers.base import TEST  # noqa: E402

#: Column net vs masked dense net outputs further apart than this (of the output scale): a bug.
TOLERANCE = 1e-4


def mask_columns(net: Net, fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Zero ``fraction`` of the columns of every conv with more than one tap, each input channel
    keeping ≥ 1 tap; returns the kept columns by layer name."""
    gen = torch.Generator().manual_seed(seed)
    kept = {}
    with torch.no_grad():
        for entry, module in net.named_layers():
            if entry.type != "Convolution":
                continue
            n, cg, kh, kw = module.weight.shape
            taps = kh * kw
            if taps == 1:
                continue
            removed = min(int(round(fraction * cg * taps)), cg * (taps - 1))
            per_channel = torch.full((cg,), removed // cg)
            per_channel[torch.randperm(cg, generator=gen)[:removed % cg]] += 1
            keep = torch.ones(cg, taps, dtype=torch.bool)
            for c in range(cg):
                keep[c, torch.randperm(taps, generator=gen)[:int(per_channel[c])]] = False
            module.weight.view(n, cg * taps)[:, ~keep.reshape(-1)] = 0
            kept[entry.name] = np.flatnonzero(keep.reshape(-1).numpy()).astype(np.int64)
    return kept


def column_model(param, arrays: dict, kept: dict[str, np.ndarray]):
    """(NetParameter, blobs) with the layers in ``kept`` as ColumnConvolution."""
    out = caffe.caffe_pb2.NetParameter()
    out.CopyFrom(param)
    small = dict(arrays)
    for i, lp in enumerate(out.layer):
        if lp.name in kept:
            ids = [int(c) for c in kept[lp.name]]
            out.layer[i].CopyFrom(column_layer(lp, ids))
            del out.layer[i].blobs[:]
            weight, *rest = arrays[lp.name]
            small[lp.name] = column_blobs(weight, list(rest), ids)
    return out, small


def _time(fn, clock) -> float:
    clock.sync()
    start = time.perf_counter()
    fn()
    clock.sync()
    return (time.perf_counter() - start) * 1000.0


def time_layers(dense: Net, column: Net, names: list[str], rounds: int, nhwc: bool) -> dict:
    """Per layer: median forward (no_grad) and forward+backward ms of the masked Convolution and
    the ColumnConvolution, on one random input of the layer's bottom shape, alternating."""
    clock = _Clock(dense.device)
    fmt = torch.channels_last if nhwc else torch.contiguous_format
    times = {n: {k: [] for k in ("fd", "fc", "sd", "sc")} for n in names}
    inputs = {}
    for name in names:
        entry = next(e for e, _ in dense.named_layers() if e.name == name)
        shape = tuple(dense.blob_shapes[entry.bottoms[0]])
        inputs[name] = torch.randn(shape, device=dense.device).contiguous(memory_format=fmt)

    def fwd(m, x):
        with torch.no_grad():
            m(x)

    def step(m, x):
        x = x.detach().requires_grad_(True)
        y = m(x)
        y.backward(torch.ones_like(y))

    for r in range(rounds + 1):                       # round 0 warms up
        for name in names:
            x, d, c = inputs[name], dense.layer(name), column.layer(name)
            pairs = ((d, "d"), (c, "c")) if r % 2 == 0 else ((c, "c"), (d, "d"))
            for m, k in pairs:
                tf, ts = _time(lambda: fwd(m, x), clock), _time(lambda: step(m, x), clock)
                if r:
                    times[name]["f" + k].append(tf)
                    times[name]["s" + k].append(ts)
    return {n: {k: statistics.median(v) for k, v in t.items()} for n, t in times.items()}


def one_fraction(model: str, fraction: float, args, device) -> list[dict]:
    param = caffe.read_net_prototxt(REPO / "compression_experiments" / model / "deploy.prototxt")
    masked = Net(with_batch_size(param, 1), TEST)
    randomise(masked, seed=args.seed)
    kept = mask_columns(masked, fraction, args.seed)
    arrays = {e.name: [t.detach().float().numpy() for t in m.caffe_blobs()]
              for e, m in masked.named_layers() if list(m.caffe_blobs())}
    col_param, col_arrays = column_model(param, arrays, kept)
    check = build_at(col_param, 1, torch.device("cpu"), col_arrays)
    worst = max(d.relative for d in compare_outputs(masked, check, set()))
    check.close()
    if worst > TOLERANCE:
        raise SystemExit(f"{model} {fraction}: column net differs from the masked net ({worst:.3g})")
    rows = []
    for layout in args.layouts:
        nhwc = layout == "nhwc"
        big = build_at(param, args.batch, device, arrays, nhwc)
        small = build_at(col_param, args.batch, device, col_arrays, nhwc)
        layers = time_layers(big, small, list(kept), args.layer_rounds, nhwc)
        slower = [n for n, t in layers.items() if t["fc"] >= t["fd"]]
        auto_param, auto_arrays = column_model(param, arrays,
                                               {n: k for n, k in kept.items() if n not in slower})
        small.close()
        small = build_at(auto_param, args.batch, device, auto_arrays, nhwc)
        per_layer = _layer_rows(big, small, layers, kept, slower)
        t_big, t_small = totals(count_net(big, dense=True)), totals(count_net(small, dense=True))
        all_column = build_at(col_param, 1, torch.device("cpu"), col_arrays)
        t_all = totals(count_net(all_column, dense=True))
        all_column.close()
        c = compare(small, big, rounds=args.rounds, iterations=args.iterations,
                    warmup=args.warmup, per_layer=False)
        theory = t_big.conv_macs / t_small.conv_macs
        rows.append({
            "model": model, "fraction": fraction, "layout": layout, "max_relative_error": worst,
            "column_layers": len(kept) - len(slower), "dense_kept_layers": slower,
            "conv_macs_dense": t_big.conv_macs, "conv_macs_column": t_small.conv_macs,
            "conv_macs_all_column": t_all.conv_macs,
            "theoretical": theory, "theoretical_all_column": t_big.conv_macs / t_all.conv_macs,
            "forward_ms_dense": c.vs_forward_ms, "forward_ms_column": c.forward_ms,
            "measured_forward": c.measured_forward, "step_ms_dense": c.vs_step_ms,
            "step_ms_column": c.step_ms, "measured_step": c.measured_step,
            "forward_fraction_of_theory": c.measured_forward / theory,
            "step_fraction_of_theory": c.measured_step / theory, "layers": per_layer})
        print(table_line(rows[-1], args.batch), file=sys.stderr, flush=True)
        big.close()
        small.close()
    masked.close()
    return rows


def _layer_rows(big: Net, small: Net, layers: dict, kept: dict, slower: list[str]) -> list[dict]:
    dense = {r.name: r.macs for r in count_net(big, dense=True)}
    out = []
    for name, t in layers.items():
        w = big.layer(name).weight
        col_macs = dense[name] * len(kept[name]) // (w[0].numel())
        out.append({"name": name, "macs_dense": dense[name], "macs_column": col_macs,
                    "theoretical": dense[name] / col_macs, "forward_ms_dense": t["fd"],
                    "forward_ms_column": t["fc"], "measured_forward": t["fd"] / t["fc"],
                    "step_ms_dense": t["sd"], "step_ms_column": t["sc"],
                    "measured_step": t["sd"] / t["sc"], "in_net": "dense" if name in slower
                    else "column"})
    return out


TABLE = ("| model | batch | layout | columns removed | conv GMACs dense → column net | theoretical "
         "| fwd ms dense → column | measured fwd | fwd+bwd ms dense → column | measured fwd+bwd "
         "| measured / theoretical (fwd, fwd+bwd) | layers kept dense |")


def table_line(row: dict, batch: int) -> str:
    return (f"| {row['model']} | {batch} | {row['layout']} | {row['fraction']:.0%} "
            f"| {row['conv_macs_dense'] / 1e9:.3f} → {row['conv_macs_column'] / 1e9:.3f} "
            f"| {row['theoretical']:.2f}x | {row['forward_ms_dense']:.1f} → "
            f"{row['forward_ms_column']:.1f} | {row['measured_forward']:.2f}x "
            f"| {row['step_ms_dense']:.1f} → {row['step_ms_column']:.1f} "
            f"| {row['measured_step']:.2f}x | {row['forward_fraction_of_theory']:.2f}, "
            f"{row['step_fraction_of_theory']:.2f} | {', '.join(row['dense_kept_layers']) or '-'} |")


LAYER_TABLE = ("| model | layout | removed | layer | theoretical | fwd ms dense → column | measured "
               "fwd | fwd+bwd ms dense → column | measured fwd+bwd | in net |")


def layer_lines(row: dict) -> list[str]:
    return [f"| {row['model']} | {row['layout']} | {row['fraction']:.0%} | {r['name']} "
            f"| {r['theoretical']:.2f}x | {r['forward_ms_dense']:.1f} → {r['forward_ms_column']:.1f} "
            f"| {r['measured_forward']:.2f}x | {r['step_ms_dense']:.1f} → {r['step_ms_column']:.1f} "
            f"| {r['measured_step']:.2f}x | {r['in_net']} |" for r in row["layers"]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("vgg16", "resnet50"), default="vgg16")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.5, 0.75])
    p.add_argument("--layouts", nargs="+", choices=("nhwc", "nchw"), default=["nhwc", "nchw"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--gpu", default=None)
    p.add_argument("--rounds", type=int, default=3, help="whole-net rounds")
    p.add_argument("--layer-rounds", type=int, default=3, help="per-layer rounds")
    p.add_argument("--iterations", type=int, default=1)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)
    device = resolve_device(args.gpu)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    command = "python benchmarks/column_speedup.py " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    now = datetime.now(timezone.utc)
    machine = machine_name(device)
    rows = [r for f in args.fractions for r in one_fraction(args.model, f, args, device)]
    lines = [f"{now:%Y-%m-%d}, {machine}, torch {torch.__version__}, `{command}`", "",
             TABLE, "|" + "---|" * 12] + [table_line(r, args.batch) for r in rows]
    lines += ["", LAYER_TABLE, "|" + "---|" * 10] + [x for r in rows for x in layer_lines(r)]
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")
    stem = out / f"{now:%Y-%m-%dT%H%MZ}_{slug}_column_speedup_{args.model}_b{args.batch}"
    record = {"date": now.isoformat(timespec="seconds"), "machine": machine,
              "device": str(device), "torch": torch.__version__, "command": command,
              "batch": args.batch, "rounds": args.rounds, "layer_rounds": args.layer_rounds,
              "iterations": args.iterations, "rows": rows}
    write_results(stem, record, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())

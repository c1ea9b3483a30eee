#!/usr/bin/env python3
"""One column-pruned conv layer, three forms side by side: dense conv (masked weights), the
ColumnConvolution writing its whole reduced im2col (prunekit.net.layers._column_gemm), and the
banded forward (prunekit.net.layers._column_bands). Forward under no_grad, ms per batch, median
of interleaved rounds (order alternates each round). Layers: VGG-16's 3×3 shapes at 224 input.

    OMP_NUM_THREADS=1 python benchmarks/column_bands.py --fraction 0.75 --batch 8 --sizes 224 56

Columns removed: ``fraction`` of each conv's C·9 columns at random, every input channel keeping
≥ 1 tap (as benchmarks/column_speedup.py). Writes
benchmarks/results/<date>T<hhmm>Z_<machine>_column_bands_b<batch>.json/.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from prunekit.measure.machine import machine_name
from prunekit.net.layers._column_bands import column_conv_bands
from prunekit.net.layers._column_gemm import column_conv_plain, make_plan

HERE = Path(__file__).resolve().parent
#: VGG-16 3×3 convs by input size: (input channels, output channels)
SHAPES = {224: (64, 64), 112: (128, 128), 56: (256, 256), 28: (512, 512), 14: (512, 512)}


def layer(size: int, batch: int, fraction: float, gen: torch.Generator):
    c, o = SHAPES[size]
    removed = round(fraction * c * 9)
    per = torch.full((c,), removed // c)
    per[torch.randperm(c, generator=gen)[:removed % c]] += 1
    keep = torch.ones(c, 9, dtype=torch.bool)
    for ch in range(c):
        keep[ch, torch.randperm(9, generator=gen)[:int(per[ch])]] = False
    kept = keep.reshape(-1).nonzero().flatten()
    w = torch.randn(o, c, 3, 3, generator=gen)
    w.view(o, -1)[:, ~keep.reshape(-1)] = 0
    plan = make_plan(kept, c, 1, (3, 3), (1, 1), (1, 1), (1, 1))
    x = torch.randn(batch, c, size, size, generator=gen)
    return plan, w, w.view(o, -1)[:, kept].contiguous(), x, kept.numel()


@torch.no_grad()
def time_layer(size: int, args, gen) -> list[dict]:
    plan, w, wk, x, n_kept = layer(size, args.batch, args.fraction, gen)
    rows = []
    for nhwc in (True, False):
        fmt = torch.channels_last if nhwc else torch.contiguous_format
        xx, wd = x.contiguous(memory_format=fmt), w.contiguous(memory_format=fmt)
        wo = wk[:, plan.order]
        fns = {"dense": lambda: F.conv2d(xx, wd, padding=1),
               "whole": lambda: column_conv_plain(plan, xx, wk, None),
               "bands": lambda: column_conv_bands(plan, xx, wo, None, nhwc)}
        ref = fns["dense"]()
        for k in ("whole", "bands"):
            err = ((fns[k]() - ref).abs().max() / ref.abs().max()).item()
            if err > 1e-4:
                raise SystemExit(f"{size}² {k}: differs from the dense conv ({err:.3g})")
        times = {k: [] for k in fns}
        for r in range(args.rounds):
            for k in (list(fns) if r % 2 == 0 else list(reversed(fns))):
                start = time.perf_counter()
                fns[k]()
                times[k].append((time.perf_counter() - start) * 1000.0)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append({"size": size, "layout": "NHWC" if nhwc else "NCHW", "kept": n_kept,
                     "columns": SHAPES[size][0] * 9, "theoretical": SHAPES[size][0] * 9 / n_kept,
                     **{f"{k}_ms": v for k, v in med.items()},
                     "speedup_whole": med["dense"] / med["whole"],
                     "speedup_bands": med["dense"] / med["bands"]})
        print(line(rows[-1], args.batch), flush=True)
    return rows


HEAD = ("| input | batch | layout | kept columns | theoretical | dense ms | whole-buffer ms | "
        "bands ms | speedup whole | speedup bands |\n|---|---|---|---|---|---|---|---|---|---|")


def line(r: dict, batch: int) -> str:
    return (f"| {r['size']}² | {batch} | {r['layout']} | {r['kept']} of {r['columns']} "
            f"| {r['theoretical']:.2f}x | {r['dense_ms']:.1f} | {r['whole_ms']:.1f} "
            f"| {r['bands_ms']:.1f} | {r['speedup_whole']:.2f}x | {r['speedup_bands']:.2f}x |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fraction", type=float, default=0.75)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--sizes", type=int, nargs="+", default=[224, 56, 28],
                   choices=sorted(SHAPES))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)
    command = "python benchmarks/column_bands.py " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    now, machine = datetime.now(timezone.utc), machine_name(torch.device("cpu"))
    print(HEAD)
    gen = torch.Generator().manual_seed(0)
    rows = [r for s in args.sizes for r in time_layer(s, args, gen)]
    lines = [f"{now:%Y-%m-%d}, {machine}, torch {torch.__version__}, "
             f"{args.fraction:.0%} of columns removed, `{command}`", "", HEAD]
    lines += [line(r, args.batch) for r in rows]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")
    stem = out / f"{now:%Y-%m-%dT%H%MZ}_{slug}_column_bands_b{args.batch}"
    stem.with_suffix(".json").write_text(json.dumps(
        {"date": now.isoformat(timespec="seconds"), "machine": machine,
         "torch": torch.__version__, "command": command, "batch": args.batch,
         "fraction": args.fraction, "rounds": args.rounds, "rows": rows}, indent=1) + "\n")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

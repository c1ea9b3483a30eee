#!/usr/bin/env python3
"""Where ``prunekit decompose --ratio R`` lands on VGG-16 and ResNet-50 (theoretical conv-MAC
speedup, no timing), and what accnn's hand-made VGG-16 rank config gives.

For each model (compression_experiments/<model>/deploy.prototxt at 224×224, VGG-16 cut after
pool5: its FC layers hold no conv MACs), the TEST net gets N(0, 1) weights (``--seed``), the
ranks are picked as ``prunekit decompose --ratio R [--search dp|greedy]`` picks them (energies
from the weights' singular values, ``prunekit.decompose.auto.auto_ranks``), the net is rewritten
with the split layers and rebuilt, and the speedup is dense conv MACs / rebuilt conv MACs per
image (``prunekit flops``' rule). ``off target`` = achieved / R − 1.

    python benchmarks/decompose_ratios.py

Writes benchmarks/results/<date>T<hhmm>Z_<machine>_decompose_ratios.{md,json}.
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

from prunekit import caffe
from prunekit.decompose.auto import auto_ranks
from prunekit.decompose.plan import check_ranks
from prunekit.decompose.rewrite import rewrite_net
from prunekit.measure.flops import count_net, totals
from prunekit.measure.machine import machine_name
from prunekit.net.batch_size import with_batch_size
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST

HERE = Path(__file__).resolve().parent
ZOO = HERE.parent / "compression_experiments"
#: accnn's VGG-16 ranks (its README: 2.42x theoretical).
ACCNN_VGG16 = {"conv1_1": 5, "conv1_2": 32, "conv2_1": 64, "conv2_2": 64, "conv3_1": 96,
               "conv3_2": 160, "conv3_3": 192, "conv4_1": 256, "conv4_2": 256, "conv4_3": 320,
               "conv5_1": 384, "conv5_2": 384, "conv5_3": 384}


def zoo_net(model: str, seed: int):
    param = with_batch_size(caffe.read_net_prototxt(ZOO / model / "deploy.prototxt"), 1)
    if model == "vgg16":
        del param.layer[[lp.name for lp in param.layer].index("pool5") + 1:]
    net = Net(param, TEST)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for blob in net.param_blobs():
            blob.tensor.copy_(torch.randn(blob.tensor.shape, generator=gen))
    return param, net


def conv_speedup(param, net: Net, ranks) -> float:
    geometry = {n: net.layer(n).geometry for n in ranks}
    new = Net(rewrite_net(param, ranks, geometry), TEST)
    return totals(count_net(net, dense=True)).conv_macs / totals(count_net(new, dense=True)).conv_macs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ratios", type=float, nargs="+", default=[2.0, 3.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    command = ("python benchmarks/decompose_ratios.py " + shlex.join(sys.argv[1:] if argv is None else argv)).rstrip()
    rows = []
    for model in ("vgg16", "resnet50"):
        param, net = zoo_net(model, args.seed)
        for search in ("dp", "greedy"):
            for ratio in args.ratios:
                achieved = conv_speedup(param, net, auto_ranks(net, ratio, search=search))
                rows.append({"model": model, "ranks": f"--ratio {ratio:g} --search {search}",
                             "target": ratio, "speedup": achieved,
                             "off_target": achieved / ratio - 1})
        if model == "vgg16":
            ranks = check_ranks(net, {n: ("conv", k) for n, k in ACCNN_VGG16.items()}, "accnn")
            rows.append({"model": model, "ranks": "accnn config", "target": None,
                         "speedup": conv_speedup(param, net, ranks), "off_target": None})
    now = datetime.now(timezone.utc)
    machine = machine_name(torch.device("cpu"))
    lines = [f"{now:%Y-%m-%d %H:%M} UTC, {machine}, torch {torch.__version__}, `{command}` "
             "(theoretical conv-MAC speedup per image, 224×224, random N(0, 1) weights, seed "
             f"{args.seed})", "", "| model | ranks | theoretical conv speedup | off target |",
             "|---|---|---|---|"]
    for r in rows:
        off = "" if r["off_target"] is None else f"{r['off_target']:+.2%}"
        lines.append(f"| {r['model']} | {r['ranks']} | {r['speedup']:.3f}x | {off} |")
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")
    stem = out / f"{now:%Y-%m-%dT%H%MZ}_{slug}_decompose_ratios"
    record = {"date": now.isoformat(timespec="seconds"), "machine": machine,
              "torch": torch.__version__, "command": command, "batch": 1, "seed": args.seed,
              "units": "dense conv MACs / decomposed conv MACs, per image", "rows": rows}
    write_results(stem, record, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())

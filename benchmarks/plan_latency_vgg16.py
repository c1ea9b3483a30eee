#!/usr/bin/env python3
"""``prunekit plan --by latency`` on VGG-16: is the measured speedup after ``prunekit compact``
within 10% of the requested one on this machine?

1. VGG-16 deploy (compression_experiments/vgg16/deploy.prototxt) with random He-normal weights
   (``prunekit.analysis.masking.he_normal``; the timing does not depend on trained values),
   saved as a caffemodel;
2. ``prunekit sensitivity --unit Channel`` at batch 1 (output distortion curves: a deploy net
   has no labels);
3. ``prunekit plan --by latency --speedup S --batch B [--channels-last]``: per-layer forward
   times on this machine, knapsack, compaction and timing rounds inside the planner;
4. independently of the planner's own measurement: the plan's ratios applied to the weights
   (the same ranking), ``prunekit compact`` of the masked model, then ``prunekit speedup`` of
   the compacted model against the masked (dense-cost) one at batch B; its forward speedup
   (median of interleaved rounds, ms per batch) is the result, checked against S ± 10%.

    python benchmarks/plan_latency_vgg16.py --speedup 2 --batch 2 --channels-last

Writes benchmarks/results/<date>T<hhmm>Z_<machine>_plan_latency_vgg16_b<B>_s<S>[_nhwc].json/.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import methods_table as mt  # noqa: E402
from prunekit import caffe  # noqa: E402
from prunekit.analysis.masking import apply_plan, he_normal  # noqa: E402
from prunekit.analysis.planner import Plan, Planned  # noqa: E402
from prunekit.measure.machine import machine_name  # noqa: E402
from prunekit.net.batch_size import with_batch_size  # noqa: E402
from prunekit.net.graph import Net  # noqa: E402
from prunekit.net.layers.base import TEST  # noqa: E402
from prunekit.net.weights import load_caffemodel, save_caffemodel  # noqa: E402

DEPLOY = REPO / "compression_experiments" / "vgg16" / "deploy.prototxt"


def set_deploy(path: Path) -> None:
    global DEPLOY
    DEPLOY = path.resolve()


def random_weights(path: Path) -> None:
    net = Net(with_batch_size(caffe.read_net_prototxt(DEPLOY), 1), TEST, source=str(DEPLOY))
    he_normal(net, seed=0)
    save_caffemodel(net, path)


def masked_weights(dense: Path, plan_json: dict, sens: dict, out: Path) -> None:
    net = Net(with_batch_size(caffe.read_net_prototxt(DEPLOY), 1), TEST, source=str(DEPLOY))
    load_caffemodel(net, dense)
    items = [Planned(**i) for i in plan_json["items"]]
    apply_plan(net, Plan(items, plan_json["speedup"], 0, 0, 0), sens["unit"], sens["criterion"])
    save_caffemodel(net, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speedup", type=float, default=2.0)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--rounds", type=int, default=5, help="prunekit speedup rounds")
    ap.add_argument("--iterations", type=int, default=3, help="prunekit speedup iterations")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--model", type=Path, default=DEPLOY,
                    help="deploy prototxt (default VGG-16's; another one only to smoke-test)")
    args = ap.parse_args(argv)
    set_deploy(args.model)
    work = args.work or Path(tempfile.mkdtemp(prefix="plan_latency_"))
    work.mkdir(parents=True, exist_ok=True)
    dense, sens_path = work / "vgg16_he.caffemodel", work / "sensitivity.json"
    nhwc = ["--channels-last"] if args.channels_last else []
    t0 = time.perf_counter()
    random_weights(dense)
    mt.cli(["sensitivity", "--model", str(DEPLOY), "--weights", str(dense), "--unit", "Channel",
            "--ratios", "0.1:0.9:0.1", "--iterations", "1", "--batch", "1",
            "--timing-iterations", "0", "--out", str(sens_path)])
    t_sens = time.perf_counter() - t0
    plan_json_path = work / "plan.json"
    planned = mt.cli(["plan", "--sensitivity", str(sens_path), "--speedup", str(args.speedup),
                      "--by", "latency", "--model", str(DEPLOY), "--weights", str(dense),
                      "--batch", str(args.batch), "--out", str(work / "planned.prototxt"),
                      "--json", str(plan_json_path), *nhwc]).stdout
    print(planned, flush=True)
    t_plan = time.perf_counter() - t0 - t_sens
    plan_json, sens = json.loads(plan_json_path.read_text()), json.loads(sens_path.read_text())
    masked = work / "masked.caffemodel"
    masked_weights(dense, plan_json, sens, masked)
    small_model, small_weights = work / "compacted.prototxt", work / "compacted.caffemodel"
    mt.cli(["compact", "--model", str(DEPLOY), "--weights", str(masked), "--out-model",
            str(small_model), "--out-weights", str(small_weights)])
    mt.cli(["speedup", "--model", str(small_model), "--weights", str(small_weights),
            "--vs-model", str(DEPLOY), "--vs-weights", str(masked), "--batch", str(args.batch),
            "--rounds", str(args.rounds), "--iterations", str(args.iterations), "--json",
            str(work / "speedup.json"), *nhwc])
    result = json.loads((work / "speedup.json").read_text())
    write(args, argv, plan_json, result, t_sens, t_plan)
    return 0


def write(args, argv, plan_json: dict, result: dict, t_sens: float, t_plan: float) -> None:
    stamp = datetime.now(timezone.utc)
    machine = machine_name(torch.device("cpu"))
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")
    tag = f"b{args.batch}_s{args.speedup:g}" + ("_nhwc" if args.channels_last else "")
    out = REPO / "benchmarks" / "results" / f"{stamp:%Y-%m-%dT%H%MZ}_{slug}_plan_latency_vgg16_{tag}"
    command = "python benchmarks/plan_latency_vgg16.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    measured = result["measured_forward"]
    within = abs(measured / args.speedup - 1) <= 0.10
    record = {"date": stamp.isoformat(timespec="seconds"), "machine": machine,
              "torch": torch.__version__, "command": command.strip(), "batch": args.batch,
              "channels_last": args.channels_last, "requested": args.speedup,
              "measured_forward": measured, "within_10_percent": within,
              "theoretical_conv_macs": result["theoretical"],
              "forward_ms": result["forward_ms"], "vs_forward_ms": result["vs_forward_ms"],
              "planner_measured": plan_json.get("measured"), "planner_rounds": plan_json.get("history"),
              "ratios": {i["name"]: i["ratio"] for i in plan_json["items"]},
              "sensitivity_s": t_sens, "plan_s": t_plan}
    Path(f"{out}.json").write_text(json.dumps(record, indent=1) + "\n")
    ratios = ", ".join(f"{k} {v:.1f}" for k, v in record["ratios"].items())
    lines = [f"`prunekit plan --by latency` on VGG-16 (random He weights), {stamp:%Y-%m-%d %H:%M} UTC, "
             f"{machine}, torch {torch.__version__}, batch {args.batch}"
             f"{', NHWC' if args.channels_last else ''}; `{command.strip()}`.", "",
             "| requested | measured after compact (prunekit speedup, forward) | within 10% | "
             "theoretical (conv MACs) | ms dense -> compacted | planner's own rounds (target, measured) |",
             "|---|---|---|---|---|---|",
             f"| {args.speedup:.2f}x | {measured:.2f}x | {'yes' if within else 'no'} | "
             f"{result['theoretical']:.2f}x | {result['vs_forward_ms']:.1f} -> {result['forward_ms']:.1f} | "
             + ", ".join(f"({t:.2f}, {m:.2f})" for t, m in plan_json.get("history", [])) + " |",
             "", f"Ratios (Channel, l1): {ratios}."]
    Path(f"{out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}.json and .md")


if __name__ == "__main__":
    sys.exit(main())

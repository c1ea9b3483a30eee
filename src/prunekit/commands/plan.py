"""``prunekit plan --sensitivity S.json --speedup 4 [--by macs|latency] --model train_val.prototxt
--out planned.prototxt``: per-layer prune_ratios at the least predicted accuracy loss.

``--by macs`` plans against conv MACs (:mod:`prunekit.analysis.planner`); ``--by latency``
against measured forward times on this machine at ``--batch``, then compacts and times the plan
and corrects it until the measured speedup is within 3% (or the rounds run out;
:mod:`prunekit.analysis.latency_plan`). The ratios go into a copy of ``--model`` as
``prune_param`` blocks; the summary table goes to stdout, ``--json`` also writes it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from prunekit import caffe
from prunekit.analysis.latency_plan import plan_by_latency
from prunekit.analysis.masking import he_normal
from prunekit.analysis.planner import format_plan, plan
from prunekit.analysis.prune_params import write_planned_prototxt
from prunekit.atomic import atomic_write_text
from prunekit.commands.flags import flag
from prunekit.commands.speedup import build
from prunekit.device import resolve_device
from prunekit.errors import PrunekitError
from prunekit.net.batch_size import with_batch_size
from prunekit.net.layers.base import TEST
from prunekit.progress_bar import ProgressBar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flag(parser, "sensitivity", required=True, help="S.json of prunekit sensitivity")
    flag(parser, "speedup", type=float, required=True, help="target speedup (e.g. 4)")
    flag(parser, "by", default="macs", help="macs (theoretical conv MACs, default) or latency "
         "(measured forward time on this machine, checked after compaction)")
    flag(parser, "model", required=True, help="train_val.prototxt to copy with prune_param blocks")
    flag(parser, "out", required=True, help="planned prototxt to write")
    flag(parser, "deploy", help="--by latency: the prototxt to time (default --model)")
    flag(parser, "weights", help="--by latency: .caffemodel (default: random He-normal weights)")
    flag(parser, "batch", type=int, help="--by latency: batch size to time at")
    flag(parser, "gpu", help="--by latency: GPU id; absent: CPU")
    flag(parser, "channels_last", action="store_true", help="--by latency: time NHWC")
    flag(parser, "json", help="also write the plan as JSON to this file")


def run(args: argparse.Namespace) -> int:
    return run_plan(args.sensitivity, args.speedup, args.by, args.model, args.out,
                    args.weights, args.batch, args.gpu, args.channels_last, args.json,
                    args.deploy)


def read_sensitivity(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise PrunekitError(f"--sensitivity {path}: cannot read it ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise PrunekitError(f"--sensitivity {path}: not JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(data, dict) or not data.get("curves"):
        raise PrunekitError(f"--sensitivity {path}: no 'curves'; expected the JSON written by "
                            "prunekit sensitivity --out")
    return data


def run_plan(sensitivity: str, speedup: float, by: str, model: str, out: str,
             weights: str | None = None, batch: int | None = None, gpu: str | None = None,
             channels_last: bool = False, json_out: str | None = None,
             deploy: str | None = None) -> int:
    if by not in ("macs", "latency"):
        raise PrunekitError(f"--by {by}: expected macs or latency")
    data = read_sensitivity(sensitivity)
    extra = {}
    if by == "macs":
        costs = {c["name"]: float(c["macs"]) for c in data["curves"]}
        result = plan(data, costs, float(data["total_conv_macs"]) - sum(costs.values()), speedup)
    else:
        result, extra = _latency(data, speedup, deploy or model, weights, batch, gpu,
                                 channels_last)
    layers = write_planned_prototxt(model, out, result)
    print(format_plan(result, by))
    if extra:
        print(f"measured after prunekit compact: {extra['measured']:.2f}x forward "
              f"({extra['dense_ms']:.2f} ms -> {extra['compacted_ms']:.2f} ms per batch of "
              f"{extra['batch']}); rounds (model target, measured): "
              + ", ".join(f"({t:.2f}, {m:.2f})" for t, m in extra["history"]))
    if json_out:
        record = {"sensitivity": sensitivity, "by": by, "speedup": speedup, "model": model,
                  "out": out, "items": [asdict(i) for i in result.items],
                  "predicted_speedup": result.predicted_speedup,
                  "predicted_loss": result.predicted_loss, **extra}
        atomic_write_text(json_out, json.dumps(record, indent=1) + "\n")
    print(f"Wrote {out} (prune_ratio of {len(layers)} layers)")
    return 0


def _latency(data: dict, speedup: float, model: str, weights, batch, gpu, channels_last):
    param = caffe.read_net_prototxt(model)
    if batch:
        param = with_batch_size(param, batch)
    dense, _ = build(model, weights, TEST, batch, resolve_device(gpu), channels_last)
    if not weights:
        he_normal(dense)
    try:
        with ProgressBar(6, "plan --by latency", unit="rounds") as bar:
            found = plan_by_latency(param, dense, data, speedup, channels_last=channels_last,
                                    on_round=lambda t, m: bar.update())
    finally:
        dense.close()
    shape = next(iter(dense.blob_shapes.values()))
    return found.plan, {"measured": found.measured, "history": found.history,
                        "dense_ms": found.dense_ms, "compacted_ms": found.compacted_ms,
                        "batch": int(shape[0]), "channels_last": channels_last}

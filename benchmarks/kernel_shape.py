#!/usr/bin/env python3
"""5x5 vs 5x2 vs 2x5 kernels: measured against theoretical conv speedup (Huan Wang's notes).

The same net is built three times, with its 5x5 convolutions (every one of them) set to 5x5,
5x2 (kernel_h 5, kernel_w 2) and 2x5, random weights from the fillers; a padded axis of size 2
gets pad 0 (32 wide in, 31 out instead of 32: the MAC counts below are the real ones):

* ``lenet5``: compression_experiments/lenet5/deploy.prototxt (conv1 and conv2, pad 0);
* ``vggish``: a VGG-style stack on 32x32x3 inputs: 4 convs of 64 channels with pad 2, a 2x2 max
  pool after every second one, then one InnerProduct.

Each variant is timed by ``prunekit time`` (Caffe's per-layer benchmark, TRAIN phase) in
interleaved rounds (5x5, 5x2, 2x5, then the reverse order, ...), so load drifts hit all three
alike. The conv time of a run is the sum over Convolution layers of forward + backward, in ms
per batch; the table takes the median over rounds. Theoretical speedup = conv MACs of the 5x5
net / conv MACs of the variant (prunekit flops, per image); measured = conv ms of 5x5 / conv
ms of the variant; the last column is their ratio (the notes found 1.44x measured for 2.5x
theoretical on a CPU, i.e. 0.58).

    python benchmarks/kernel_shape.py                       # CPU, batch 64
    python benchmarks/kernel_shape.py --gpu 0 --batch 256   # a GPU

Writes benchmarks/results/<date>T<hhmm>Z_<machine>_kernel_shape_b<batch>.json/.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

from prunekit import caffe  # noqa: E402

SHAPES = ((5, 5), (5, 2), (2, 5))

VGGISH = """
name: "vggish"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 64 dim: 3 dim: 32 dim: 32 } } }
""" + "".join(f"""
layer {{ name: "conv{i}" type: "Convolution" bottom: "{b}" top: "conv{i}"
        convolution_param {{ num_output: 64 kernel_size: 5 pad: 2 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "relu{i}" type: "ReLU" bottom: "conv{i}" top: "conv{i}" }}
""" + (f"""layer {{ name: "pool{i}" type: "Pooling" bottom: "conv{i}" top: "pool{i}"
        pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
""" if i % 2 == 0 else "") for i, b in ((1, "data"), (2, "conv1"), (3, "pool2"), (4, "conv3"))) + """
layer { name: "ip1" type: "InnerProduct" bottom: "pool4" top: "ip1"
        inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
"""


def base_net(name: str):
    if name == "lenet5":
        return caffe.read_net_prototxt(REPO / "compression_experiments" / "lenet5" / "deploy.prototxt")
    return caffe.parse_net_text(VGGISH, "vggish")


def variant(name: str, shape: tuple[int, int], folder: Path) -> Path:
    """The net with every 5x5 convolution set to ``shape``, written to ``folder``."""
    net = base_net(name)
    for layer in net.layer:
        if layer.type == "Convolution":
            cp = layer.convolution_param
            del cp.kernel_size[:]
            cp.kernel_h, cp.kernel_w = shape
            if cp.pad:  # a shrunk axis gets the "same"-style pad of its new size (2 -> 0)
                cp.pad_h, cp.pad_w = (min(cp.pad[0], (k - 1) // 2) for k in shape)
                del cp.pad[:]
    path = folder / f"{name}_{shape[0]}x{shape[1]}.prototxt"
    caffe.write_prototxt(path, net)
    return path


def cli(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "prunekit.cli", *args], cwd=REPO,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"prunekit {shlex.join(args)} failed:\n{proc.stderr[-3000:]}")


def conv_macs(model: Path, folder: Path) -> int:
    out = folder / "flops.json"
    cli(["flops", "--model", str(model), "--json", str(out)])
    return sum(l["macs"] for l in json.loads(out.read_text())["layers"] if l["type"] == "Convolution")


def conv_ms(model: Path, folder: Path, args) -> tuple[float, dict]:
    """Σ over conv layers of forward + backward (ms per batch) of one ``prunekit time`` run."""
    out = folder / "time.json"
    cmd = ["time", "--model", str(model), "--iterations", str(args.iterations), "--batch_size",
           str(args.batch), "--json", str(out)]
    cli(cmd + (["--gpu", str(args.gpu)] if args.gpu is not None else []))
    record = json.loads(out.read_text())
    convs = {l.name for l in base_net_layers(model) if l.type == "Convolution"}
    total = sum(l["forward_ms"] + l["backward_ms"] for l in record["layers"] if l["name"] in convs)
    return total, record


def base_net_layers(model: Path):
    return list(caffe.read_net_prototxt(model).layer)


def measure(name: str, folder: Path, args) -> tuple[list[dict], dict]:
    models = {shape: variant(name, shape, folder) for shape in SHAPES}
    times: dict[tuple[int, int], list[float]] = {shape: [] for shape in SHAPES}
    record = {}
    for r in range(args.rounds):
        for shape in (SHAPES if r % 2 == 0 else tuple(reversed(SHAPES))):
            ms, record = conv_ms(models[shape], folder, args)
            times[shape].append(ms)
    macs = {shape: conv_macs(models[shape], folder) for shape in SHAPES}
    ref = statistics.median(times[SHAPES[0]])
    rows = []
    for shape in SHAPES:
        med = statistics.median(times[shape])
        theory, measured = macs[SHAPES[0]] / macs[shape], ref / med
        rows.append({"net": name, "kernel": f"{shape[0]}x{shape[1]}", "conv_macs": macs[shape],
                     "conv_ms": med, "conv_ms_rounds": times[shape], "theoretical": theory,
                     "measured": measured, "measured_over_theoretical": measured / theory})
    return rows, record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", default=["lenet5", "vggish"], choices=["lenet5", "vggish"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=10, help="timed passes per prunekit time run")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--gpu", type=int, help="CUDA device id (default: CPU)")
    args = ap.parse_args(argv)
    rows, record = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.nets:
            new_rows, record = measure(name, Path(tmp), args)
            rows += new_rows
    lines = ["| net | kernel | conv MACs / image | conv fwd+bwd ms / batch (median) | theoretical "
             "speedup | measured speedup | measured / theoretical |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['net']} | {r['kernel']} | {r['conv_macs']:,} | {r['conv_ms']:.2f} | "
              f"{r['theoretical']:.2f}x | {r['measured']:.2f}x | {r['measured_over_theoretical']:.2f} |"
              for r in rows]
    print("\n".join(lines))
    stamp = datetime.now(timezone.utc)
    machine = record.get("device_name", "unknown")
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")
    out = REPO / "benchmarks" / "results" / f"{stamp:%Y-%m-%dT%H%MZ}_{slug}_kernel_shape_b{args.batch}"
    command = "python benchmarks/kernel_shape.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    out.with_suffix(".json").write_text(json.dumps(
        {"date": stamp.isoformat(timespec="seconds"), "machine": machine,
         "torch": record.get("torch"), "command": command.strip(), "batch": args.batch,
         "iterations": args.iterations, "rounds": args.rounds, "rows": rows}, indent=1) + "\n")
    head = [f"Kernel shapes, {stamp:%Y-%m-%d %H:%M} UTC, {machine}, torch {record.get('torch')}, "
            f"batch {args.batch}, TRAIN phase, `{command.strip()}`; conv layers only, median of "
            f"{args.rounds} interleaved rounds of {args.iterations} iterations.", ""]
    out.with_suffix(".md").write_text("\n".join(head + lines) + "\n")
    print(f"wrote {out}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A GL_Shape-learnt kernel made physically smaller where ``prunekit compact`` cannot, and timed.

``prunekit compact`` trims zero kernel edges only where Caffe's symmetric ``pad`` can express the
result; LeNet-5's conv2 has pad 0, so its learnt 2x5 (or 5x2) kernel stays 5x5 with zeros. With
pad 0 and stride 1 the smaller kernel is still exact if the conv reads a *cropped* input: taps
rows a..a+h'−1 and columns b..b+w'−1 of the kernel see input rows a.. and columns b.., so
``Slice`` layers (with a ``Silence`` for the unused parts) crop the bottom to
(H_out + h' − 1) × (W_out + w' − 1) from (a, b) and the conv gets kernel h'×w', pad 0.

This script builds that net for the deploy and the train_val prototxt, slices the weights,
checks with ``prunekit test`` that the cropped model scores exactly what the masked one does,
and times it against the masked model with ``prunekit speedup`` (interleaved rounds; theoretical
= conv MAC ratio, measured = forward-time ratio, ms per batch):

    python benchmarks/kernel_shape_learned.py --weights W.caffemodel [--layer conv2] [--batch 64]

W defaults to none: pass the final model of solver_gl_shape.prototxt. Writes
benchmarks/results/<date>T<hhmm>Z_<machine>_kernel_shape_learned_b<batch>.json/.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shlex
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LENET = REPO / "compression_experiments" / "lenet5"

from prunekit import caffe  # noqa: E402
from prunekit.net.graph import Net  # noqa: E402
from prunekit.net.layers.base import TEST  # noqa: E402


def cli(args: list[str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "prunekit.cli", *args], cwd=REPO,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"prunekit {shlex.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stderr


def window(w: np.ndarray) -> tuple[int, int, int, int]:
    """(a, h, b, w) of the taps that are non-zero in some filter and channel."""
    taps = (w != 0).any(axis=(0, 1))
    rows, cols = np.nonzero(taps.any(1))[0], np.nonzero(taps.any(0))[0]
    return int(rows[0]), int(rows[-1] - rows[0] + 1), int(cols[0]), int(cols[-1] - cols[0] + 1)


def crop_layers(name: str, bottom: str, shape, win, kernel) -> tuple[list, str]:
    """Slice (+ Silence) layers that crop ``bottom`` for the smaller kernel; (layers, new bottom)."""
    a, h, b, w = win
    layers, current = [], bottom
    for axis, start, keep, k in ((2, a, h, kernel[0]), (3, b, w, kernel[1])):
        size = shape[axis]
        length = size - k + 1 + keep - 1
        points = [p for p in (start, start + length) if 0 < p < size]
        if not points:
            continue
        slice_layer = caffe.caffe_pb2.LayerParameter(name=f"{name}_crop{axis}", type="Slice",
                                                     bottom=[current])
        slice_layer.slice_param.axis = axis
        slice_layer.slice_param.slice_point.extend(points)
        tops = [f"{name}_crop{axis}_{i}" for i in range(len(points) + 1)]
        slice_layer.top.extend(tops)
        kept = tops[1] if start > 0 else tops[0]
        silence = caffe.caffe_pb2.LayerParameter(name=f"{name}_crop{axis}_unused", type="Silence",
                                                 bottom=[t for t in tops if t != kept])
        layers += [slice_layer, silence]
        current = kept
    return layers, current


def cropped(param, layer_name: str, win, phase: int):
    """``param`` with ``layer_name`` reading a cropped bottom through a kernel of the window."""
    net = Net(param, phase)
    try:
        shapes = dict(net.blob_shapes)
    finally:
        net.close()
    out = type(param)()
    out.CopyFrom(param)
    del out.layer[:]
    for lp in param.layer:
        if lp.name == layer_name:
            cp = lp.convolution_param
            kernel = (cp.kernel_h or cp.kernel_size[0], cp.kernel_w or cp.kernel_size[0])
            if (cp.pad and cp.pad[0]) or cp.pad_h or cp.pad_w or any(s != 1 for s in cp.stride):
                raise SystemExit(f"{layer_name}: only pad 0 and stride 1 are cropped here")
            extra, bottom = crop_layers(lp.name, lp.bottom[0], shapes[lp.bottom[0]], win, kernel)
            out.layer.extend(extra)
            new = out.layer.add()
            new.CopyFrom(lp)
            new.bottom[0] = bottom
            del new.convolution_param.kernel_size[:]
            new.convolution_param.kernel_h, new.convolution_param.kernel_w = win[1], win[3]
        else:
            out.layer.add().CopyFrom(lp)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--layer", default="conv2")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=10)
    args = ap.parse_args(argv)
    model = caffe.read_caffemodel(args.weights)
    layer = next(lp for lp in model.layer if lp.name == args.layer)
    w = caffe.blob_to_array(layer.blobs[0])
    win = window(w)
    a, h, b, wd = win
    small_w = np.ascontiguousarray(w[:, :, a:a + h, b:b + wd])
    layer.blobs[0].CopyFrom(caffe.array_to_blob(small_w))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small_weights = tmp / "small.caffemodel"
        caffe.write_caffemodel(small_weights, model)
        deploy = caffe.read_net_prototxt(LENET / "deploy.prototxt")
        caffe.write_prototxt(tmp / "deploy.prototxt", cropped(deploy, args.layer, win, TEST))
        train_val = caffe.read_net_prototxt(LENET / "train_val.prototxt")
        with contextlib.chdir(REPO):
            caffe.write_prototxt(tmp / "train_val.prototxt", cropped(train_val, args.layer, win, TEST))
        acc = [float(re.findall(r"\] accuracy = ([0-9.]+)", cli(
            ["test", "--model", str(m), "--weights", str(wt), "--iterations", "10"]))[-1])
            for m, wt in ((LENET / "train_val.prototxt", args.weights),
                          (tmp / "train_val.prototxt", small_weights))]
        if acc[0] != acc[1]:
            raise SystemExit(f"the cropped model scores {acc[1]}, the masked one {acc[0]}")
        cli(["speedup", "--model", str(tmp / "deploy.prototxt"), "--weights", str(small_weights),
             "--vs-model", str(LENET / "deploy.prototxt"), "--vs-weights", str(args.weights),
             "--batch", str(args.batch), "--rounds", str(args.rounds), "--iterations",
             str(args.iterations), "--json", str(tmp / "speedup.json")])
        sp = json.loads((tmp / "speedup.json").read_text())
    row = {"layer": args.layer, "kernel": f"{w.shape[2]}x{w.shape[3]} -> {h}x{wd}",
           "window": {"rows": [a, a + h], "cols": [b, b + wd]}, "accuracy": acc[1],
           **{k: sp[k] for k in ("conv_macs", "vs_conv_macs", "theoretical", "forward_ms",
                                 "vs_forward_ms", "measured_forward", "step_ms", "vs_step_ms",
                                 "measured_step")}}
    stamp = datetime.now(timezone.utc)
    machine = sp["device_name"]
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")
    out = REPO / "benchmarks" / "results" / f"{stamp:%Y-%m-%dT%H%MZ}_{slug}_kernel_shape_learned_b{args.batch}"
    command = "python benchmarks/kernel_shape_learned.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    out.with_suffix(".json").write_text(json.dumps(
        {"date": stamp.isoformat(timespec="seconds"), "machine": machine, "torch": sp["torch"],
         "command": command, "batch": args.batch, "row": row}, indent=1) + "\n")
    lines = [f"GL_Shape-learnt LeNet-5 {args.layer}, {stamp:%Y-%m-%d %H:%M} UTC, {machine}, "
             f"batch {args.batch}, `{command}`; cropped (Slice) + smaller kernel vs the masked "
             f"5x5 model, {args.rounds} interleaved rounds of {args.iterations} iterations.", "",
             "| layer | kernel | top-1 (both) | conv MACs / image | theoretical | forward ms | "
             "measured forward | fwd+bwd ms | measured fwd+bwd |", "|---|---|---|---|---|---|---|---|---|",
             f"| {args.layer} | {row['kernel']} | {100 * acc[1]:.1f}% | {sp['vs_conv_macs']:,} -> "
             f"{sp['conv_macs']:,} | {sp['theoretical']:.2f}x | {sp['vs_forward_ms']:.2f} -> "
             f"{sp['forward_ms']:.2f} | {sp['measured_forward']:.2f}x | {sp['vs_step_ms']:.2f} -> "
             f"{sp['step_ms']:.2f} | {sp['measured_step']:.2f}x |"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Learnt LeNet-5 kernel shapes (GL_Shape, Reg_Shape) compacted by ``prunekit compact`` and timed.

For each final model given, this script runs the real CLI:

1. ``prunekit compact`` on ``train_val_shape.prototxt`` and on ``deploy.prototxt`` — the learnt
   kernel window becomes a smaller ``kernel_h``×``kernel_w`` kernel; at LeNet-5's pad 0 the conv
   reads a crop of its input (``Slice`` + ``Silence`` layers, docs/compact.md);
2. ``prunekit test`` of the masked and the compacted train_val (1,000 embedded test digits): they
   must score the same;
3. ``prunekit speedup`` of the compacted deploy net against the masked 5x5 one, interleaved
   rounds; theoretical = conv MAC ratio, measured = forward (and forward+backward) time ratio,
   ms per batch.

    python benchmarks/kernel_shape_learned.py --weights W1.caffemodel [W2 ...] [--batch 64]

The weights are the final models of ``solver_gl_shape.prototxt`` / ``solver_reg_shape.prototxt``
(compression_experiments/lenet5/weights/). Writes
benchmarks/results/<date>T<hhmm>Z_<machine>_kernel_shape_learned_b<batch>.json/.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LENET = REPO / "compression_experiments" / "lenet5"


def cli(args: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "prunekit.cli", *args], cwd=REPO,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"prunekit {shlex.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc


def accuracy(model: Path, weights: Path) -> float:
    err = cli(["test", "--model", str(model), "--weights", str(weights),
               "--iterations", "10"]).stderr
    return float(re.findall(r"\] accuracy = ([0-9.]+)", err)[-1])


def kernel_change(compact_stdout: str, layer: str) -> str:
    """'50x20x5x5 -> 50x20x2x5' for ``layer`` from compact's report."""
    line = next(ln for ln in compact_stdout.splitlines() if ln.split()[:1] == [layer])
    shapes = re.findall(r"(\d+(?:x\d+)+)", line)
    return f"{shapes[0].split('x', 2)[2]} -> {shapes[1].split('x', 2)[2]}"


def measure(weights: Path, layer: str, tmp: Path, args) -> dict:
    stem = tmp / weights.stem
    out = {}
    for name, model in (("train_val", LENET / "train_val_shape.prototxt"),
                        ("deploy", LENET / "deploy.prototxt")):
        report = cli(["compact", "--model", str(model), "--weights", str(weights),
                      "--out-model", f"{stem}_{name}.prototxt",
                      "--out-weights", f"{stem}_{name}.caffemodel"]).stdout
        out.setdefault("kernel", kernel_change(report, layer))
    acc = (accuracy(LENET / "train_val_shape.prototxt", weights),
           accuracy(Path(f"{stem}_train_val.prototxt"), Path(f"{stem}_train_val.caffemodel")))
    if acc[0] != acc[1]:
        raise SystemExit(f"{weights}: the compacted model scores {acc[1]}, the masked {acc[0]}")
    cli(["speedup", "--model", f"{stem}_deploy.prototxt", "--weights", f"{stem}_deploy.caffemodel",
         "--vs-model", str(LENET / "deploy.prototxt"), "--vs-weights", str(weights),
         "--batch", str(args.batch), "--rounds", str(args.rounds),
         "--iterations", str(args.iterations), "--json", f"{stem}_speedup.json"])
    sp = json.loads(Path(f"{stem}_speedup.json").read_text())
    keys = ("conv_macs", "vs_conv_macs", "theoretical", "forward_ms", "vs_forward_ms",
            "measured_forward", "step_ms", "vs_step_ms", "measured_step", "device_name", "torch")
    return {"weights": str(weights), "accuracy": acc[1], **out, **{k: sp[k] for k in keys}}


def table(rows: list[dict], layer: str) -> list[str]:
    lines = ["| model | layer | kernel | top-1 (masked = compacted) | conv MACs / image | "
             "theoretical | forward ms | measured fwd | fwd+bwd ms | measured fwd+bwd | "
             "measured / theoretical (fwd) |", "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {Path(r['weights']).name} | {layer} | {r['kernel']} | {100 * r['accuracy']:.1f}% | "
            f"{r['vs_conv_macs']:,} -> {r['conv_macs']:,} | {r['theoretical']:.2f}x | "
            f"{r['vs_forward_ms']:.2f} -> {r['forward_ms']:.2f} | {r['measured_forward']:.2f}x | "
            f"{r['vs_step_ms']:.2f} -> {r['step_ms']:.2f} | {r['measured_step']:.2f}x | "
            f"{r['measured_forward'] / r['theoretical']:.2f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, nargs="+", required=True)
    ap.add_argument("--layer", default="conv2")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=10)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(w.resolve(), args.layer, Path(tmp), args) for w in args.weights]
    stamp = datetime.now(timezone.utc)
    machine = rows[0]["device_name"]
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")
    out = HERE / "results" / f"{stamp:%Y-%m-%dT%H%MZ}_{slug}_kernel_shape_learned_b{args.batch}"
    command = "python benchmarks/kernel_shape_learned.py " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    out.with_suffix(".json").write_text(json.dumps(
        {"date": stamp.isoformat(timespec="seconds"), "machine": machine,
         "torch": rows[0]["torch"], "command": command, "batch": args.batch, "rows": rows},
        indent=1) + "\n")
    lines = [f"Learnt LeNet-5 kernel shapes, {stamp:%Y-%m-%d %H:%M} UTC, {machine}, batch "
             f"{args.batch}, `{command}`: `prunekit compact` (smaller kernel reading a Slice "
             f"crop) vs the masked 5x5 model, {args.rounds} interleaved rounds of "
             f"{args.iterations} iterations, ms per batch.", ""] + table(rows, args.layer)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

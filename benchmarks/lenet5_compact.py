#!/usr/bin/env python3
"""A LeNet-5 pruned by the lenet5 experiment, compacted: same accuracy, smaller, faster.

Takes the best model of a pruning run (``sh compression_experiments/lenet5/train.sh`` for
Reg_Col columns, ``SOLVER=solver_row.prototxt sh ...`` for Reg_Row filters; the acc log's
``Pruning done. Best model:`` line names it; the newest is the default) and runs the real CLI on
it, as a user would:

1. ``prunekit compact`` on train_val.prototxt (for accuracy) and on deploy.prototxt (for timing),
   with ``--column-conv`` (default auto), ``--batch`` and ``--channels-last`` as given: column-
   pruned convs may become ColumnConvolution layers; the per-layer choice and both forms' times
   (from compact's report, i.e. measured in that run) are recorded, and the benchmark checks that
   every layer auto made a column layer was faster in that form;
2. ``prunekit test`` on the masked and the compacted model: top-1 on the 1,000 embedded test
   digits (10 batches of 100), which must be equal;
3. ``prunekit flops`` on both: conv MACs per image and parameters;
4. ``prunekit speedup`` compacted vs masked deploy nets at ``--batch`` (interleaved rounds,
   medians; forward and forward+backward), and ``prunekit time`` on each (Caffe's per-layer
   table; its "Average Forward pass" line is recorded).

Times are ms per batch of ``--batch`` 28x28 images, on the CPU unless ``--gpu``.

    python benchmarks/lenet5_compact.py [--weights W] [--batch 64] [--gpu 0] [--channels-last]
        [--column-conv auto|always|never]

Writes benchmarks/results/<date>T<hhmm>Z_<machine>_lenet5_compact_b<batch>[_cols-<mode>].json/.md
(no suffix for ``--column-conv never``, the file name runs before the column form had).
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
EXP = REPO / "compression_experiments" / "lenet5"
sys.path.insert(0, str(REPO / "src"))

from prunekit.measure.machine import machine_name  # noqa: E402


def cli(*args: str) -> subprocess.CompletedProcess:
    """``prunekit <args>`` in the repo root; stops with its stderr when it fails."""
    run = subprocess.run([sys.executable, "-m", "prunekit.cli", *args], cwd=REPO,
                         capture_output=True, text=True)
    if run.returncode:
        sys.exit(f"prunekit {' '.join(args)} failed:\n{run.stderr}{run.stdout}")
    return run


def best_model() -> Path:
    """The best model named by the newest acc log of the lenet5 experiment."""
    for log in sorted(EXP.glob("weights/log_*_acc.txt"), reverse=True):
        found = re.findall(r"Pruning done\. Best model: (\S+)", log.read_text())
        if found:
            path = Path(found[-1])
            return path if path.is_absolute() else REPO / path
    sys.exit("no 'Pruning done. Best model:' line in compression_experiments/lenet5/weights/"
             "log_*_acc.txt: run SOLVER=solver_row.prototxt sh compression_experiments/lenet5/"
             "train.sh first, or pass --weights")


def accuracy(model: Path, weights: Path) -> float:
    err = cli("test", "--model", str(model), "--weights", str(weights),
              "--iterations", "10").stderr
    return float(re.findall(r"accuracy = ([\d.]+)", err)[-1])


def flops(model: Path, weights: Path) -> dict:
    return json.loads(cli("flops", "--model", str(model), "--weights", str(weights),
                          "--json").stdout)


def forward_ms(model: Path, weights: Path, batch: int, gpu: list[str],
               layout: list[str]) -> float:
    out = cli("time", "--model", str(model), "--weights", str(weights), "--phase", "TEST",
              "--batch_size", str(batch), "--iterations", "200", *gpu, *layout)
    text = out.stdout + out.stderr
    return float(re.findall(r"Average Forward pass: ([\d.]+) ms", text)[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", help="masked caffemodel (default: the experiment's best model)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--gpu", default=None)
    p.add_argument("--channels-last", action="store_true",
                   help="compact, speedup and time with --channels-last (NHWC)")
    p.add_argument("--column-conv", default="auto", choices=("auto", "always", "never"),
                   help="prunekit compact --column-conv (default auto)")
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args()
    masked = Path(args.weights).resolve() if args.weights else best_model()
    gpu = ["--gpu", args.gpu] if args.gpu is not None else []
    layout = ["--channels-last"] if args.channels_last else []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        small = {}
        reports = {}
        for kind in ("train_val", "deploy"):
            model = EXP / f"{kind}.prototxt"
            small[kind] = (t / f"{kind}_small.prototxt", t / f"{kind}_small.caffemodel")
            reports[kind] = cli("compact", "--model", str(model), "--weights", str(masked),
                                "--out-model", str(small[kind][0]),
                                "--out-weights", str(small[kind][1]),
                                "--column-conv", args.column_conv, "--batch", str(args.batch),
                                *layout).stdout
            print(reports[kind])
        report = reports["deploy"]
        realised = float(re.search(r"realised speedup ([\d.]+)x", report).group(1))
        forms = column_forms(report, small["deploy"][0])
        # the accuracy model is compacted (and auto-timed) separately: its forms may differ
        forms_tv = column_forms(reports["train_val"], small["train_val"][0])
        acc = (accuracy(EXP / "train_val.prototxt", masked), accuracy(*small["train_val"]))
        f_masked, f_small = flops(EXP / "deploy.prototxt", masked), flops(*small["deploy"])
        cli("speedup", "--model", str(small["deploy"][0]), "--weights", str(small["deploy"][1]),
            "--vs-model", str(EXP / "deploy.prototxt"), "--vs-weights", str(masked),
            "--batch", str(args.batch), "--rounds", str(args.rounds), "--iterations", "50",
            "--json", str(t / "speedup.json"), *gpu, *layout)
        speed = json.loads((t / "speedup.json").read_text())
        time_ms = (forward_ms(EXP / "deploy.prototxt", masked, args.batch, gpu, layout),
                   forward_ms(*small["deploy"], args.batch, gpu, layout))
        sizes = (masked.stat().st_size, small["deploy"][1].stat().st_size)
    write(args, masked, realised, acc, f_masked, f_small, speed, time_ms, sizes, forms, forms_tv)


#: compact's per-layer note of the column stage (column_form.py: ColumnChoice.line).
NOTE = re.compile(r"^(\S+)\s+(\S+)\s.*\n(?:    .*\n)*?    (column form|dense form kept) \((\d+) "
                  r"of (\d+) weight columns kept; --column-conv (\w+)(?:: column ([\d.]+) ms vs "
                  r"dense ([\d.]+) ms per batch of (\d+), (\w+))?", re.M)


def column_forms(report: str, model: Path) -> list[dict]:
    """Each conv the column stage looked at: form, kept/total columns, both times; checked:
    the written prototxt has the form the report names, and auto made a column layer only
    where it measured the column form faster."""
    from prunekit import caffe

    types = {lp.name: lp.type for lp in caffe.read_net_prototxt(model).layer}
    rows = []
    for m in NOTE.finditer(report):
        name, _, form, kept, total, mode, col_ms, dense_ms, batch, layout = m.groups()
        row = {"layer": name, "form": "column" if form == "column form" else "dense",
               "kept_columns": int(kept), "columns": int(total), "mode": mode,
               "column_ms": float(col_ms) if col_ms else None,
               "dense_ms": float(dense_ms) if dense_ms else None,
               "batch": int(batch) if batch else None, "layout": layout}
        expected = "ColumnConvolution" if row["form"] == "column" else "Convolution"
        if types.get(name) != expected:
            sys.exit(f"check failed: compact reported {name} as {form}, the prototxt has "
                     f"{types.get(name)}")
        if mode == "auto" and (row["form"] == "column") != (row["column_ms"] < row["dense_ms"]):
            sys.exit(f"check failed: auto chose the {row['form']} form of {name} against its "
                     f"own times {row}")
        rows.append(row)
    return rows


#: What is kept of `prunekit speedup --json` (compacted = the model, masked = "vs").
SPEEDUP_KEYS = ("theoretical", "forward_ms", "vs_forward_ms", "measured_forward", "step_ms",
                "vs_step_ms", "measured_step", "rounds", "iterations")


def write(args, masked, realised, acc, f_masked, f_small, speed, time_ms, sizes, forms,
          forms_tv) -> None:
    import torch
    device = torch.device(f"cuda:{args.gpu}" if args.gpu is not None else "cpu")
    machine = machine_name(device)
    now = datetime.now(timezone.utc)
    command = " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}",
                        *(shlex.quote(a) for a in sys.argv[1:])])
    row = {
        "date": now.isoformat(timespec="minutes"), "machine": machine, "batch": args.batch,
        "masked_weights": str(masked.relative_to(REPO) if masked.is_relative_to(REPO) else masked),
        "top1_masked": acc[0], "top1_compacted": acc[1],
        "conv_macs_dense": f_masked["totals"]["conv_macs"],
        "conv_macs_compacted": f_small["totals"]["conv_macs"],
        "params_dense": f_masked["totals"]["params"], "params_compacted": f_small["totals"]["params"],
        "caffemodel_bytes": sizes, "compact_realised_speedup": realised,
        "speedup": {k: speed[k] for k in SPEEDUP_KEYS}, "time_forward_ms": time_ms,
        "speedup_layers": speed["layers"], "column_conv": args.column_conv,
        "channels_last": args.channels_last, "column_forms": forms,
        "column_forms_train_val": [{k: f[k] for k in ("layer", "form")} for f in forms_tv],
        "torch": torch.__version__, "command": command,
        "units": "MACs per image; ms per batch of --batch images",
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.column_conv == "never" else f"_cols-{args.column_conv}"
    suffix += "_nhwc" if args.channels_last else ""
    stem = out / (f"{now:%Y-%m-%dT%H%MZ}_{machine.lower().replace(' ', '-')}_lenet5_compact_"
                  f"b{args.batch}{suffix}")
    stem.with_suffix(".json").write_text(json.dumps(row, indent=2) + "\n")
    header = ("| date | machine | batch | top-1 masked → compacted | conv MACs dense → compacted | "
              "params | caffemodel bytes | theoretical | measured fwd | measured fwd+bwd | "
              "`prunekit time` fwd ms masked → compacted | command |")
    line = (f"| {now.date()} | {machine} | {args.batch} | {acc[0]:.4f} → {acc[1]:.4f} | "
            f"{row['conv_macs_dense']:,} → {row['conv_macs_compacted']:,} | "
            f"{row['params_dense']:,} → {row['params_compacted']:,} | {sizes[0]:,} → {sizes[1]:,} | "
            f"{speed['theoretical']:.2f}x | {speed['measured_forward']:.2f}x | "
            f"{speed['measured_step']:.2f}x | {time_ms[0]:.3f} → {time_ms[1]:.3f} | "
            f"`{command}` |")
    table = header + "\n|" + "---|" * 12 + "\n" + line + "\n"
    if forms:
        table += ("\n| layer | form | kept columns | column ms | dense ms | batch, layout |\n"
                  "|---|---|---|---|---|---|\n")
        for f in forms:
            table += (f"| {f['layer']} | {f['form']} ({f['mode']}) | {f['kept_columns']} of "
                      f"{f['columns']} | {_ms(f['column_ms'])} | {_ms(f['dense_ms'])} | "
                      f"{f['batch'] or '-'}, {f['layout'] or '-'} |\n")
        table += "\n(column/dense ms: forward per batch, measured by `prunekit compact` in this run)\n"
    stem.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {stem}.json and .md")


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


if __name__ == "__main__":
    main()

"""Top-1 accuracy of LeNet-5 models on the 1,000 embedded MNIST test digits, through the CLI.

Scores (1) the Caffe_IncReg fixture baseline in the fixture's own train_val.prototxt and (2) our
baseline made by `sh compression_experiments/lenet5/train.sh` (when it exists), with
`prunekit test --iterations 10` (10 batches of 100). Prints a table and writes
benchmarks/results/<date>_<machine>_accuracy_lenet5.{json,md}. Run from the repository root after
the README's first command.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from prunekit.measure.machine import machine_name

REPO = Path(__file__).resolve().parents[1]
FIXTURE = (REPO / ".." / "shared" / "fixtures" / "caffe_increg_lenet5").resolve()
MODELS = {
    "Caffe_IncReg fixture baseline": (FIXTURE / "train_val.prototxt", FIXTURE / "baseline_lenet5.caffemodel"),
    "prunekit lenet5 baseline (train.sh)": (REPO / "compression_experiments/lenet5/train_val.prototxt",
                                            REPO / "compression_experiments/lenet5/weights/baseline_lenet5.caffemodel"),
}


def score(model: Path, weights: Path) -> float:
    cmd = [sys.executable, "-m", "prunekit.cli", "test", "--model", str(model), "--weights",
           str(weights), "--iterations", "10"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
    return float(re.search(r"\] accuracy = ([\d.]+)\n", proc.stderr).group(1))


def main() -> int:
    if not (REPO / "data/mnist/mnist_test_lmdb").is_dir():
        subprocess.run([sys.executable, "-m", "prunekit.cli", "data", "mnist", "--out", "data/mnist"],
                       cwd=REPO, check=True)
    rows = []
    for name, (model, weights) in MODELS.items():
        if weights.is_file():
            rows.append({"model": name, "weights": str(weights.relative_to(REPO.parent)),
                         "accuracy": score(model, weights)})
    print(f"{'model':40s} accuracy (1,000 test digits)")
    for row in rows:
        print(f"{row['model']:40s} {row['accuracy']:.4f}")
    stamp = datetime.now(timezone.utc)
    machine = machine_name(torch.device("cpu"))
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")
    out = REPO / "benchmarks" / "results" / f"{stamp:%Y-%m-%dT%H%MZ}_{slug}_accuracy_lenet5"
    command = "python benchmarks/accuracy_lenet5.py"
    record = {"date": stamp.isoformat(timespec="seconds"), "machine": machine,
              "torch": torch.__version__, "command": command, "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    lines = ["| date | model | accuracy (1,000 digits) | machine | command |", "|---|---|---|---|---|"]
    lines += [f"| {stamp:%Y-%m-%d} | {r['model']} | {r['accuracy']:.4f} | {machine} | `{command}` |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

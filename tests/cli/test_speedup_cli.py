"""`prunekit speedup` through the real CLI: a compacted LeNet-5 against its masked original;
the theoretical column is the conv-MAC ratio that `prunekit flops` reports for the two files."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import run_cli
from test_compact_cli import _masked_lenet


def _conv_macs(workdir: Path, model: str, weights: str) -> int:
    proc = run_cli(["flops", "--model", model, "--weights", weights, "--json"], workdir, check=True)
    return json.loads(proc.stdout)["totals"]["conv_macs"]


def test_speedup_of_compacted_over_masked(workdir: Path) -> None:
    _masked_lenet(workdir)
    run_cli(["compact", "--model", "train_val.prototxt", "--weights", "masked.caffemodel",
             "--out-model", "small.prototxt", "--out-weights", "small.caffemodel"], workdir,
            check=True)
    proc = run_cli(["speedup", "--model", "small.prototxt", "--weights", "small.caffemodel",
                    "--vs-model", "train_val.prototxt", "--vs-weights", "masked.caffemodel",
                    "--batch", "8", "--iterations", "2", "--rounds", "2", "--json", "s.json"],
                   workdir, check=True)
    data = json.loads((workdir / "s.json").read_text())
    small = _conv_macs(workdir, "small.prototxt", "small.caffemodel")
    dense = _conv_macs(workdir, "train_val.prototxt", "masked.caffemodel")
    assert data["conv_macs"] == small and data["vs_conv_macs"] > small
    assert abs(data["theoretical"] - data["vs_conv_macs"] / small) < 1e-12
    assert data["batch_size"] == 8 and data["rounds"] == 2
    assert data["step_ms"] > 0 and data["measured_step"] == data["vs_step_ms"] / data["step_ms"]
    conv2 = next(r for r in data["layers"] if r["name"] == "conv2")
    assert conv2["macs"] < conv2["vs_macs"] and conv2["ms"] > 0
    assert "theoretical" in proc.stdout and "measured" in proc.stdout
    assert dense == data["vs_conv_macs"]  # both count the masked net's architecture
    bad = run_cli(["speedup", "--model", "small.prototxt", "--vs-model", "nope.prototxt"], workdir)
    assert bad.returncode == 1 and "nope.prototxt" in bad.stderr and "Traceback" not in bad.stderr

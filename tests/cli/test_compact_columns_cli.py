"""Issue 15, end to end: the Caffe_IncReg fixture solver (Reg_Col, 90% of conv1/conv2 columns;
intervals shortened as in test_prune_fixture.py) prunes LeNet-5 from the fixture baseline; its
best model compacts with ``--column-conv always`` and ``auto`` into ColumnConvolution layers,
scores the same as the masked model in ``prunekit test``, and ``prunekit speedup`` and
``prunekit time --channels-last`` time it. Timings are only checked for consistency."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import LENET_FIXTURE, fixture_experiment, run_cli
from prunekit import caffe

NET = "compression_experiments/lenet5/train_val.prototxt"
AUTO_NOTE = re.compile(r"^    (column form|dense form kept) \((\d+) of (\d+) weight columns kept; "
                       r"--column-conv auto: column ([\d.]+) ms vs dense ([\d.]+) ms per batch of "
                       r"8, NHWC\)$", re.M)


@pytest.fixture(scope="module")
def pruned(mnist_root: Path, tmp_path_factory) -> tuple[Path, str]:
    """The fixture solver's run (the CLI, from the fixture baseline) and its best model."""
    if not LENET_FIXTURE.is_dir():
        pytest.skip("shared fixtures missing")
    root = tmp_path_factory.mktemp("reg_col")
    (root / "data").mkdir()
    (root / "data" / "mnist").symlink_to(mnist_root / "data" / "mnist")
    fixture_experiment(root, LENET_FIXTURE)
    proc = run_cli(["train", "--solver", "compression_experiments/lenet5/solver.prototxt",
                    "--weights", str(LENET_FIXTURE / "baseline_lenet5.caffemodel")], root,
                   timeout=900, check=True)
    best = re.search(r"Output the best caffemodel, iter = (\d+)", proc.stdout).group(1)
    return root, f"compression_experiments/lenet5/weights/_stage1-retrain_iter_{best}.caffemodel"


def _masked_counts(root: Path, weights: str) -> dict[str, tuple[int, int]]:
    """(non-zero filters, non-zero weight columns) of conv1 and conv2 in the masked model."""
    blobs = caffe.layer_blobs(caffe.read_caffemodel(root / weights))
    out = {}
    for name in ("conv1", "conv2"):
        w = np.abs(blobs[name][0].reshape(blobs[name][0].shape[0], -1))
        out[name] = (int((w.sum(1) > 0).sum()), int((w.sum(0) > 0).sum()))
    return out


def _column_layers(root: Path, out: str) -> dict[str, tuple[int, int]]:
    """(num_output, kept columns) of every ColumnConvolution in the written model, checked
    against its blob."""
    param = caffe.read_net_prototxt(root / f"{out}.prototxt")
    blobs = caffe.layer_blobs(caffe.read_caffemodel(root / f"{out}.caffemodel"))
    found = {}
    for lp in param.layer:
        if lp.type == "ColumnConvolution":
            kept = list(lp.column_param.kept_column)
            assert blobs[lp.name][0].shape == (lp.convolution_param.num_output, len(kept))
            found[lp.name] = (lp.convolution_param.num_output, len(kept))
    return found


def _accuracy(root: Path, model: str, weights: str) -> float:
    err = run_cli(["test", "--model", model, "--weights", weights, "--iterations", "10"], root,
                  check=True).stderr
    return float(re.findall(r"accuracy = ([\d.]+)", err)[-1])


def _compact(root: Path, weights: str, mode: str, out: str) -> str:
    return run_cli(["compact", "--model", NET, "--weights", weights, "--out-model",
                    f"{out}.prototxt", "--out-weights", f"{out}.caffemodel", "--column-conv", mode,
                    "--batch", "8", "--channels-last"], root, check=True).stdout


def test_always_compacts_the_reg_col_model_into_column_convs(pruned) -> None:
    root, weights = pruned
    masked = _masked_counts(root, weights)
    assert masked["conv1"][1] <= 3 and masked["conv2"][1] <= 50, masked  # 90% of the columns
    out = _compact(root, weights, "always", "col")
    column = _column_layers(root, "col")
    assert "conv2" in column        # 50 of 500 columns are never whole channels or kernel edges
    for name, (rows, kept) in column.items():
        assert rows == masked[name][0] and kept <= masked[name][1], (column, masked)
        assert re.search(rf"^{name}\s+ColumnConvolution\s+\S+ -> {rows}x{kept}\s", out, re.M), out
        assert re.search(rf"column form \({kept} of \d+ weight columns kept; --column-conv "
                         r"always, not timed\)", out), out
    theory, compacted = map(lambda s: int(s.replace(",", "")), re.search(
        r"^conv MACs: .*skipped ([\d,]+) .*compacted ([\d,]+) ", out, re.M).groups())
    assert compacted <= theory, out                       # every zero column is skipped now
    assert "still all zero" not in out
    assert _accuracy(root, NET, weights) == _accuracy(root, "col.prototxt", "col.caffemodel")

    run_cli(["speedup", "--model", "col.prototxt", "--weights", "col.caffemodel", "--vs-model",
             NET, "--vs-weights", weights, "--batch", "8", "--iterations", "2", "--rounds", "2",
             "--channels-last", "--json", "speedup.json"], root, check=True)
    record = json.loads((root / "speedup.json").read_text())
    layers = {r["name"]: r for r in record["layers"]}
    assert layers["conv2"]["type"] == "Convolution"   # the --vs-model's layer type
    for name, pixels in (("conv1", 24 * 24), ("conv2", 8 * 8)):
        if name in column:
            assert layers[name]["macs"] == column[name][0] * column[name][1] * pixels
    assert layers["conv2"]["vs_macs"] == 50 * 500 * 8 * 8
    assert record["conv_macs"] == layers["conv1"]["macs"] + layers["conv2"]["macs"] == compacted
    assert record["theoretical"] == pytest.approx(record["vs_conv_macs"] / record["conv_macs"])
    assert record["measured_forward"] == pytest.approx(
        record["vs_forward_ms"] / record["forward_ms"])
    assert record["batch_size"] == 8 and record["channels_last"] is True

    run_cli(["time", "--model", "col.prototxt", "--weights", "col.caffemodel", "--phase", "TEST",
             "--iterations", "2", "--batch_size", "8", "--channels-last", "--json", "time.json"],
            root, check=True)
    timed = json.loads((root / "time.json").read_text())
    assert timed["channels_last"] is True and timed["batch_size"] == 8
    assert {"conv1", "conv2"} <= {r["name"] for r in timed["layers"]}


def test_auto_keeps_per_layer_the_form_it_measured_faster(pruned) -> None:
    root, weights = pruned
    out = _compact(root, weights, "auto", "auto")
    column = _column_layers(root, "auto")
    notes = dict(zip(re.findall(r"^(conv\d)\s", out, re.M), _notes_per_layer(out)))
    assert notes.get("conv2"), out
    param = caffe.read_net_prototxt(root / "auto.prototxt")
    types = {lp.name: lp.type for lp in param.layer}
    for name, found in notes.items():
        if not found:        # no scattered column left (kernel trim took them): stays dense
            assert types[name] == "Convolution"
            continue
        form, n_kept, total, column_ms, dense_ms = found
        assert int(n_kept) < int(total) <= (25 if name == "conv1" else 500)
        chosen = form == "column form"
        assert chosen == (float(column_ms) < float(dense_ms)), out
        assert types[name] == ("ColumnConvolution" if chosen else "Convolution")
        assert chosen == (name in column) and (not chosen or column[name][1] == int(n_kept))
    assert _accuracy(root, NET, weights) == _accuracy(root, "auto.prototxt", "auto.caffemodel")


def _notes_per_layer(out: str) -> list[tuple | None]:
    """For each conv row of the report, its auto note's fields (or None)."""
    blocks = re.split(r"^conv\d\s.*$", out, flags=re.M)[1:]
    found = []
    for block in blocks:
        block = block.split("\nip1")[0]
        match = AUTO_NOTE.search(block)
        found.append(match.groups() if match else None)
    return found

"""The two model-zoo experiments build as Caffe would build them, and ``prunekit time`` runs them.

* compression_experiments/{vgg16,resnet50}/deploy.prototxt at batch 2, phases TRAIN and TEST:
  every blob shape equals tests/data_files/zoo_blob_shapes.json (derived from the prototxt by
  Caffe's shape rules, independently of prunekit), and the parameter counts are the published
  ones (VGG-16 138,357,544; ResNet-50 25,557,096 learnable, plus 2C + 1 BatchNorm statistics per
  BatchNorm layer).
* Their train_val.prototxt parse; building them needs the ImageNet LMDBs, which this repository
  does not ship, so building must fail with a PrunekitError that names the layer and the path.
* ``prunekit time`` on ResNet-50 prints Caffe's benchmark block in Caffe's order, with one
  forward and one backward line per layer, and ``--json`` writes one row per layer.

Runs on the CPU in well under a minute (the nets are built once per module).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from prunekit import caffe
from prunekit.errors import PrunekitError
from prunekit.net.batch_size import with_batch_size
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST, TRAIN

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "compression_experiments"
SHAPES = json.loads((REPO / "tests" / "data_files" / "zoo_blob_shapes.json").read_text())
MODELS = ["vgg16", "resnet50"]
PHASES = {"TRAIN": TRAIN, "TEST": TEST}
BATCH = 2

LEARNABLE = {"vgg16": 138_357_544, "resnet50": 25_557_096}
TRAIN_LMDB = "data/ilsvrc12/ilsvrc12_train_lmdb"
VAL_LMDB = "data/ilsvrc12/ilsvrc12_val_lmdb"


def deploy(model: str) -> Path:
    return ZOO / model / "deploy.prototxt"


@pytest.fixture(scope="module")
def nets():
    """Deploy nets at batch 2, built on first use: nets(model, phase) -> Net."""
    cache: dict[tuple[str, str], Net] = {}

    def get(model: str, phase: str) -> Net:
        if (model, phase) not in cache:
            param = with_batch_size(caffe.read_net_prototxt(deploy(model)), BATCH)
            cache[(model, phase)] = Net(param, PHASES[phase], source=str(deploy(model)))
        return cache[(model, phase)]

    yield get
    for net in cache.values():
        net.close()


# ---------------------------------------------------------------------------- deploy nets
def test_zoo_shapes_file_is_current():
    """zoo_blob_shapes.json still matches the prototxts (its generator's own check)."""
    script = REPO / "tests" / "data_files" / "make_zoo_shapes.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("phase", sorted(PHASES))
@pytest.mark.parametrize("model", MODELS)
def test_blob_shapes_match_caffe(nets, model, phase):
    net = nets(model, phase)
    got = [(name, list(shape)) for name, shape in net.blob_shapes.items()]
    want = list(SHAPES[model].items())
    assert [n for n, _ in got] == [n for n, _ in want], "blob names or order differ"
    wrong = [(n, g, w) for (n, g), (_, w) in zip(got, want) if g != w]
    assert not wrong, f"{model} {phase}: (blob, prunekit, caffe) {wrong}"


@pytest.mark.parametrize("phase", sorted(PHASES))
@pytest.mark.parametrize("model", MODELS)
def test_parameter_counts(nets, model, phase):
    net = nets(model, phase)
    refs = net.param_blobs()
    learnable = sum(r.tensor.numel() for r in refs if isinstance(r.tensor, nn.Parameter))
    assert learnable == LEARNABLE[model]
    assert all(r.learnable for r in refs if isinstance(r.tensor, nn.Parameter))
    # BatchNorm statistics: mean [C], variance [C], moving_average_factor [1], never learned
    stats = [r for r in refs if not isinstance(r.tensor, nn.Parameter)]
    bn = [(e, net.blob_shapes[e.tops[0]][1]) for e in net.entries if e.type == "BatchNorm"]
    assert sum(r.tensor.numel() for r in stats) == sum(2 * c + 1 for _, c in bn)
    assert len(stats) == 3 * len(bn)
    assert all(r.lr_mult == 0 for r in stats)
    if model == "resnet50":
        assert len(bn) == 53  # one per convolution
        assert sum(2 * c + 1 for _, c in bn) == 53_173


# ---------------------------------------------------------------------------- train_val nets
def _write_mean_file(folder: Path) -> None:
    (folder / "data" / "ilsvrc12").mkdir(parents=True, exist_ok=True)
    blob = caffe.array_to_blob(np.zeros((1, 3, 256, 256), dtype=np.float32))
    caffe.write_binaryproto(folder / "data" / "ilsvrc12" / "imagenet_mean.binaryproto", blob)


@pytest.mark.parametrize("model", MODELS)
def test_train_val_parses(model):
    param = caffe.read_net_prototxt(ZOO / model / "train_val.prototxt")
    data = [lp for lp in param.layer if lp.type == "Data"]
    assert sorted(lp.data_param.source for lp in data) == [TRAIN_LMDB, VAL_LMDB]


@pytest.mark.parametrize("phase,lmdb", [("TRAIN", TRAIN_LMDB), ("TEST", VAL_LMDB)])
@pytest.mark.parametrize("model", MODELS)
def test_train_val_without_lmdb_names_layer_and_path(model, phase, lmdb, tmp_path, monkeypatch):
    """The LMDB paths are relative to the working directory (train.sh runs from the repo root);
    in an empty one they are missing. The ResNet-50 mean_file is provided so that the LMDB is
    the only thing missing."""
    path = ZOO / model / "train_val.prototxt"
    param = caffe.read_net_prototxt(path)
    monkeypatch.chdir(tmp_path)
    _write_mean_file(tmp_path)
    with pytest.raises(PrunekitError) as err:
        Net(param, PHASES[phase], source=str(path))
    message = str(err.value)
    assert f"layer 'data' (Data, {phase})" in message
    assert lmdb in message
    assert "not found" in message


def test_train_val_without_any_data_names_layer_and_a_missing_file(tmp_path, monkeypatch):
    """ResNet-50 with neither mean_file nor LMDB: one of them is named, with the layer."""
    path = ZOO / "resnet50" / "train_val.prototxt"
    param = caffe.read_net_prototxt(path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PrunekitError) as err:
        Net(param, TRAIN, source=str(path))
    message = str(err.value)
    assert "layer 'data' (Data, TRAIN)" in message
    assert TRAIN_LMDB in message or "data/ilsvrc12/imagenet_mean.binaryproto" in message


# ---------------------------------------------------------------------------- prunekit time
NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"


def _prunekit() -> list[str]:
    script = Path(sys.executable).with_name("prunekit")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from prunekit.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module", autouse=True)
def time_process(tmp_path_factory):
    """`prunekit time` of ResNet-50 at batch 2, 1 iteration, started when the module starts so
    that it runs while the other tests build their nets: (process, json path)."""
    folder = tmp_path_factory.mktemp("time")
    out, log = folder / "time.json", folder / "time.log"
    with open(log, "w") as sink:  # a file, not a pipe: nobody reads until the run is needed
        proc = subprocess.Popen(
            _prunekit() + ["time", "--model", str(deploy("resnet50")), "--batch_size",
                           str(BATCH), "--iterations", "1", "--json", str(out)],
            stdout=sink, stderr=subprocess.STDOUT, cwd=REPO)
    yield proc, out, log
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def time_run(time_process):
    """The finished run: (log messages without the glog prefix, json record)."""
    proc, out, log = time_process
    proc.wait(timeout=600)
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    # glog lines: "I1122 23:13:42.749727 10394 time.py:57] message"
    messages = [line.split("] ", 1)[1] for line in text.splitlines()
                if re.match(r"^[IWEF]\d{4} [\d:.]+ +\d+ [^\]]+\] ", line)]
    return messages, json.loads(out.read_text())


def test_time_prints_caffe_block_in_order(time_run):
    messages, _ = time_run
    layers = [lp.name for lp in caffe.read_net_prototxt(deploy("resnet50")).layer]
    expected: list[str] = [
        re.escape("Performing Forward"),
        r"Initial loss: " + NUMBER,
        re.escape("Performing Backward"),
        re.escape("*** Benchmark begins ***"),
        re.escape("Testing for 1 iterations."),
        rf"Iteration: 1 forward-backward time: {NUMBER} ms\.",
        re.escape("Average time per layer: "),
    ]
    for name in layers:  # Caffe: LOG(INFO) << std::setfill(' ') << std::setw(10) << name ...
        expected.append(rf"{re.escape(name.rjust(10))}\tforward: {NUMBER} ms\.")
        expected.append(rf"{re.escape(name.rjust(10))}\tbackward: {NUMBER} ms\.")
    expected += [
        rf"Average Forward pass: {NUMBER} ms\.",
        rf"Average Backward pass: {NUMBER} ms\.",
        rf"Average Forward-Backward: {NUMBER} ms\.",
        rf"Total Time: {NUMBER} ms\.",
        re.escape("*** Benchmark ends ***"),
        rf"Plain forward-backward step \(no per-layer timers\): {NUMBER} ms\.",
    ]
    start = messages.index("Performing Forward")
    block = messages[start:start + len(expected)]
    mismatched = [(want, got) for want, got in zip(expected, block) if not re.fullmatch(want, got)]
    assert len(block) == len(expected), f"log ends early: {messages[-5:]}"
    assert not mismatched, f"first (expected, got): {mismatched[0]}"
    assert sum(1 for m in messages if re.fullmatch(rf"\s*\S+\tforward: {NUMBER} ms\.", m)) \
        == len(layers) == 229


def test_time_json_has_one_row_per_layer(time_run):
    _, record = time_run
    layers = [lp.name for lp in caffe.read_net_prototxt(deploy("resnet50")).layer]
    assert [row["name"] for row in record["layers"]] == layers
    assert all(set(row) == {"name", "forward_ms", "backward_ms"} for row in record["layers"])
    assert all(row["forward_ms"] >= 0 and row["backward_ms"] >= 0 for row in record["layers"])
    convs = {lp.name for lp in caffe.read_net_prototxt(deploy("resnet50")).layer
             if lp.type == "Convolution"}
    conv_rows = [row for row in record["layers"] if row["name"] in convs]
    assert len(conv_rows) == 53
    assert all(row["forward_ms"] > 0 and row["backward_ms"] > 0 for row in conv_rows)
    # the totals are the per-layer times summed (Caffe's Average Forward/Backward pass)
    assert sum(r["forward_ms"] for r in record["layers"]) == pytest.approx(record["forward_ms"])
    assert sum(r["backward_ms"] for r in record["layers"]) == pytest.approx(record["backward_ms"])
    assert record["forward_ms"] + record["backward_ms"] <= record["forward_backward_ms"]
    assert record["iterations"] == 1
    assert record["batch_size"] == BATCH
    assert record["device"] == "cpu"
    for key in ("forward_ms", "backward_ms", "forward_backward_ms", "total_ms",
                "plain_forward_backward_ms"):
        assert record[key] > 0, key

"""Import -> ``prunekit export --onnx`` of an unpruned net: the exported ONNX model's outputs
equal the original ONNX model's (both run in onnxruntime on the same input); ``prunekit time``
runs on the imported net."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from cli_helpers import run_cli  # noqa: E402
from importer_helpers import ort_outputs, relative_error, torchvision_onnx  # noqa: E402


@pytest.mark.parametrize("name", ["shufflenet_v2_x1_0", "mobilenet_v3_small"])
def test_import_then_export_gives_the_original_outputs(name, tmp_path):
    original = tmp_path / "original.onnx"
    shape = torchvision_onnx(name, original, seed=2)
    deploy, weights = tmp_path / "deploy.prototxt", tmp_path / "w.caffemodel"
    run_cli(["import", "--onnx", str(original), "--out-model", str(deploy),
             "--out-weights", str(weights)], tmp_path, check=True)
    exported = tmp_path / "exported.onnx"
    run_cli(["export", "--model", str(deploy), "--weights", str(weights), "--onnx",
             str(exported)], tmp_path, check=True)
    x = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    (want,), (got,) = ort_outputs(original, x), ort_outputs(exported, x)
    assert got.shape == want.shape
    assert relative_error(got, want) < 1e-4

    timing = tmp_path / "time.json"
    run_cli(["time", "--model", str(deploy), "--weights", str(weights), "--iterations", "2",
             "--phase", "TEST", "--json", str(timing)], tmp_path, check=True)
    timed = {row["name"]: row["forward_ms"] for row in json.loads(timing.read_text())["layers"]}
    names = re.findall(r'^  name: "(.*)"$', deploy.read_text(), re.M)
    new_types = {"ShuffleChannel", "HardSwish", "Clip", "Power"}
    new_layers = [n for n, t in zip(names, re.findall(r'^  type: "(.*)"$', deploy.read_text(),
                                                          re.M)) if t in new_types]
    assert new_layers and all(timed[n] >= 0 for n in new_layers)

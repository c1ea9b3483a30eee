"""prunekit sensitivity and plan on a net whose answer is known (see _handmade.py): real CLI
runs, real prototxt and caffemodel files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _handmade import MACS, make  # noqa: E402
from cli_helpers import run_cli  # noqa: E402
from prunekit import caffe  # noqa: E402


def _sensitivity(tmp_path: Path, unit: str) -> dict:
    model, weights = make(tmp_path)
    out = tmp_path / f"s_{unit}.json"
    proc = run_cli(["sensitivity", "--model", str(model), "--weights", str(weights), "--unit",
                    unit, "--ratios", "0.25,0.5,0.75", "--iterations", "2", "--out", str(out)],
                   tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / f"s_{unit}.txt").read_text().startswith("sensitivity: unit " + unit)
    return json.loads(out.read_text())


def test_row_curves_dead_filters_lose_nothing_fragile_layer_most(tmp_path: Path) -> None:
    data = _sensitivity(tmp_path, "Row")
    assert data["score"] == "distortion"        # an Input net: output distortion
    curves = {c["name"]: c for c in data["curves"]}
    assert list(curves) == ["conv_a", "conv_b", "conv_c"]
    assert {n: c["macs"] for n, c in curves.items()} == MACS
    b, c, a = curves["conv_b"], curves["conv_c"], curves["conv_a"]
    assert b["ratios"] == [0.0, 0.25, 0.5, 0.75]
    assert b["loss"][:3] == [0.0, 0.0, 0.0]     # the two dead filters go first: nothing lost
    assert b["loss"][3] > 0.05
    at_half = {n: curves[n]["loss"][2] for n in curves}
    assert max(at_half, key=at_half.get) == "conv_c"
    assert a["loss"][2] > 0 and c["loss"][2] > a["loss"][2]
    assert all(0 < x["time_share"] < 1 for x in data["curves"])


def test_channel_unit_skips_pinned_outputs_and_zeroes_consumers(tmp_path: Path) -> None:
    data = _sensitivity(tmp_path, "Channel")
    curves = {c["name"]: c for c in data["curves"]}
    assert list(curves) == ["conv_a", "conv_b"]   # conv_c's channels are the net output
    assert curves["conv_b"]["loss"][:3] == [0.0, 0.0, 0.0]
    assert curves["conv_a"]["loss"][1] > 0


def test_plan_prunes_the_redundant_layer_and_writes_prune_params(tmp_path: Path) -> None:
    data = _sensitivity(tmp_path, "Row")
    sens = tmp_path / "s_Row.json"
    total = sum(MACS.values())
    target = total / (total - 0.5 * MACS["conv_b"])        # 1.4x: conv_b by half exactly
    out, plan_json = tmp_path / "planned.prototxt", tmp_path / "plan.json"
    proc = run_cli(["plan", "--sensitivity", str(sens), "--speedup", str(target), "--model",
                    str(tmp_path / "handmade.prototxt"), "--out", str(out), "--json",
                    str(plan_json)], tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ratios = {layer.name: layer.prune_param.prune_ratio
              for layer in caffe.read_net_prototxt(out).layer if layer.HasField("prune_param")}
    assert ratios == {"conv_a": 0.0, "conv_b": 0.5, "conv_c": 0.0}
    record = json.loads(plan_json.read_text())
    assert record["predicted_loss"] == 0.0
    assert record["predicted_speedup"] == pytest.approx(target)
    assert data["curves"][1]["name"] == "conv_b"
    # the input prototxt is untouched
    assert "prune_param" not in (tmp_path / "handmade.prototxt").read_text()


def test_plan_refuses_an_unreachable_speedup(tmp_path: Path) -> None:
    _sensitivity(tmp_path, "Row")
    out = tmp_path / "planned.prototxt"
    proc = run_cli(["plan", "--sensitivity", str(tmp_path / "s_Row.json"), "--speedup", "50",
                    "--model", str(tmp_path / "handmade.prototxt"), "--out", str(out)], tmp_path,
                   timeout=60)
    assert proc.returncode == 1
    assert "--speedup 50" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_plan_by_latency_compacts_and_times_its_plan(tmp_path: Path) -> None:
    _sensitivity(tmp_path, "Channel")
    model = tmp_path / "handmade.prototxt"
    out, plan_json = tmp_path / "planned.prototxt", tmp_path / "plan.json"
    proc = run_cli(["plan", "--sensitivity", str(tmp_path / "s_Channel.json"), "--speedup", "1.3",
                    "--by", "latency", "--model", str(model), "--weights",
                    str(tmp_path / "handmade.caffemodel"), "--batch", "4", "--out", str(out),
                    "--json", str(plan_json)], tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(plan_json.read_text())
    assert record["batch"] == 4 and 1 <= len(record["history"]) <= 6
    assert record["measured"] > 0 and record["dense_ms"] > 0 and record["compacted_ms"] > 0
    assert record["history"][0][0] == 1.3                   # first round plans the target
    assert "measured after prunekit compact" in proc.stdout
    ratios = {layer.name: layer.prune_param.prune_ratio
              for layer in caffe.read_net_prototxt(out).layer if layer.HasField("prune_param")}
    assert ratios == {i["name"]: pytest.approx(i["ratio"]) for i in record["items"]}


def test_progress_bar_only_when_asked_for_a_terminal(tmp_path: Path, monkeypatch) -> None:
    model, weights = make(tmp_path)
    args = ["sensitivity", "--model", str(model), "--weights", str(weights), "--ratios", "0.5",
            "--iterations", "1", "--timing-iterations", "0", "--out", str(tmp_path / "s.json")]
    quiet = run_cli(args, tmp_path, timeout=60, check=True)    # stderr is a pipe: a log
    assert "\r" not in quiet.stderr and "sensitivity [" not in quiet.stderr
    monkeypatch.setenv("PRUNEKIT_PROGRESS", "1")               # as on a terminal
    shown = run_cli(args, tmp_path, timeout=60, check=True)
    assert "sensitivity [" in shown.stderr and "3/3 " in shown.stderr   # (\r read as \n)

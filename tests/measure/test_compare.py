"""Side-by-side timing for `prunekit speedup`: MAC ratios are exact, times are real and matched
by layer name, and the table names its units."""

from __future__ import annotations

import pytest

from prunekit import caffe
from prunekit.commands.speedup import format_table
from prunekit.measure.compare import compare
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST


def _net(width: int, kernel: int = 3) -> Net:
    text = f"""
    input: "data" input_shape {{ dim: 2 dim: 3 dim: 16 dim: 16 }}
    layer {{ name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
      convolution_param {{ num_output: {width} kernel_size: {kernel} pad: {kernel // 2}
                          weight_filler {{ type: "xavier" }} }} }}
    layer {{ name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }}
    layer {{ name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
      convolution_param {{ num_output: 8 kernel_size: 3 weight_filler {{ type: "xavier" }} }} }}
    """
    return Net(caffe.parse_net_text(text), TEST)


def test_theoretical_is_the_mac_ratio_and_times_are_measured() -> None:
    small, big = _net(8), _net(32)
    c = compare(small, big, rounds=2, iterations=2, warmup=1)
    layers = {r.name: r for r in c.layers}
    # conv1: 3*3*3*width*16*16; conv2: 3*3*width*8*14*14
    assert layers["conv1"].theoretical == pytest.approx(32 / 8)
    assert layers["conv2"].theoretical == pytest.approx(32 / 8)
    assert c.theoretical == pytest.approx(4.0)
    assert c.forward_ms > 0 and c.vs_step_ms > 0 and layers["conv1"].ms > 0
    assert c.measured_step == pytest.approx(c.vs_step_ms / c.step_ms)
    assert "relu1" not in layers  # no MACs, no row
    table = format_table(c)
    assert "ms per batch" in table and "theoretical 4.00x" in table


def test_layers_missing_from_one_net_show_as_missing() -> None:
    a = _net(8)
    text = """
    input: "data" input_shape { dim: 2 dim: 3 dim: 16 dim: 16 }
    layer { name: "other" type: "Convolution" bottom: "data" top: "o"
      convolution_param { num_output: 4 kernel_size: 1 } }
    """
    b = Net(caffe.parse_net_text(text), TEST)
    c = compare(a, b, rounds=1, iterations=1, warmup=1)
    (row,) = [r for r in c.layers if r.name == "other"]
    assert row.macs == 0 and row.theoretical is None and row.ms is None and row.measured is None
    assert "-" in format_table(c)

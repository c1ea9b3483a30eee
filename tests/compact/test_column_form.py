"""The column stage of compact (prunekit.compact.column_form): convs with scattered zero weight
columns become ColumnConvolution layers that compute what the masked dense convs compute; the
stage runs on the already reduced conv (after filter removal / kernel trim); ``never`` changes
nothing; ``auto`` keeps the faster form by its own measurement; BatchNorm folds into column
convs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _compact_helpers import EXP, build, load_param, randomise
from prunekit.caffe import parse_net_text
from prunekit.compact import compact
from prunekit.compact.column_form import ColumnOptions, column_forms, kept_columns
from prunekit.compact.fold_bn import fold_batch_norms
from prunekit.compact.save import compacted_blobs
from prunekit.compact.verify import compare
from prunekit.errors import PrunekitError
from prunekit.net.batch_size import declared_batch_size
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST, TRAIN
from prunekit.net.weights import load_net_param_blobs, net_blobs

TWO_CONVS = """
name: "cols"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 3 dim: 4 dim: 11 dim: 10 } } }
layer { name: "a" type: "Convolution" bottom: "data" top: "a"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 group: 2 } }
layer { name: "ra" type: "ReLU" bottom: "a" top: "a" }
layer { name: "b" type: "Convolution" bottom: "a" top: "b"
  convolution_param { num_output: 6 kernel_h: 3 kernel_w: 5 pad_h: 2 pad_w: 1 stride: 2
                      dilation: 2 } }
layer { name: "rb" type: "ReLU" bottom: "b" top: "b" }
layer { name: "c" type: "Convolution" bottom: "b" top: "c"
  convolution_param { num_output: 5 kernel_size: 1 } }
"""


def _masked(text: str, seed: int = 0):
    param = parse_net_text(text)
    net = build(param)
    gen = randomise(net, seed)
    return param, net, gen


def _zero_columns(module, fraction: float, gen: torch.Generator) -> None:
    """Zero ``fraction`` of the per-group weight columns (the same in every group)."""
    w = module.weight
    g = module.group
    cols = w[0].numel()
    drop = torch.randperm(cols, generator=gen)[: int(fraction * cols)]
    with torch.no_grad():
        w.view(g, w.shape[0] // g, cols)[:, :, drop] = 0


def _stage(param, net, mode: str = "always", **options):
    compaction = compact(param, net)
    blobs = compacted_blobs(compaction, net_blobs(net))
    return compaction, column_forms(compaction.net_param, blobs, TEST,
                                    ColumnOptions(mode, **options))


def _built(forms, phase: int = TEST) -> Net:
    new = build(forms.net_param, phase)
    load_net_param_blobs(new, forms.blobs, "<test>")
    return new


def _worst(reference: Net, candidate: Net) -> float:
    return max(d.relative for d in compare(reference, candidate, set()))


def test_always_turns_scattered_columns_into_column_layers_with_the_same_outputs() -> None:
    param, net, gen = _masked(TWO_CONVS)
    _zero_columns(net.layer_modules["a"], 0.5, gen)
    _zero_columns(net.layer_modules["b"], 0.7, gen)
    _, forms = _stage(param, net)
    types = {lp.name: lp.type for lp in forms.net_param.layer}
    assert types == {"data": "Input", "a": "ColumnConvolution", "ra": "ReLU",
                     "b": "ColumnConvolution", "rb": "ReLU", "c": "Convolution"}
    for name in ("a", "b"):
        module = net.layer_modules[name]
        dense = module.weight.detach().reshape(module.group, module.weight.shape[0] // module.group, -1)
        zero = (dense.abs().sum((0, 1)) == 0).nonzero().flatten().tolist()
        layer = next(lp for lp in forms.net_param.layer if lp.name == name)
        kept = list(layer.column_param.kept_column)
        assert sorted(set(kept) | set(zero)) == list(range(dense.shape[2])) and not set(kept) & set(zero)
        matrix = module.weight.detach().reshape(module.weight.shape[0], -1).numpy()
        np.testing.assert_array_equal(forms.blobs[name][0], matrix[:, kept])
        np.testing.assert_array_equal(forms.blobs[name][1], module.bias.detach().numpy())
    assert _worst(net, _built(forms)) < 1e-4
    assert [c.name for c in forms.choices] == ["a", "b"]
    assert all(c.column and c.dense_ms is None and c.check.relative < 1e-5 for c in forms.choices)


def test_columns_of_the_reduced_conv_after_filter_removal_and_kernel_trim() -> None:
    """a's filters 0 and 5 are zero (removed, with b's input channels 0 and 5); b's last kernel
    column is zero in every channel (trimmed: 3x5 -> 3x4 with a crop); what is left of b's
    zero columns is scattered and indexes the reduced 6-channel 3x4 matrix."""
    param, net, gen = _masked(TWO_CONVS)
    b = net.layer_modules["b"]
    with torch.no_grad():
        net.layer_modules["a"].weight[[0, 5]] = 0
        net.layer_modules["a"].bias[[0, 5]] = 0
        b.weight[:, :, :, 4] = 0
        b.weight[:, 1, 0, 2] = 0
        b.weight[:, 7, 2, 0] = 0
        b.weight[:, 3, 1, :] = 0
    compaction, forms = _stage(param, net)
    reduced = compaction.weights.blobs["b"][0]
    assert tuple(reduced.shape) == (6, 6, 3, 4)
    layer = next(lp for lp in forms.net_param.layer if lp.name == "b")
    assert layer.type == "ColumnConvolution"
    expected = kept_columns(reduced, 1).tolist()
    assert list(layer.column_param.kept_column) == expected
    assert len(expected) == 6 * 12 - 1 - 1 - 4   # b's channels 1, 7, 3 are now 0, 5, 2
    assert "b_crop_w" in [lp.name for lp in forms.net_param.layer]
    assert _worst(net, _built(forms)) < 1e-4


def test_never_returns_the_dense_compaction_unchanged() -> None:
    param, net, gen = _masked(TWO_CONVS)
    _zero_columns(net.layer_modules["b"], 0.7, gen)
    compaction, forms = _stage(param, net, mode="never")
    assert forms.net_param is compaction.net_param and forms.choices == []
    assert [lp.type for lp in forms.net_param.layer].count("ColumnConvolution") == 0


def test_auto_keeps_the_form_its_own_times_say_is_faster() -> None:
    param = load_param(EXP / "lenet5" / "deploy.prototxt")
    net = build(param)
    gen = randomise(net)
    for name in ("conv1", "conv2"):
        _zero_columns(net.layer_modules[name], 0.75, gen)
    for channels_last in (False, True):
        _, forms = _stage(param, net, mode="auto", batch=4, channels_last=channels_last)
        assert [c.name for c in forms.choices] == ["conv1", "conv2"]
        for choice in forms.choices:
            assert choice.dense_ms > 0 and choice.column_ms > 0
            assert choice.column == (choice.column_ms < choice.dense_ms)
            assert (choice.batch, choice.layout) == (4, "NHWC" if channels_last else "NCHW")
            layer = next(lp for lp in forms.net_param.layer if lp.name == choice.name)
            assert layer.type == ("ColumnConvolution" if choice.column else "Convolution")
            assert f"per batch of 4, {choice.layout}" in choice.line()
        assert _worst(net, _built(forms)) < 1e-4


def test_no_candidate_without_scattered_zero_columns_and_bad_mode_refused() -> None:
    param, net, _ = _masked(TWO_CONVS)
    _, forms = _stage(param, net, mode="always")
    assert forms.choices == []
    with pytest.raises(PrunekitError, match="--column-conv 'sometimes'"):
        _stage(param, net, mode="sometimes")


BN_NET = """
name: "bn"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 6 kernel_size: 3 pad: 1 bias_term: false } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
"""


def test_batch_norm_folds_into_a_column_conv() -> None:
    param, net, gen = _masked(BN_NET)
    _zero_columns(net.layer_modules["conv"], 0.6, gen)
    _, forms = _stage(param, net)
    folding = fold_batch_norms(forms.net_param, forms.blobs)
    assert [f.into for f in folding.folded] == ["conv"]
    types = [lp.type for lp in folding.net_param.layer]
    assert types == ["Input", "ColumnConvolution", "ReLU"]
    folded = build(folding.net_param)
    load_net_param_blobs(folded, folding.blobs, "<test>")
    assert _worst(net, folded) < 1e-4


def test_declared_batch_size_per_phase() -> None:
    param = load_param(EXP / "lenet5" / "train_val.prototxt")
    assert declared_batch_size(param, TRAIN) == 16
    assert declared_batch_size(param, TEST) == 100
    assert declared_batch_size(load_param(EXP / "lenet5" / "deploy.prototxt"), TEST) == 64

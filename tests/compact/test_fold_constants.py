"""The folding math, checked against hand computations: bias += c·ΣW (no padding), BatchNorm
mean −= c·ΣW·factor (bias-free conv), carrier columns W0 + Σ (c_j / c0)·W_j (padding), and an
InnerProduct's H×W column block (also with ``transpose``)."""

from __future__ import annotations

import torch

from _compact_helpers import build, compact_and_compare, load_param, randomise, zero_filters

HEAD = 'name: "f" input: "data" input_shape { dim: 1 dim: 2 dim: 6 dim: 6 }\n'
A = ('layer { name: "a" type: "Convolution" bottom: "data" top: "a" '
     'convolution_param { num_output: 3 kernel_size: 1 } }\n'
     'layer { name: "relu" type: "ReLU" bottom: "a" top: "a" }\n')


def _setup(text: str, biases: dict[int, float]):
    param = load_param(HEAD + A + text)
    net = build(param)
    randomise(net, seed=4)
    zero_filters(net, "a", list(biases))
    with torch.no_grad():
        for row, value in biases.items():
            net.layer("a").bias[row] = value
    return param, net


def test_unpadded_conv_takes_the_constant_into_its_bias() -> None:
    param, net = _setup('layer { name: "b" type: "Convolution" bottom: "a" top: "b" '
                        'convolution_param { num_output: 2 kernel_size: 3 } }\n', {1: 0.7})
    w, bias = net.layer("b").weight.detach().double(), net.layer("b").bias.detach().double()
    result, small, worst = compact_and_compare(param, net)
    assert worst <= 1e-5
    expected = bias + 0.7 * w[:, 1].sum((1, 2))
    torch.testing.assert_close(small.layer("b").bias.double(), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(small.layer("b").weight.double(), w[:, [0, 2]])


def test_bias_free_conv_hands_the_constant_to_its_batchnorm() -> None:
    param, net = _setup('layer { name: "b" type: "Convolution" bottom: "a" top: "b" '
                        'convolution_param { num_output: 2 kernel_size: 1 bias_term: false } }\n'
                        'layer { name: "bn" type: "BatchNorm" bottom: "b" top: "b" }\n'
                        'layer { name: "sc" type: "Scale" bottom: "b" top: "b" '
                        'scale_param { bias_term: true } }\n', {0: -0.3, 2: 1.25})
    with torch.no_grad():
        net.layer("bn").moving_average_factor.fill_(2.0)   # the mean blob is 2·μ
    mean_blob = net.layer("bn").mean.detach().double().clone()
    w = net.layer("b").weight.detach().double()
    result, small, worst = compact_and_compare(param, net)
    assert worst <= 1e-5
    # relu(-0.3) = 0 adds nothing; relu(1.25) = 1.25 is folded into the stored mean
    expected = mean_blob - 2.0 * 1.25 * w[:, 2, 0, 0]
    torch.testing.assert_close(small.layer("bn").mean.double(), expected, rtol=0, atol=1e-6)
    assert small.layer("b").weight.shape == (2, 1, 1, 1)


def test_padded_conv_folds_the_constants_into_a_carrier_column() -> None:
    param, net = _setup('layer { name: "b" type: "Convolution" bottom: "a" top: "b" '
                        'convolution_param { num_output: 2 kernel_size: 3 pad: 1 } }\n',
                        {0: 0.5, 2: 1.5})
    w, bias = net.layer("b").weight.detach().double(), net.layer("b").bias.detach().double()
    result, small, worst = compact_and_compare(param, net)
    assert worst <= 1e-5          # exact at the borders too
    # channel 2 (the largest constant) stays as the carrier; channel 0 goes into it
    assert result.plan.rows_kept("a").tolist() == [False, True, True]
    new = small.layer("b").weight.double()
    torch.testing.assert_close(new[:, 0], w[:, 1])
    torch.testing.assert_close(new[:, 1], w[:, 2] + (0.5 / 1.5) * w[:, 0], rtol=0, atol=1e-6)
    torch.testing.assert_close(small.layer("b").bias.double(), bias)


def test_inner_product_drops_the_channel_block_and_folds_it() -> None:
    for transpose in (False, True):
        extra = "transpose: true" if transpose else ""
        param, net = _setup('layer { name: "ip" type: "InnerProduct" bottom: "a" top: "ip" '
                            f'inner_product_param {{ num_output: 4 {extra} }} }}\n', {1: 0.9})
        w = net.layer("ip").weight.detach().double()
        w = w.t() if transpose else w                          # [4, 3·36]
        bias = net.layer("ip").bias.detach().double()
        result, small, worst = compact_and_compare(param, net)
        assert worst <= 1e-5
        new = small.layer("ip").weight.double()
        new = new.t() if transpose else new
        blocks = w.view(4, 3, 36)
        torch.testing.assert_close(new, blocks[:, [0, 2]].reshape(4, 72))
        torch.testing.assert_close(small.layer("ip").bias.double(),
                                   bias + 0.9 * blocks[:, 1].sum(1), rtol=0, atol=1e-6)

"""ChannelGraph on real Nets built from prototxt text (and on the shipped ResNet-50)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from prunekit.caffe import parse_net_text, read_net_prototxt
from prunekit.net.batch_size import with_batch_size
from prunekit.net.graph import Net
from prunekit.prune import groups as G
from prunekit.prune.dependency import ChannelGraph

REPO = Path(__file__).resolve().parents[2]


def _input(shape, name="data"):
    dims = " ".join(f"dim: {d}" for d in shape)
    return (f'layer {{ name: "{name}" type: "Input" top: "{name}" '
            f'input_param {{ shape {{ {dims} }} }} }}\n')


def _conv(name, bottom, n, k=3, top=None, extra=""):
    top = top or name
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{top}" '
            f'convolution_param {{ num_output: {n} kernel_size: {k} pad: {k // 2} {extra} }} }}\n')


def _layer(name, typ, bottoms, tops, extra=""):
    b = " ".join(f'bottom: "{x}"' for x in bottoms)
    t = " ".join(f'top: "{x}"' for x in tops)
    return f'layer {{ name: "{name}" type: "{typ}" {b} {t} {extra} }}\n'


def _graph(text):
    net = Net(parse_net_text(text), 0)
    return net, ChannelGraph(net)


def _rows(result):
    return {p.layer: p.rows.tolist() for p in result}


def _cols(result):
    return {c.layer: c.columns.tolist() for c in result}


def _cols_pruned(n, channels, per_channel, groups=None):
    """bool [n] (or [groups, n] with channels given per group) with whole channel blocks set."""
    m = torch.zeros(n, dtype=torch.bool) if groups is None else torch.zeros(groups, n,
                                                                               dtype=torch.bool)
    for ch in channels:
        if groups is None:
            m[G.columns_of_channel_fc(ch, per_channel)] = True
        else:
            g, c = ch
            m[g, G.columns_of_channel_fc(c, per_channel)] = True
    return m


# ------------------------------------------------------------------ lenet-like chain
LENET = (
    _input([2, 1, 28, 28])
    + '''layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
          convolution_param { num_output: 20 kernel_size: 5 } }
        layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
          pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
        layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
          convolution_param { num_output: 50 kernel_size: 5 } }
        layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
          pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
        layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
          inner_product_param { num_output: 500 } }
        layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
        layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
          inner_product_param { num_output: 10 } }
        layer { name: "prob" type: "Softmax" bottom: "ip2" top: "prob" }''')


def test_lenet_chain_structure():
    net, g = _graph(LENET)
    assert g.registered == ["conv1", "conv2", "ip1", "ip2"]
    [src] = g.producers_of_input("conv2")
    assert (src.layer, src.channel_offset, src.kind, src.path) == ("conv1", 0, "param", ("pool1",))
    assert g.producers_of_input("conv1")[0][:4] == ("data", 0, 1, "input")
    assert g.producers_of_input("ip2")[0].path == ("relu1",)
    geo = g.geometry("ip1")
    assert (geo.in_channels, geo.cols_per_channel, geo.num_cols) == (50, 16, 800)
    assert g.geometry("conv2").cols_per_channel == 25 and g.geometry("ip2").num_cols == 500
    assert g.geometry("ip2").index == 3
    assert g.removable_rows("conv2").all() and not g.removable_rows("ip2").any()  # softmax pins


def test_lenet_col_unit_fc_needs_all_hw_columns():
    net, g = _graph(LENET)
    cols = _cols_pruned(800, [7], 16)
    assert _rows(g.dead_input_channels("ip1", {"ip1": cols})) == {"conv2": [7]}
    cols[7 * 16 + 15] = False  # 15 of the 16 positions: channel 7 is still read
    assert g.dead_input_channels("ip1", {"ip1": cols}) == []
    conv2 = _cols_pruned(500, [3, 11], 25)
    assert _rows(g.dead_input_channels("conv2", {"conv2": conv2})) == {"conv1": [3, 11]}
    # conv1's input is the data: never prunable
    assert g.dead_input_channels("conv1", {"conv1": torch.ones(25, dtype=torch.bool)}) == []
    # ip2 all-pruned kills ip1's rows (ip1 output only goes to ip2)
    assert _rows(g.dead_input_channels("ip2", {"ip2": _cols_pruned(500, [9], 1)})) == {
        "ip1": [9]}


def test_lenet_row_unit_and_fc_columns_are_really_blind():
    net, g = _graph(LENET)
    [hit] = g.consumer_columns_of_pruned_rows("conv2", [7])
    assert hit.layer == "ip1" and hit.groups is None
    assert hit.columns.tolist() == list(range(7 * 16, 8 * 16))
    assert _cols(g.consumer_columns_of_pruned_rows("conv1", torch.tensor([2]))) == {
        "conv2": list(range(50, 75))}
    assert g.consumer_columns_of_pruned_rows("ip2", [1]) == []
    # zero those ip1 columns: ip1 no longer depends on conv2's channel 7
    ip1 = net.layer("ip1")
    with torch.no_grad():
        ip1.weight.normal_()
        G.zero_groups_(ip1.weight, cols=hit.columns)
        x = torch.randn(2, 50, 4, 4)
        y = ip1(x)
        x[:, 7] += 5
        torch.testing.assert_close(ip1(x), y)
        x[:, 6] += 5
        assert not torch.allclose(ip1(x), y)


# ------------------------------------------------------------------ ResNet-style block
RESBLOCK = (
    _input([1, 3, 8, 8])
    + _conv("conv0", "data", 8)
    + _layer("bn0", "BatchNorm", ["conv0"], ["conv0"])
    + _layer("scale0", "Scale", ["conv0"], ["conv0"], "scale_param { bias_term: true }")
    + _layer("relu0", "ReLU", ["conv0"], ["conv0"])
    + _conv("a1", "conv0", 4, k=1)
    + _layer("a1_relu", "ReLU", ["a1"], ["a1"])
    + _conv("a2", "a1", 8)
    + _layer("a2_bn", "BatchNorm", ["a2"], ["a2"])
    + _conv("b1", "conv0", 8, k=1)
    + _layer("sum", "Eltwise", ["a2", "b1"], ["sum"])
    + _layer("sum_relu", "ReLU", ["sum"], ["sum"])
    + _conv("c", "sum", 6)
    + _conv("d", "sum", 6, k=1)
    + _layer("out", "Eltwise", ["c", "d"], ["out"])
    + _layer("loss", "Softmax", ["out"], ["prob"]))


def test_resblock_col_unit_needs_every_consumer():
    _, g = _graph(RESBLOCK)
    # conv0 feeds a1 and b1 (both 1×1 over 8 channels)
    one = _cols_pruned(8, [2], 1)
    assert g.dead_input_channels("a1", {"a1": one}) == []
    assert _rows(g.dead_input_channels("a1", {"a1": one, "b1": one})) == {"conv0": [2]}
    # the Eltwise output feeds c (3×3) and d (1×1): channel 5 needs both, and kills a2 AND b1
    c_cols, d_cols = _cols_pruned(72, [5], 9), _cols_pruned(8, [5], 1)
    assert g.dead_input_channels("c", {"c": c_cols}) == []
    both = {"c": c_cols, "d": d_cols}
    assert _rows(g.dead_input_channels("c", both)) == {"a2": [5], "b1": [5]}
    assert _rows(g.dead_input_channels("d", both)) == {"a2": [5], "b1": [5]}
    # one coupled producer refuses: nothing
    assert g.dead_input_channels("c", both, accept={"b1": False}) == []
    assert _rows(g.dead_input_channels("c", both, accept={"conv0": False})) == {
        "a2": [5], "b1": [5]}
    # c, d outputs are coupled by 'out' and pinned by the Softmax
    assert not g.removable_rows("c").any() and g.removable_rows("a2").all()


def test_resblock_row_unit_through_eltwise():
    _, g = _graph(RESBLOCK)
    assert g.consumer_columns_of_pruned_rows("a2", [5]) == []
    assert g.consumer_columns_of_pruned_rows("a2", [5], {"b1": [4]}) == []
    hits = _cols(g.consumer_columns_of_pruned_rows("a2", [5], {"b1": torch.tensor([4, 5])}))
    assert hits == {"c": list(range(45, 54)), "d": [5]}
    assert _cols(g.consumer_columns_of_pruned_rows("a1", [1])) == {"a2": list(range(9, 18))}
    # a consumer that refuses neighbour updates keeps its columns
    assert _cols(g.consumer_columns_of_pruned_rows("b1", [5], {"a2": [5]},
                                                   accept={"d": False})) == {
        "c": list(range(45, 54))}


def test_resblock_producers_and_consumers():
    _, g = _graph(RESBLOCK)
    srcs = g.producers_of_input("c")
    assert [(s.layer, s.channel_offset, s.kind) for s in srcs] == [("a2", 0, "param"),
                                                                    ("b1", 0, "param")]
    assert srcs[0].path == ("a2_bn", "sum", "sum_relu") and srcs[1].path == ("sum", "sum_relu")
    assert g.producers_of_input("a1")[0].path == ("bn0", "scale0", "relu0")
    assert [c[0] for c in g.consumers_of_output("conv0")] == ["a1", "b1"]
    assert [c[0] for c in g.consumers_of_output("b1")] == ["c", "d"]


# ------------------------------------------------------------------ Concat, Split, grouped
CONCAT = (
    _input([1, 3, 6, 6])
    + _conv("ca", "data", 4)
    + _conv("cb", "data", 6)
    + _layer("cb_relu", "ReLU", ["cb"], ["cb"])
    + _layer("cat", "Concat", ["ca", "cb"], ["cat"])
    + _layer("split", "Split", ["cat"], ["cat1", "cat2"])
    + _conv("cc", "cat1", 5)
    + _layer("pool", "Pooling", ["cat2"], ["pooled"],
             "pooling_param { pool: AVE global_pooling: true }")
    + _layer("fc", "InnerProduct", ["pooled"], ["fc"], "inner_product_param { num_output: 3 }"))


def test_concat_offsets_and_split():
    _, g = _graph(CONCAT)
    srcs = g.producers_of_input("cc")
    assert [(s.layer, s.channel_offset, s.num_channels) for s in srcs] == [("ca", 0, 4),
                                                                            ("cb", 4, 6)]
    assert srcs[1].path == ("cb_relu", "cat", "split")
    assert g.geometry("fc").cols_per_channel == 1
    # Row: cb's filter 1 is channel 5 of the concat, read by cc (3×3) and fc (1 column)
    assert _cols(g.consumer_columns_of_pruned_rows("cb", [1])) == {
        "cc": list(range(45, 54)), "fc": [5]}
    assert _cols(g.consumer_columns_of_pruned_rows("ca", [3])) == {
        "cc": list(range(27, 36)), "fc": [3]}
    # Col: channel 4 (cb row 0) and 2 (ca row 2) must be dropped by both cc and fc
    cc = _cols_pruned(90, [2, 4], 9)
    assert g.dead_input_channels("cc", {"cc": cc}) == []
    assert _rows(g.dead_input_channels("cc", {"cc": cc, "fc": _cols_pruned(10, [2, 4], 1)})) == {
        "ca": [2], "cb": [0]}


GROUPED = (
    _input([1, 3, 6, 6])
    + _conv("c1", "data", 8)
    + _layer("bn", "BatchNorm", ["c1"], ["c1"])
    + _conv("grp", "c1", 8, extra="group: 4")
    + _conv("dw", "grp", 8, extra="group: 8"))


def test_grouped_consumer():
    _, g = _graph(GROUPED)
    geo = g.geometry("grp")
    assert (geo.group, geo.num_cols, geo.cols_per_channel) == (4, 18, 9)
    # channel 5 = group 2, channel 1 within it: columns 9..17 of group 2 only
    [hit] = g.consumer_columns_of_pruned_rows("c1", [5])
    assert hit.layer == "grp" and hit.columns.tolist() == list(range(9, 18))
    assert hit.groups.tolist() == [2] * 9
    mask = hit.mask(18, 4)
    assert mask.sum() == 9 and mask[2, 9:].all()
    # depthwise: channel 6 is group 6, its whole 9-column slice
    [dw] = g.consumer_columns_of_pruned_rows("grp", torch.tensor([6]))
    assert dw.columns.tolist() == list(range(9)) and dw.groups.tolist() == [6] * 9
    # Col, per-group flags: block 1 of group 2 -> c1 row 5 only
    per_group = _cols_pruned(18, [(2, 1)], 9, groups=4)
    assert _rows(g.dead_input_channels("grp", {"grp": per_group})) == {"c1": [5]}
    # shared flags (Caffe's view): block 1 in every group -> channels 1, 3, 5, 7
    shared = _cols_pruned(18, [1], 9)
    assert _rows(g.dead_input_channels("grp", {"grp": shared})) == {"c1": [1, 3, 5, 7]}
    # depthwise per group: group 3 all pruned -> grp row 3
    dw_cols = torch.zeros(8, 9, dtype=torch.bool)
    dw_cols[3] = True
    assert _rows(g.dead_input_channels("dw", {"dw": dw_cols})) == {"grp": [3]}


def test_grouped_columns_make_the_conv_blind_to_the_channel():
    net, g = _graph(GROUPED)
    [hit] = g.consumer_columns_of_pruned_rows("c1", [5])
    conv = net.layer("grp")
    with torch.no_grad():
        conv.weight.normal_()
        G.zero_groups_(conv.weight, cols=hit.mask(18, 4))
        x = torch.randn(1, 8, 6, 6)
        y = conv(x)
        x[:, 5] += 3
        torch.testing.assert_close(conv(x), y)
        x[:, 4] += 3  # same group, other channel: still read
        assert not torch.allclose(conv(x), y)


def test_update_row_col_false_from_prototxt():
    text = LENET.replace('convolution_param { num_output: 20 kernel_size: 5 } }',
                         'convolution_param { num_output: 20 kernel_size: 5 } '
                         'prune_param { IF_update_row_col: false } }')
    _, g = _graph(text)
    conv2 = _cols_pruned(500, [3], 25)
    assert not g.accepts("conv1") and g.accepts("conv2")
    assert g.dead_input_channels("conv2", {"conv2": conv2}) == []
    assert _rows(g.dead_input_channels("conv2", {"conv2": conv2}, accept={"conv1": True})) == {
        "conv1": [3]}
    # Row unit: conv1 as a consumer of data is irrelevant; conv2 accepts conv1's rows
    assert _cols(g.consumer_columns_of_pruned_rows("conv1", [0])) == {"conv2": list(range(25))}


def test_stops_pin_channels():
    text = (_input([1, 3, 8, 8]) + _conv("c1", "data", 6)
            + _layer("norm", "LRN", ["c1"], ["n1"], "lrn_param { local_size: 3 }")
            + _conv("c2", "n1", 4)
            + _layer("flat", "Flatten", ["c2"], ["f"])
            + _layer("fc", "InnerProduct", ["f"], ["fc"], "inner_product_param { num_output: 2 }"))
    _, g = _graph(text)
    [src] = g.producers_of_input("c2")
    assert (src.layer, src.kind) == ("norm", "stop")
    assert g.dead_input_channels("c2", {"c2": torch.ones(54, dtype=torch.bool)}) == []
    assert g.consumer_columns_of_pruned_rows("c1", [0]) == []
    assert not g.removable_rows("c1").any() and not g.removable_rows("c2").any()
    within = text.replace("local_size: 3", "local_size: 3 norm_region: WITHIN_CHANNEL")
    _, g = _graph(within)
    assert g.producers_of_input("c2")[0].layer == "c1"
    assert _rows(g.dead_input_channels("c2", {"c2": _cols_pruned(54, [1], 9)})) == {"c1": [1]}


# ------------------------------------------------------------------ the shipped ResNet-50
@pytest.fixture(scope="module")
def resnet50():
    path = REPO / "compression_experiments" / "resnet50" / "deploy.prototxt"
    net = Net(with_batch_size(read_net_prototxt(str(path)), 1), 1, source=str(path))
    start = time.perf_counter()
    graph = ChannelGraph(net)
    return net, graph, time.perf_counter() - start


def test_resnet50_graph(resnet50):
    net, g, seconds = resnet50
    assert seconds < 2.0
    types = [g.geometry(n).type for n in g.registered]
    assert types.count("Convolution") == 53 and types.count("InnerProduct") == 1
    assert g.registered[0] == "conv1" and g.registered[-1] == "fc1000"
    [src] = g.producers_of_input("res2a_branch2a")
    assert src.layer == "conv1" and src.kind == "param"
    assert src.path == ("bn_conv1", "scale_conv1", "conv1_relu", "pool1")
    srcs = g.producers_of_input("res2b_branch2a")
    assert {s.layer for s in srcs} == {"res2a_branch1", "res2a_branch2c"}
    assert all("res2a" in s.path and s.channel_offset == 0 for s in srcs)
    assert {s.layer for s in g.producers_of_input("res3a_branch1")} == {
        "res2a_branch1", "res2a_branch2c", "res2b_branch2c", "res2c_branch2c"}
    assert g.geometry("fc1000").cols_per_channel == 1  # after global pool5
    assert not g.removable_rows("fc1000").any() and g.removable_rows("res5c_branch2c").all()


def test_resnet50_propagation(resnet50):
    _, g, _ = resnet50
    # res2a's channel 9 dies only when both coupled producers drop row 9 ...
    assert g.consumer_columns_of_pruned_rows("res2a_branch1", [9]) == []
    hits = _cols(g.consumer_columns_of_pruned_rows("res2a_branch1", [9],
                                                   {"res2a_branch2c": [9]}))
    assert hits == {"res2b_branch2a": [9]}  # res2b adds res2b_branch2c's channel 9
    # ... and the stage's filter 9 can go only when all four stage-2 readers drop channel 9
    readers = ["res2b_branch2a", "res2c_branch2a", "res3a_branch1", "res3a_branch2a"]
    cols = {r: _cols_pruned(g.geometry(r).num_cols, [9], g.geometry(r).cols_per_channel)
            for r in readers}
    assert _rows(g.dead_input_channels("res2b_branch2a", cols)) == {
        n: [9] for n in ["res2a_branch1", "res2a_branch2c", "res2b_branch2c", "res2c_branch2c"]}
    cols.pop("res3a_branch1")
    assert g.dead_input_channels("res2b_branch2a", cols) == []


def test_two_bottom_conv_and_net_outputs():
    """A conv with two bottoms shares its columns: a block dies only when dead in both inputs.
    Its two tops are net outputs, so its own rows are pinned."""
    text = (_input([1, 3, 6, 6]) + _conv("p", "data", 4) + _conv("q", "data", 4)
            + '''layer { name: "s" type: "Convolution" bottom: "p" bottom: "q" top: "s1" top: "s2"
                 convolution_param { num_output: 2 kernel_size: 1 } }''')
    _, g = _graph(text)
    assert g.consumer_columns_of_pruned_rows("p", [1]) == []
    assert _cols(g.consumer_columns_of_pruned_rows("p", [1], {"q": [1]})) == {"s": [1]}
    assert _rows(g.dead_input_channels("s", {"s": _cols_pruned(4, [2], 1)})) == {
        "p": [2], "q": [2]}
    assert g.removable_rows("p").all() and not g.removable_rows("s").any()

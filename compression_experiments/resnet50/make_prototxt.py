#!/usr/bin/env python3
"""Write ResNet-50 train_val.prototxt and deploy.prototxt for the IncReg experiment.

This script is the source of truth for both files; edit it, not them, and run

    python compression_experiments/resnet50/make_prototxt.py          # rewrite both files
    python compression_experiments/resnet50/make_prototxt.py --check  # exit 1 if they are stale

The network follows the Caffe model-zoo ResNet-50 of KaimingHe/deep-residual-networks: layer
and blob names, bottleneck blocks with a projection shortcut (branch1) on the first block of
each stage, stride 2 on branch1 and branch2a of res3a/res4a/res5a, frozen BatchNorm
(use_global_stats) followed by a Scale with bias, and no conv bias except on conv1.
Fillers, used only where no --weights caffemodel supplies a layer: msra (He et al.) on the convs,
xavier on fc1000, Caffe's defaults elsewhere (biases 0, Scale 1). BatchNorm has no filler: its
statistics start at 0 (moving_average_factor 0), which a frozen BatchNorm turns into
x / sqrt(eps), so a start without a caffemodel still needs one that holds BN statistics.

train_val adds the ImageNet LMDB data layers, the loss, the two accuracies and, on all 53
convolutions, the Caffe_IncReg prune_param blocks (prune_ratio 0.9, per-layer
prune_ratio_step). IF_update_row_col is false on conv1, every branch1 and every branch2c: their
outputs meet other layers' outputs (pool1 feeds two convs, the others feed an Eltwise sum), so
removing their filters because of what the next-indexed layer pruned would be wrong.

Standard library only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXPERIMENT = "compression_experiments/resnet50"

# (stage, blocks, bottleneck width, output width, stride of the first block)
STAGES = [
    (2, "abc", 64, 256, 1),
    (3, "abcd", 128, 512, 2),
    (4, "abcdef", 256, 1024, 2),
    (5, "abc", 512, 2048, 2),
]

# prune_ratio_step per conv (reference section 6.3). Strings, so the files show the values
# exactly as written here. Per block: (branch1 or None, branch2a, branch2b, branch2c).
CONV1_STEP = "0.5132"
BLOCK_STEPS = {
    "2a": ("0.4984", "0.5002", "0.5034", "0.4975"),
    "2b": (None, "0.4965", "0.5023", "0.4957"),
    "2c": (None, "0.4961", "0.5019", "0.4955"),
    "3a": ("0.5034", "0.4944", "0.5024", "0.4959"),
    "3b": (None, "0.4961", "0.5021", "0.4956"),
    "3c": (None, "0.496", "0.5025", "0.496"),
    "3d": (None, "0.4958", "0.5021", "0.4959"),
    "4a": ("0.5026", "0.4942", "0.5025", "0.4958"),
    "4b": (None, "0.496", "0.5023", "0.4956"),
    "4c": (None, "0.4957", "0.5021", "0.4956"),
    "4d": (None, "0.4956", "0.5021", "0.4956"),
    "4e": (None, "0.4955", "0.5021", "0.4956"),
    "4f": (None, "0.4955", "0.5022", "0.4958"),
    "5a": ("0.5016", "0.4934", "0.5021", "0.4954"),
    "5b": (None, "0.4955", "0.5021", "0.4954"),
    "5c": (None, "0.4954", "0.5023", "0.4955"),
}
PRUNE_RATIO = "0.9"

MEAN_FILE = "data/ilsvrc12/imagenet_mean.binaryproto"
TRAIN_LMDB = "data/ilsvrc12/ilsvrc12_train_lmdb"
VAL_LMDB = "data/ilsvrc12/ilsvrc12_val_lmdb"


# --------------------------------------------------------------------------- text emitter
# A layer is a list of (key, value) pairs; a value is a str (written verbatim: numbers, enums,
# and strings already quoted by q()) or a nested list of pairs (a message).


def q(s: str) -> str:
    return '"' + s + '"'


def emit(pairs: list, indent: int = 0) -> list[str]:
    pad = "  " * indent
    out = []
    for key, value in pairs:
        if isinstance(value, list):
            out.append(f"{pad}{key} {{")
            out.extend(emit(value, indent + 1))
            out.append(f"{pad}}}")
        else:
            out.append(f"{pad}{key}: {value}")
    return out


def layer(name: str, type_: str, bottoms: list[str], tops: list[str], *body) -> list:
    pairs = [("name", q(name)), ("type", q(type_))]
    pairs += [("bottom", q(b)) for b in bottoms]
    pairs += [("top", q(t)) for t in tops]
    for item in body:
        pairs.append(item)
    return pairs


# --------------------------------------------------------------------------- the network


def conv(name, bottom, num_output, kernel, stride, pad, *, bias, prune):
    """Convolution; prune is None (deploy) or (step, update_row_col) for train_val."""
    body = []
    if prune is not None:
        step, update_row_col = prune
        pp = [("prune_ratio", PRUNE_RATIO), ("prune_ratio_step", step)]
        if not update_row_col:
            pp.append(("IF_update_row_col", "false"))
        body.append(("prune_param", pp))
    cp = [("num_output", str(num_output)), ("kernel_size", str(kernel))]
    if pad:
        cp.append(("pad", str(pad)))
    if stride != 1:
        cp.append(("stride", str(stride)))
    if not bias:
        cp.append(("bias_term", "false"))
    cp.append(("weight_filler", [("type", q("msra"))]))
    body.append(("convolution_param", cp))
    return layer(name, "Convolution", [bottom], [name], *body)


def bn_scale(blob, suffix):
    """Frozen BatchNorm + Scale (with bias), both in place on blob."""
    return [
        layer("bn" + suffix, "BatchNorm", [blob], [blob],
              ("batch_norm_param", [("use_global_stats", "true")])),
        layer("scale" + suffix, "Scale", [blob], [blob],
              ("scale_param", [("bias_term", "true")])),
    ]


def relu(name, blob):
    return layer(name, "ReLU", [blob], [blob])


def body_layers(with_prune: bool) -> list:
    """conv1 … fc1000, identical in train_val and deploy except for prune_param."""
    def prune(step, update_row_col=True):
        return (step, update_row_col) if with_prune else None

    layers = [conv("conv1", "data", 64, 7, 2, 3, bias=True, prune=prune(CONV1_STEP, False))]
    layers += bn_scale("conv1", "_conv1")
    layers.append(relu("conv1_relu", "conv1"))
    layers.append(layer("pool1", "Pooling", ["conv1"], ["pool1"],
                        ("pooling_param", [("pool", "MAX"), ("kernel_size", "3"),
                                           ("stride", "2")])))
    bottom = "pool1"
    for stage, letters, width, out, first_stride in STAGES:
        for i, letter in enumerate(letters):
            tag = f"{stage}{letter}"  # e.g. 2a
            res = "res" + tag
            steps = BLOCK_STEPS[tag]
            stride = first_stride if i == 0 else 1
            if i == 0:
                shortcut = res + "_branch1"
                layers.append(conv(shortcut, bottom, out, 1, stride, 0, bias=False,
                                   prune=prune(steps[0], False)))
                layers += bn_scale(shortcut, tag + "_branch1")
            else:
                shortcut = bottom
            b2a, b2b, b2c = res + "_branch2a", res + "_branch2b", res + "_branch2c"
            layers.append(conv(b2a, bottom, width, 1, stride, 0, bias=False,
                               prune=prune(steps[1])))
            layers += bn_scale(b2a, tag + "_branch2a")
            layers.append(relu(b2a + "_relu", b2a))
            layers.append(conv(b2b, b2a, width, 3, 1, 1, bias=False, prune=prune(steps[2])))
            layers += bn_scale(b2b, tag + "_branch2b")
            layers.append(relu(b2b + "_relu", b2b))
            layers.append(conv(b2c, b2b, out, 1, 1, 0, bias=False,
                               prune=prune(steps[3], False)))
            layers += bn_scale(b2c, tag + "_branch2c")
            layers.append(layer(res, "Eltwise", [shortcut, b2c], [res],
                                ("eltwise_param", [("operation", "SUM")])))
            layers.append(relu(res + "_relu", res))
            bottom = res
    layers.append(layer("pool5", "Pooling", [bottom], ["pool5"],
                        ("pooling_param", [("pool", "AVE"), ("kernel_size", "7"),
                                           ("stride", "1")])))
    layers.append(layer("fc1000", "InnerProduct", ["pool5"], ["fc1000"],
                        ("inner_product_param", [("num_output", "1000"),
                                                   ("weight_filler", [("type", q("xavier"))])])))
    return layers


def data_layer(phase: str) -> list:
    train = phase == "TRAIN"
    return layer(
        "data", "Data", [], ["data", "label"],
        ("include", [("phase", phase)]),
        ("transform_param", [("crop_size", "224"), ("mirror", "true" if train else "false"),
                             ("mean_file", q(MEAN_FILE))]),
        ("data_param", [("source", q(TRAIN_LMDB if train else VAL_LMDB)),
                        ("batch_size", "16" if train else "10"), ("backend", "LMDB")]),
    )


def train_val() -> list:
    layers = [data_layer("TRAIN"), data_layer("TEST")]
    layers += body_layers(with_prune=True)
    layers.append(layer("loss", "SoftmaxWithLoss", ["fc1000", "label"], ["loss"]))
    layers.append(layer("accuracy", "Accuracy", ["fc1000", "label"], ["accuracy"],
                        ("include", [("phase", "TEST")])))
    layers.append(layer("accuracy_top_5", "Accuracy", ["fc1000", "label"], ["accuracy_top_5"],
                        ("include", [("phase", "TEST")]),
                        ("accuracy_param", [("top_k", "5")])))
    return layers


def deploy() -> list:
    layers = [layer("data", "Input", [], ["data"],
                    ("input_param", [("shape", [("dim", "10"), ("dim", "3"),
                                                ("dim", "224"), ("dim", "224")])]))]
    layers += body_layers(with_prune=False)
    layers.append(layer("prob", "Softmax", ["fc1000"], ["prob"]))
    return layers


def render(header: list[str], layers: list) -> str:
    lines = list(header)
    lines.append('name: "ResNet-50"')
    for pairs in layers:
        lines.extend(emit([("layer", pairs)]))
    return "\n".join(lines) + "\n"


GENERATED = f"# Generated by {EXPERIMENT}/make_prototxt.py; edit that script, not this file."


def files() -> dict[str, str]:
    return {
        "train_val.prototxt": render(
            [GENERATED,
             "# ResNet-50 (KaimingHe model-zoo layout) with Caffe_IncReg prune_param on all 53 convs."],
            train_val()),
        "deploy.prototxt": render(
            [GENERATED,
             "# ResNet-50 for inference and `prunekit time`: Input 10x3x224x224 -> prob."],
            deploy()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if a file differs from what would be written")
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: this one)")
    args = ap.parse_args(argv)
    stale = []
    for name, text in files().items():
        path = args.out / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print("stale (run make_prototxt.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

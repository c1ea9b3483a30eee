#!/usr/bin/env python3
"""Derive zoo_blob_shapes.json: the blob shapes Caffe gives the deploy nets at batch 2.

    python tests/data_files/make_zoo_shapes.py           # rewrite zoo_blob_shapes.json
    python tests/data_files/make_zoo_shapes.py --check   # exit 1 if the file is stale

It reads compression_experiments/{vgg16,resnet50}/deploy.prototxt with a minimal text-format
reader and applies Caffe's own shape rules, independently of prunekit:
  * Convolution: out = floor((H + 2p - (d(k-1) + 1)) / s) + 1
  * Pooling: out = ceil((H + 2p - k) / s) + 1, minus 1 if p > 0 and (out-1)*s >= H + p
  * InnerProduct: [N, num_output] (flattens everything after axis 1)
  * ReLU, BatchNorm, Scale, Dropout, Softmax, Eltwise: shape of the (first) bottom
Every top blob is listed once, in order of first appearance, as [N, C, H, W] or [N, C].
It also prints the learnable parameter counts (weights and biases of Convolution/InnerProduct,
gamma and beta of Scale) and the BatchNorm statistics Caffe stores (mean, variance and the
moving-average factor: 2C + 1 per layer). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "zoo_blob_shapes.json"
NETS = ["vgg16", "resnet50"]
BATCH = 2

_TOKEN = re.compile(r'\s*(?:#[^\n]*|"((?:[^"\\]|\\.)*)"|([{}:])|([^\s{}:"#]+))')


def parse(text: str) -> dict:
    """Prototxt text -> {field: [values]}; a value is a str or a nested dict of the same form."""
    tokens = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip():
                raise ValueError(f"cannot tokenize at {pos}: {text[pos:pos + 30]!r}")
            break
        pos = m.end()
        if m.group(1) is not None:
            tokens.append(("str", m.group(1)))
        elif m.group(2):
            tokens.append((m.group(2), m.group(2)))
        elif m.group(3):
            tokens.append(("word", m.group(3)))

    def message(i: int, closing: bool) -> tuple[dict, int]:
        msg: dict = {}
        while i < len(tokens):
            kind, val = tokens[i]
            if kind == "}":
                if not closing:
                    raise ValueError("unbalanced }")
                return msg, i + 1
            key = val
            i += 1
            if tokens[i][0] == ":":
                i += 1
            if tokens[i][0] == "{":
                sub, i = message(i + 1, True)
                msg.setdefault(key, []).append(sub)
            else:
                msg.setdefault(key, []).append(tokens[i][1])
                i += 1
        if closing:
            raise ValueError("missing }")
        return msg, i

    return message(0, False)[0]


def one(msg: dict, key: str, default=None):
    vals = msg.get(key)
    return vals[-1] if vals else default


def ints(msg: dict, key: str, default: int) -> int:
    return int(one(msg, key, default))


def shapes_and_params(net: dict, batch: int) -> tuple[dict, dict]:
    blobs: dict[str, list[int]] = {}
    counts = {"conv_weight": 0, "conv_bias": 0, "fc_weight": 0, "fc_bias": 0, "scale": 0,
              "batchnorm_stats": 0}
    for lyr in net["layer"]:
        kind = one(lyr, "type")
        name = one(lyr, "name")
        bottoms = [blobs[b] for b in lyr.get("bottom", [])]
        if kind == "Input":
            dims = [int(d) for d in one(lyr, "input_param")["shape"][0]["dim"]]
            out = [batch] + dims[1:]
        elif kind == "Convolution":
            p = one(lyr, "convolution_param")
            n, c, h, w = bottoms[0]
            k, s, pad = ints(p, "kernel_size", 0), ints(p, "stride", 1), ints(p, "pad", 0)
            d, g = ints(p, "dilation", 1), ints(p, "group", 1)
            num = ints(p, "num_output", 0)
            ext = d * (k - 1) + 1
            out = [n, num, (h + 2 * pad - ext) // s + 1, (w + 2 * pad - ext) // s + 1]
            counts["conv_weight"] += num * (c // g) * k * k
            if one(p, "bias_term", "true") == "true":
                counts["conv_bias"] += num
        elif kind == "Pooling":
            p = one(lyr, "pooling_param")
            n, c, h, w = bottoms[0]
            k, s, pad = ints(p, "kernel_size", 0), ints(p, "stride", 1), ints(p, "pad", 0)

            def pooled(x: int) -> int:
                o = int(math.ceil((x + 2 * pad - k) / s)) + 1
                if pad > 0 and (o - 1) * s >= x + pad:
                    o -= 1
                return o

            out = [n, c, pooled(h), pooled(w)]
        elif kind == "InnerProduct":
            p = one(lyr, "inner_product_param")
            num = ints(p, "num_output", 0)
            fan_in = math.prod(bottoms[0][1:])
            out = [bottoms[0][0], num]
            counts["fc_weight"] += num * fan_in
            if one(p, "bias_term", "true") == "true":
                counts["fc_bias"] += num
        elif kind in ("ReLU", "Dropout", "Softmax", "BatchNorm", "Scale", "Eltwise"):
            if kind == "Eltwise" and any(b != bottoms[0] for b in bottoms):
                raise ValueError(f"{name}: Eltwise bottoms differ: {bottoms}")
            out = list(bottoms[0])
            if kind == "Scale":
                bias = one(one(lyr, "scale_param", {}), "bias_term", "false") == "true"
                counts["scale"] += out[1] * (2 if bias else 1)
            if kind == "BatchNorm":
                counts["batchnorm_stats"] += 2 * out[1] + 1
        else:
            raise ValueError(f"{name}: layer type {kind} not handled")
        for top in lyr.get("top", []):
            blobs[top] = out
    counts["learnable"] = sum(v for k, v in counts.items() if k != "batchnorm_stats")
    return blobs, counts


def build() -> tuple[dict, dict]:
    shapes, params = {}, {}
    for net in NETS:
        text = (REPO / "compression_experiments" / net / "deploy.prototxt").read_text()
        shapes[net], params[net] = shapes_and_params(parse(text), BATCH)
    return shapes, params


def dump(shapes: dict) -> str:
    # one blob per line keeps diffs readable
    lines = ["{"]
    for i, (net, blobs) in enumerate(shapes.items()):
        lines.append(f'  "{net}": {{')
        items = list(blobs.items())
        for j, (blob, shape) in enumerate(items):
            comma = "," if j < len(items) - 1 else ""
            lines.append(f'    "{blob}": {json.dumps(shape)}{comma}')
        lines.append("  }" + ("," if i < len(shapes) - 1 else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    shapes, params = build()
    text = dump(shapes)
    assert json.loads(text) == shapes
    for net, c in params.items():
        print(f"{net}: " + ", ".join(f"{k} {v:,}" for k, v in c.items()))
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"stale: {OUT}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

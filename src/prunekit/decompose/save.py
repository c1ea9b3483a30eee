"""``decompose``'s three outputs, PREFIX.prototxt, PREFIX.caffemodel and PREFIX.json, written all
or none (prunekit/atomic_group.py): on a full disk no prototxt is left without its weights."""

from __future__ import annotations

import json

from prunekit import caffe
from prunekit.atomic_group import write_files_together
from prunekit.caffe.binaryproto import CAFFEMODEL, serialize_message
from prunekit.decompose.config import config_dict


def save_decomposed(prefix: str, net_param, model, ranks: dict[str, tuple[str, int]]) -> None:
    """``net_param`` (the rewritten prototxt), ``model`` (its caffemodel NetParameter) and the
    ranks as accnn's JSON, under ``prefix`` + .prototxt / .caffemodel / .json."""
    write_files_together([
        (f"{prefix}.prototxt", caffe.to_text(net_param).encode("utf-8"), "prototxt"),
        (f"{prefix}.caffemodel", serialize_message(f"{prefix}.caffemodel", model, CAFFEMODEL),
         "caffemodel"),
        (f"{prefix}.json", (json.dumps(config_dict(ranks), indent=1) + "\n").encode("utf-8"),
         "rank JSON"),
    ])

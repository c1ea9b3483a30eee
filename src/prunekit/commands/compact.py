"""``prunekit compact --model M --weights W --out-model M2 --out-weights W2 [--round-to N]
[--phase TEST]``: a zero-masked model in, a physically smaller model with the same outputs out.

Steps: build the ``--phase`` net at batch 1 with the masked weights, plan and slice
(:mod:`prunekit.compact`), build the compacted net from the new prototxt with the new blobs (its
shapes are checked on the way), run both on one random input and compare (TEST phase; TRAIN
nets have random Dropout), then write the prototxt and caffemodel atomically and print the
report (stdout). Nothing is written when the check fails. See docs/compact.md.
"""

from __future__ import annotations

import os

from prunekit import caffe
from prunekit.compact import build_compacted, compact
from prunekit.compact.report import check_line, format_report
from prunekit.compact.save import save_compacted
from prunekit.compact.verify import compare
from prunekit.errors import PrunekitError
from prunekit.measure.flops import count_net
from prunekit.net.batch_size import with_batch_size
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST, TRAIN
from prunekit.net.weights import load_net_param_blobs

#: Masked and compacted outputs further apart than this (relative to the output scale) mean a
#: prunekit bug, and nothing is written. The tests hold compaction to 1e-4.
CHECK_TOLERANCE = 1e-3


def run_compact(model: str, weights: str, out_model: str, out_weights: str,
                round_to: int = 1, phase: str = "TEST") -> int:
    phases = {"TRAIN": TRAIN, "TEST": TEST}
    if phase.upper() not in phases:
        raise PrunekitError(f"--phase '{phase}': expected TRAIN or TEST")
    if round_to is None or round_to < 1:
        raise PrunekitError(f"--round-to {round_to}: expected a channel multiple of at least 1")
    for flag, source, target in (("--out-model", model, out_model),
                                 ("--out-weights", weights, out_weights)):
        if os.path.exists(source) and os.path.exists(target) and os.path.samefile(source, target):
            raise PrunekitError(f"{flag} {target}: is the input file; write the compacted model "
                                "next to it (the masked model stays as it is)")
    net_param = caffe.read_net_prototxt(model)
    original = caffe.layer_blobs(caffe.read_caffemodel(weights), weights)
    net = Net(with_batch_size(net_param, 1), phases[phase.upper()], source=model)
    new = None
    try:
        _load_all(net, original, model, weights)
        compaction = compact(net_param, net, round_to)
        new = build_compacted(compaction, net.phase, source=out_model)
        if net.phase == TEST:
            diffs = compare(net, new, compaction.stop_layers())
            check = check_line(diffs)
            bad = [d for d in diffs if d.relative > CHECK_TOLERANCE]
            if bad:
                raise PrunekitError(f"internal check failed, nothing written: {check} (a prunekit "
                                    "bug; please report it with the model)")
        else:
            check = check_line(None, "TRAIN phase: Dropout draws differ between the two nets")
        report = format_report(compaction, count_net(net), count_net(new, dense=True), check)
    finally:
        net.close()
        if new is not None:
            new.close()
    caffe.write_prototxt(out_model, compaction.net_param)
    save_compacted(out_weights, compaction, original)
    print(report)
    print(f"Wrote {out_model} and {out_weights}")
    return 0


def _load_all(net: Net, blobs: dict, model: str, weights: str) -> None:
    """Load the masked weights; every layer with blobs must have them in the file (filler
    values would be compacted as if they were trained)."""
    missing = [entry.name for entry, module in net.named_layers()
               if module.caffe_blobs() and not blobs.get(entry.name)]
    if missing:
        raise PrunekitError(f"{weights}: has no weights for layer(s) {', '.join(missing)} of "
                            f"{model}; compact needs the trained (masked) weights of every layer")
    load_net_param_blobs(net, blobs, weights)

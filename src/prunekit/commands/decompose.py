"""``prunekit decompose --model M --weights W --save-model PREFIX (--ratio R | --config C.json |
--layer NAME --K k) [--include-fc] [--search dp|greedy] [--energy weights|data] [--batches N]``:
split conv layers (Tai et al.) and, optionally, InnerProducts (truncated SVD) into low-rank pairs.

Writes PREFIX.prototxt (every phase of M, split layers replaced), PREFIX.caffemodel (the new
blobs, the others copied) and PREFIX.json (the ranks, accnn's format), all atomically and only
after the decomposed net has been built with its blobs. ``--ratio`` picks ranks for a
theoretical conv-MAC speedup (conv + InnerProduct MACs with --include-fc); the shapes come from
M's TEST net. Fine-tune with ``prunekit train --weights PREFIX.caffemodel`` and a solver whose
net is PREFIX.prototxt. See docs/decompose.md.
"""

from __future__ import annotations

import argparse

from prunekit import caffe
from prunekit.commands.flags import flag
from prunekit.decompose.candidates import find_candidates, singular_values
from prunekit.decompose.config import read_config
from prunekit.decompose.auto import auto_ranks, decompose_net
from prunekit.decompose.energies import data_energies
from prunekit.decompose.plan import candidates_for, check_ranks
from prunekit.decompose.report import format_report, split_row
from prunekit.decompose.save import save_decomposed
from prunekit.decompose.rewrite import decomposed_caffemodel
from prunekit.errors import PrunekitError
from prunekit.measure.flops import count_net, totals
from prunekit.net.batch_size import with_batch_size
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST
from prunekit.net.weights import load_net_param_blobs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    flag(parser, "model", required=True, help="net prototxt")
    flag(parser, "weights", required=True, help="trained .caffemodel")
    flag(parser, "save_model", required=True,
         help="PREFIX: writes PREFIX.prototxt, PREFIX.caffemodel and PREFIX.json (the ranks)")
    flag(parser, "ratio", type=float, help="target theoretical conv-MAC speedup (rank selection)")
    flag(parser, "config", help="rank JSON {conv_params: {layer: K}, fc_params: {layer: K}}")
    flag(parser, "layer", help="split this one layer (with --K)")
    parser.add_argument("-K", "--K", dest="k", type=int, help="rank for --layer")
    flag(parser, "include_fc", action="store_true",
         help="--ratio: also split InnerProducts; the target counts conv + InnerProduct MACs")
    flag(parser, "search", default="dp", help="--ratio: dp (exact knapsack, default) or greedy")
    flag(parser, "energy", default="weights",
         help="--ratio: weights (singular values, default) or data (responses on TEST batches)")
    flag(parser, "batches", type=int, default=4, help="--energy data: TEST batches (default 4)")


def run(args: argparse.Namespace) -> int:
    return run_decompose(args.model, args.weights, args.save_model, args.ratio, args.config,
                         args.layer, args.k, args.include_fc, args.search, args.energy,
                         args.batches)


DATA_TYPES = ("Data", "ImageData")


def run_decompose(model: str, weights: str, save_model: str, ratio: float | None = None,
                  config: str | None = None, layer: str | None = None, k: int | None = None,
                  include_fc: bool = False, search: str = "dp", energy: str = "weights",
                  batches: int = 4) -> int:
    _check_mode(ratio, config, layer, k, energy, batches)
    net_param = caffe.read_net_prototxt(model)
    original = caffe.layer_blobs(caffe.read_caffemodel(weights), weights)
    net = Net(with_batch_size(net_param, 1), TEST, source=model)
    new = None
    try:
        load_net_param_blobs(net, original, weights, report=True)
        if ratio is not None:
            ranks = _selected(net, net_param, model, original, weights, ratio, include_fc,
                              search, energy, batches)
        elif config is not None:
            ranks = check_ranks(net, {n: (kd, r) for n, (kd, r) in read_config(config).items()},
                                config)
        else:
            ranks = check_ranks(net, {layer: (None, k)}, f"--layer {layer}")
        _require_weights(ranks, original, weights, model)
        new_param, blobs = decompose_net(net_param, net, ranks)
        cands = candidates_for(net, ranks)
        rows = [split_row(cands[n], r, singular_values(net, n)) for n, (_, r) in ranks.items()]
        new = Net(with_batch_size(new_param, 1), TEST, source=f"{save_model}.prototxt")
        load_net_param_blobs(new, blobs, f"{save_model}.caffemodel")
        report = format_report(rows, totals(count_net(net, dense=True)),
                               totals(count_net(new, dense=True)))
    finally:
        net.close()
        if new is not None:
            new.close()
    save_decomposed(save_model, new_param, decomposed_caffemodel(new_param, original, blobs),
                    ranks)
    print(report)
    print(f"Wrote {save_model}.prototxt, {save_model}.caffemodel and {save_model}.json")
    return 0


def _check_mode(ratio, config, layer, k, energy, batches) -> None:
    modes = [ratio is not None, config is not None, layer is not None or k is not None]
    if sum(modes) != 1:
        raise PrunekitError("give exactly one of --ratio R, --config C.json or --layer NAME --K k")
    if (layer is None) != (k is None):
        raise PrunekitError("--layer and --K go together: the layer to split and its rank")
    if k is not None and k < 1:
        raise PrunekitError(f"--K {k}: expected a rank of at least 1")
    if energy not in ("weights", "data"):
        raise PrunekitError(f"--energy '{energy}': expected 'weights' or 'data'")
    if batches < 1:
        raise PrunekitError(f"--batches {batches}: expected at least 1")


def _selected(net, net_param, model, original, weights, ratio, include_fc, search, energy,
              batches) -> dict[str, tuple[str, int]]:
    """Ranks from rank selection: {layer: (kind, K)}."""
    cands = find_candidates(net, include_fc)
    _require_weights({c.name: None for c in cands}, original, weights, model)
    energies = None
    if energy == "data":
        energies = _data_energies(net_param, model, original, weights, cands, batches)
    return auto_ranks(net, ratio, include_fc, search, energies)


def _data_energies(net_param, model, original, weights, cands, batches):
    """Response energies on ``batches`` TEST batches of the model's own data layers."""
    data_net = Net(net_param, TEST, source=model)
    try:
        if not any(e.type in DATA_TYPES for e in data_net.entries):
            raise PrunekitError(f"--energy data: {model} has no Data or ImageData layer in its "
                                "TEST phase; give the train_val prototxt (with its LMDB)")
        load_net_param_blobs(data_net, original, weights)
        data_net.set_seed(0)
        return data_energies(data_net, cands, batches)
    finally:
        data_net.close()


def _require_weights(ranks, original, weights, model) -> None:
    missing = [name for name in ranks if not original.get(name)]
    if missing:
        raise PrunekitError(f"{weights}: has no weights for layer(s) {', '.join(missing)} of "
                            f"{model}; decomposing filler values would be meaningless")

"""Write a plan's ratios as ``prune_param { prune_ratio: r }`` into a copy of a train_val.

Every member conv of a planned item gets the item's ratio (coupled producers prune together);
a conv the plan leaves at 0 gets ``prune_ratio: 0`` (explicitly not pruned). Other fields of an
existing ``prune_param`` (``prune_ratio_step``, ``IF_update_row_col``) are kept.
"""

from __future__ import annotations

from prunekit import caffe
from prunekit.analysis.planner import Plan
from prunekit.errors import PrunekitError


def write_planned_prototxt(model: str, out: str, plan: Plan) -> list[str]:
    """Copy ``model`` to ``out`` (atomically) with the plan's prune_ratios; returns the layers
    set."""
    net_param = caffe.read_net_prototxt(model)
    ratios = {m: it.ratio for it in plan.items for m in it.members}
    found = []
    for layer in net_param.layer:
        if layer.name in ratios:
            layer.prune_param.prune_ratio = ratios[layer.name]
            found.append(layer.name)
    missing = sorted(set(ratios) - set(found))
    if missing:
        raise PrunekitError(f"{model}: has no layer(s) {', '.join(missing)} of the sensitivity "
                            "table (was it made from another model?)")
    caffe.write_prototxt(out, net_param)
    return found

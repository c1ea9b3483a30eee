"""BatchNorm followed by its Scale, run as one ``batch_norm`` call with the Scale's γ and β.

Caffe splits batch normalisation into BatchNorm (normalise, running statistics) and Scale
(γ·x̂ + β). Run as two ops they cost two passes over the activation forward and two backward;
torch's ``batch_norm`` with weight and bias does the same arithmetic in one (ResNet-50 has 53
such pairs). The Net (prunekit/net/graph.py) runs a pair that way, in every phase, when that
gives exactly the pair's results:

* the BatchNorm has one top, not weighted into the loss, and the Scale is the next layer;
* the Scale has one bottom (learnable γ), ``bias_term: true``, axis 1 and one axis (γ and β
  of shape [C]), one top, not weighted into the loss;
* the BatchNorm's top (in place or a blob of its own) is read by that Scale and nothing else,
  so no layer ever needs the un-scaled normalisation.

Nothing else changes: both layers stay in the net with their names and blobs (so caffemodels,
snapshots, weight decay and lr_mult, and the Scale's γ that Slim_Channel and the masks act on,
are what they were), each module called on its own still computes its Caffe layer, and a
hooked BatchNorm or Scale runs unfused (prunekit/net/hooks.py). ``prunekit time`` reports the
pair on the BatchNorm's line and 0 on the Scale's (docs/time.md).
"""

from __future__ import annotations

from prunekit.net.blob_versions import BlobVersions
from prunekit.net.layers.batch_norm import BatchNorm
from prunekit.net.layers.scale import Scale


def _single_top(entry) -> bool:
    return len(entry.tops) == 1 and not any(entry.loss_weights)


def fusable_scale(bn: BatchNorm, scale) -> bool:
    """A Scale that ``bn``'s batch_norm call can apply: γ and β of shape [C] on axis 1."""
    channels = bn.mean.shape[0]
    return (isinstance(scale, Scale) and scale.learnable and scale.bias_term
            and scale.axis == 1 and scale.operand_shape == (channels,))


def bn_scale_pairs(entries, modules, versions: BlobVersions) -> dict[int, int]:
    """{BatchNorm index: Scale index} of every exact pair in ``entries`` (``modules``: the
    Net's layer_modules, by entry key)."""
    pairs: dict[int, int] = {}
    for i, entry in enumerate(entries[:-1]):
        bn = modules[entry.key]
        if not isinstance(bn, BatchNorm) or not _single_top(entry):
            continue
        follower = entries[i + 1]
        if (versions.sole_reader(i, entry.tops[0]) == i + 1 and len(follower.bottoms) == 1
                and _single_top(follower) and fusable_scale(bn, modules[follower.key])):
            pairs[i] = i + 1
    return pairs

"""BatchNorm followed by its Scale, run as one ``batch_norm`` call with Scale's γ and β.

Caffe splits batch normalisation into BatchNorm (normalise, running statistics) and Scale
(γ·x̂ + β). Run as two ops they cost two passes over the activation forward and two backward;
torch's ``batch_norm`` with weight and bias does the same arithmetic in one (ResNet-50 has 53
such pairs). The Net fuses a pair when it is built, in every phase, if the result is exactly
the pair's:

* the BatchNorm has one top, not weighted into the loss;
* the Scale has one bottom (learnable γ), ``bias_term: true``, axis 1 and one axis (γ of shape
  [C]), one top, not weighted into the loss;
* that top version of the BatchNorm (in-place or not) is read by the Scale and by no other
  layer, so nothing ever sees the un-scaled normalisation.

Other pairs stay two layers. The fused pair keeps both layers, their names, blobs (in Caffe's
order, so caffemodels, snapshots, weight decay and lr_mult are unchanged) and the Scale's
parameters, which the solver and the pruning methods (Slim_Channel's γ, masks) keep using: the
BatchNorm reads them at every forward. The Scale's forward passes its input through, so
`prunekit time` shows the pair's time on the BatchNorm's line and ~0 on the Scale's.
"""

from __future__ import annotations

from prunekit.net.layers.batch_norm import BatchNorm
from prunekit.net.layers.scale import Scale


def blob_consumers(entries) -> dict[tuple[int, str], list[int]]:
    """(producer index, blob name) -> indices of the layers that read that version of the blob.

    An in-place layer starts a new version of its top, so the reads before it and after it
    belong to different producers."""
    producer: dict[str, int] = {}
    consumers: dict[tuple[int, str], list[int]] = {}
    for i, entry in enumerate(entries):
        for bottom in entry.bottoms:
            consumers.setdefault((producer.get(bottom, -1), bottom), []).append(i)
        for top in entry.tops:
            producer[top] = i
    return consumers


def _fusable_scale(scale, channels: int) -> bool:
    return (isinstance(scale, Scale) and scale.learnable and scale.bias_term
            and scale.axis == 1 and scale.operand_shape == (channels,))


def fuse_bn_scale(entries, modules) -> list[tuple[str, str]]:
    """Fuse every exact BatchNorm → Scale pair of ``entries`` (``modules``: key -> module);
    returns the (BatchNorm, Scale) layer names fused, in net order."""
    consumers = blob_consumers(entries)
    fused = []
    for i, entry in enumerate(entries):
        bn = modules[entry.key]
        if not isinstance(bn, BatchNorm) or len(entry.tops) != 1 or any(entry.loss_weights):
            continue
        readers = consumers.get((i, entry.tops[0]), [])
        if len(readers) != 1:
            continue
        follower = entries[readers[0]]
        scale = modules[follower.key]
        channels = bn.mean.shape[0]
        if (len(follower.bottoms) != 1 or len(follower.tops) != 1
                or any(follower.loss_weights) or not _fusable_scale(scale, channels)
                or scale.fused_into):
            continue
        bn.fuse_scale(scale)
        fused.append((entry.name, follower.name))
    return fused

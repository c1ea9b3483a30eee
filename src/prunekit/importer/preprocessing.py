"""``--caffe-input``: fold torchvision's input normalisation into the first convolutions, so the
imported net takes what Caffe's Data layers give (BGR pixels 0–255 minus a per-channel mean).

torchvision's weights expect x[c] = (p[c] / 255 − m[c]) / s[c] for RGB pixels p, with
m = (0.485, 0.456, 0.406), s = (0.229, 0.224, 0.225). With Caffe's transform subtracting
``mean_value`` 255·m in BGR order (103.53, 116.28, 123.675) the net receives q = p − 255·m per
channel in BGR order, and x[c] = q[c] / (255·s[c]); a convolution W on x equals the convolution
W' on q with W'[:, bgr] = W[:, rgb] / (255·s[rgb]). Zero padding stays exact (0 in x is 0 in q).
"""

from __future__ import annotations

import numpy as np

from prunekit.errors import PrunekitError

RGB_MEAN = (0.485, 0.456, 0.406)
RGB_STD = (0.229, 0.224, 0.225)
#: Caffe ``mean_value`` (BGR order, pixel units) that goes with the folded net.
BGR_MEAN_VALUES = tuple(round(255 * m, 3) for m in reversed(RGB_MEAN))


def fold_rgb_normalisation(net_param, blobs: dict[str, list[np.ndarray]], source: str) -> None:
    """Rewrite the weights of every layer reading the input blob (see the module docstring);
    each must be a 3-channel Convolution with group 1."""
    inputs = [lp.top[0] for lp in net_param.layer if lp.type == "Input"]
    if len(inputs) != 1:
        raise PrunekitError(f"{source}: --caffe-input needs a net with one input")
    readers = [lp for lp in net_param.layer if inputs[0] in lp.bottom]
    for lp in readers:
        weight = blobs.get(lp.name, [None])[0]
        if (lp.type != "Convolution" or lp.convolution_param.group > 1 or weight is None
                or weight.shape[1] != 3):
            raise PrunekitError(f"{source}: --caffe-input folds the normalisation into the "
                                f"layers reading the input; layer '{lp.name}' ({lp.type}) is "
                                "not a 3-channel, group-1 Convolution")
        per_channel = np.array([255 * s for s in RGB_STD], np.float32).reshape(1, 3, 1, 1)
        blobs[lp.name][0] = np.ascontiguousarray((weight / per_channel)[:, ::-1])

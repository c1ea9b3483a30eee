"""Caffe ``Deconvolution``: the transpose (gradient) of Convolution, same parameters.

Weight [C_in, num_output/group, k...] — the layout torch's conv_transpose uses, so blobs load
unchanged. Output size per axis: s·(in − 1) + d·(k − 1) + 1 − 2p.
"""

from __future__ import annotations

from prunekit.net.channel_rules import OPAQUE, Flow
from prunekit.net.layers._common import layer_error
from prunekit.net.layers.convolution import Convolution


class Deconvolution(Convolution):
    """Caffe Deconvolution (transposed convolution)."""

    transposed = True
    channel_rule = OPAQUE  # its weight is [C_in, N/g, k...]: not traced (yet)

    def channel_flow(self, bottom_shapes) -> Flow:
        return Flow(OPAQUE)

    def weight_shape(self, channels: int) -> tuple[int, ...]:
        """[C_in, num_output/group, k...] (Caffe swaps the roles of input and output)."""
        return (channels, self.num_output // self.group) + self.geometry.kernel

    def output_spatial(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """s·(in − 1) + extent − 2p per axis; error if not positive."""
        g = self.geometry
        out = tuple(g.stride[i] * (n - 1) + g.extent(i) - 2 * g.pad[i]
                    for i, n in enumerate(spatial))
        if any(n <= 0 for n in out):
            raise layer_error(self, f"output size {out} is not positive for input {spatial} "
                                    f"(pad {g.pad} too large)")
        return out

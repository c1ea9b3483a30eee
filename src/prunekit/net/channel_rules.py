"""The channel rules a layer class declares: how the channels of its bottoms reach its tops.

Every layer file in prunekit/net/layers/ says, next to its ``forward``, how channels (axis 1)
flow through it, with a class attribute ``channel_rule`` set to one of the kinds below (the way it
declares ``is_data``). The channel model (prunekit/net/channels.py) reads nothing else: it has no
list of layer types, so a new layer type is one file + one registry line, and that file's rule is
all the pruning (prunekit/prune/dependency.py) and compaction (prunekit/compact/trace.py) queries
need. A layer type with no rule is **opaque**: its channels are pinned (never removed) with a
reason that names it, never silently mis-pruned.

A layer whose flow depends on its parameters (LRN's region, Concat's axis, a Scale's second bottom,
a depthwise conv) refines the class rule per instance in ``channel_flow`` (see
prunekit/net/layers/base.py), returning a :class:`Flow`. A rule says which channels go together;
what a *constant* channel becomes through the layer (compact removes constant channels) is the
layer's ``channel_constants`` (also base.py).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Top channel c is a function of bottom channel c alone; no per-channel blobs (ReLU, Pooling).
PASS = "pass-through"
#: As PASS, with blobs holding one value per channel that go with it (BatchNorm, Scale, PReLU).
AFFINE = "per-channel affine"
#: Producer and consumer: filter (row) n makes top channel n; columns read bottom channels
#: (Convolution, InnerProduct). The layer gives its matrix view in ``filter_geometry``.
FILTERS = "filters"
#: Channel c of every bottom and of the top go together; the top is new (Eltwise).
COUPLES = "couples its bottoms"
#: The top lays its bottoms' channels end to end (Concat along axis 1).
CONCATENATES = "concatenates"
#: Reads every channel at once (Softmax, losses, Accuracy): its bottoms are pinned.
REDUCES = "reduces"
#: Moves channels elsewhere or cannot be followed (Flatten, Reshape, Slice): bottoms pinned, tops
#: are new pinned channels. Slicing along axis 1 would need Slice's slice_point rewritten by
#: compact, which it does not do yet, so Slice declares this kind.
OPAQUE = "opaque"
#: Reads nothing (Silence).
READS_NOTHING = "reads nothing"

KINDS = (PASS, AFFINE, FILTERS, COUPLES, CONCATENATES, REDUCES, OPAQUE, READS_NOTHING)
#: Kinds whose top channel c is bottom channel c (the same node in the channel model).
CHANNELWISE = (PASS, AFFINE)
#: Kinds that pin what they read and make new pinned channels.
STOPS = (REDUCES, OPAQUE)


@dataclass(frozen=True)
class Flow:
    """A layer instance's rule.

    ``kind``: one of KINDS. ``why``: for STOPS, appended to the pin reason ("read by 'x' (Type)"
    + why). ``couple_bottoms``: a CHANNELWISE layer with several bottoms whose other bottoms hold
    one value per channel of bottom 0 on their axis 1 (a squeeze-excitation Scale by an N×C×…
    blob): all bottoms' channel c go together; otherwise the other bottoms are pinned.
    ``rows_per_input``: a FILTERS layer whose every filter reads one input channel only (a
    depthwise conv, group == input channels, ``rows_per_input`` = channel multiplier): input
    channel c goes with its filters c·m … c·m+m−1. 0: filters read many channels.
    """

    kind: str
    why: str = ""
    couple_bottoms: bool = False
    rows_per_input: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown channel rule {self.kind!r}; expected one of {KINDS}")


@dataclass(frozen=True)
class FilterGeometry:
    """A FILTERS layer as a matrix of channels: ``num_rows`` filters, ``group`` g,
    ``cols_per_channel`` K (kh·kw for a conv, H·W of the bottom for an InnerProduct),
    ``in_channels`` C of the bottom; ``spatial``: a conv kernel (True) or a flattened input."""

    num_rows: int
    group: int
    cols_per_channel: int
    in_channels: int
    spatial: bool

    @property
    def num_cols(self) -> int:
        """Columns per group: C/g·K."""
        return self.in_channels // self.group * self.cols_per_channel


def no_rule(type_name: str) -> Flow:
    """The flow of a layer type that declares no rule: opaque, saying so."""
    return Flow(OPAQUE, f": layer type '{type_name}' declares no channel rule "
                        "(prunekit/net/layers/), so its channels are kept")


def class_rule(type_name: str) -> str | None:
    """The rule the registered class of ``type_name`` declares (None: unknown type or no rule)."""
    from prunekit.errors import PrunekitError
    from prunekit.net.registry import layer_class

    try:
        cls = layer_class(type_name, type_name)
    except (PrunekitError, ImportError):  # unknown, or its module needs an extra not installed
        return None
    return getattr(cls, "channel_rule", None)


def harmless_elsewhere(type_name: str) -> bool:
    """A layer of another phase that never needs its bottoms' channels kept: parameter-free
    channel-wise by class (no per-instance refinement), or reading nothing."""
    from prunekit.net.layers.base import CaffeLayer
    from prunekit.net.registry import LAYER_TYPES, layer_class

    if type_name not in LAYER_TYPES:
        return False
    cls = layer_class(type_name, type_name)
    fixed = getattr(cls, "channel_flow", None) is CaffeLayer.channel_flow
    return cls.channel_rule == READS_NOTHING or (cls.channel_rule == PASS and fixed)


def filter_types() -> tuple[str, ...]:
    """Registered layer types whose class declares FILTERS (today Convolution and
    InnerProduct): the layers pruning methods prune and compaction slices."""
    from prunekit.net.registry import LAYER_TYPES

    return tuple(t for t in LAYER_TYPES if class_rule(t) == FILTERS)

"""The pruning units (the ``_<unit>`` of ``prune_method``), one object each.

A unit says what one group of a weight is, in the matrix view of ``groups.py`` (a conv weight
``[N, C/g, kh, kw]`` read as Caffe's GEMM matrix ``[N, C/g·kh·kw]``): its group view (which
dimensions one group spans, how per-group values broadcast back onto the weight), its score (the
group L1 norm), where a layer keeps its pruned flags and counts, and the name the ``[app]`` log
prints. Code that used to test ``unit == "Col"`` asks the unit instead.

* ``Col``: a column, one (input channel, kernel tap) across all filters (IncReg/SPP, GL);
* ``Row``: a row, one filter / output neuron (IncReg/SPP, L1, FPGM, SFP, GL);
* ``Channel``: an input channel of a conv (all its taps in every filter; GL), or a BN/Scale
  channel (Slim);
* ``Shape``: one kernel tap across every filter and channel (GL_Shape, Reg_Shape);
* ``Weight``: one weight (Mag).

A unit is also a ``str`` equal to its proto spelling, so that ``config.unit == "Col"`` keeps
meaning what it meant for code outside this package that still compares names.
"""

from __future__ import annotations

import numpy as np
import torch

from prunekit.prune import groups


class Unit(str):
    """Base unit: the name; the group view and the per-layer state where the unit has them."""

    #: The word of the ``[app]`` lines (``pruned_ratio_col``) and the one-letter table tag.
    log_name = ""
    letter = ""
    #: Whether IncReg may use the fork's scheme 2 (discontinuous increments) with this unit:
    #: the fork's Reg_Row always used scheme 1.
    allows_scheme2 = False
    #: Whether the one-call CPU step (increg/host.py) exists for this unit.
    has_host_step = False

    def __new__(cls) -> Unit:
        return super().__new__(cls, cls.__name__.lstrip("_"))

    def __reduce__(self):  # pickled / copied as the one object of its name
        return unit_named, (str(self),)

    # ------------------------------------------------------------------ group view
    def norm_dims(self, w: torch.Tensor) -> tuple[int, ...]:
        """The weight dimensions one group spans (reduced to compute the group norms)."""
        raise ValueError(f"the {self} unit has no group norm over the weight dimensions")

    def group_l1(self, w: torch.Tensor) -> torch.Tensor:
        """Σ|w| per group (IncReg's score), one value per group in group order."""
        raise ValueError(f"the {self} unit has no IncReg/SPP score")

    def view_shape(self, w: torch.Tensor) -> tuple[int, ...]:
        """The shape per-group values take to broadcast against ``w``."""
        raise ValueError(f"the {self} unit has no per-group view of the weight")

    def broadcast(self, values: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Per-group ``values`` spread onto a weight-shaped tensor."""
        raise ValueError(f"the {self} unit has no per-group view of the weight")

    # ------------------------------------------------------------------ a layer's state
    def pick(self, col_value, row_value):
        """Of a (column, row) pair of per-layer numbers or arrays, the one this unit counts."""
        raise ValueError(f"unknown pruning unit {str(self)!r} here (expected 'Col' or 'Row')")

    def pruned_ratio(self, layer) -> float:
        """The layer's pruned share of this unit's groups (compared with its targets)."""
        return self.pick(layer.pruned_ratio_col, layer.pruned_ratio_row)()

    def pruned_flags(self, layer) -> torch.Tensor:
        """The layer's pruned flags of this unit's groups, on the weight's device."""
        return self.pick(layer.col_pruned, layer.row_pruned)

    def pruned_flags_host(self, layer) -> np.ndarray:
        """The same flags as the layer's host copy (read-only)."""
        return self.pick(layer.col_pruned_host, layer.row_pruned_host)

    def num_pruned(self, layer) -> int:
        return self.pick(layer.num_pruned_col, layer.num_pruned_row)

    def num_groups(self, layer) -> int:
        return self.pick(layer.num_col, layer.num_row)


class _Col(Unit):
    log_name, letter = "col", "c"
    allows_scheme2 = True
    has_host_step = True

    def norm_dims(self, w: torch.Tensor) -> tuple[int, ...]:
        return (0,)

    def group_l1(self, w: torch.Tensor) -> torch.Tensor:
        return groups.column_l1(w)

    def view_shape(self, w: torch.Tensor) -> tuple[int, ...]:
        return groups.col_view_shape(w)

    def broadcast(self, values: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return groups.col_broadcast(values, w)

    def pick(self, col_value, row_value):
        return col_value


class _Row(Unit):
    log_name, letter = "row", "r"

    def norm_dims(self, w: torch.Tensor) -> tuple[int, ...]:
        return tuple(range(1, w.dim()))

    def group_l1(self, w: torch.Tensor) -> torch.Tensor:
        return groups.row_l1(w)

    def view_shape(self, w: torch.Tensor) -> tuple[int, ...]:
        return groups.row_view_shape(w)

    def broadcast(self, values: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return groups.row_broadcast(values, w)

    def pick(self, col_value, row_value):
        return row_value


class _Channel(Unit):
    log_name, letter = "channel", "ch"

    def norm_dims(self, w: torch.Tensor) -> tuple[int, ...]:
        return (0,) + tuple(range(2, w.dim()))


class _Shape(Unit):
    log_name, letter = "shape", "s"


class _Weight(Unit):
    log_name, letter = "weight", "w"


COL, ROW, CHANNEL, SHAPE, WEIGHT = _Col(), _Row(), _Channel(), _Shape(), _Weight()
#: Every unit by its proto spelling.
UNITS: dict[str, Unit] = {str(u): u for u in (COL, ROW, CHANNEL, SHAPE, WEIGHT)}


def unit_named(name: str) -> Unit:
    """The unit object of a name ("Col"); a Unit is returned as it is."""
    try:
        return UNITS[str(name)]
    except KeyError:
        raise ValueError(f"unknown pruning unit {name!r} (expected one of "
                         + ", ".join(UNITS) + ")") from None

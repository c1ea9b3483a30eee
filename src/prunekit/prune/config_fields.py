"""Reading a family's pruning fields from a SolverParameter by its descriptor, so each family
config (prune/config.py and the classes beside its methods) takes exactly the fields
prune/family_fields.py lists for it and no field is copied by hand.

Naming: attributes are the proto field names in lower case with a ``_`` where a lower-case letter
is followed by a capital (``AA`` → ``aa``, ``IF_eswpf`` → ``if_eswpf``, ``compRatio`` →
``comp_ratio``). Float fields come back as the shortest decimal that rounds to the stored float32
(``0.1``, not ``0.10000000149011612``), i.e. what the prototxt says. Unset fields take their proto
default, except those of family_fields.PRESENCE, which are None when unset.
"""

from __future__ import annotations

import re

import numpy as np
from google.protobuf.descriptor import FieldDescriptor

from prunekit.prune.family_fields import PRESENCE


def attr_name(field: str) -> str:
    """The config attribute of a SolverParameter field (``compRatio`` → ``comp_ratio``)."""
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", field).lower()


def f32(value: float) -> float:
    """The decimal a prototxt wrote for a float field (shortest round-trip of the float32)."""
    return float(str(np.float32(value)))


_CONVERT = {
    FieldDescriptor.CPPTYPE_FLOAT: f32,
    FieldDescriptor.CPPTYPE_DOUBLE: float,
    FieldDescriptor.CPPTYPE_INT32: int,
    FieldDescriptor.CPPTYPE_INT64: int,
    FieldDescriptor.CPPTYPE_UINT32: int,
    FieldDescriptor.CPPTYPE_UINT64: int,
    FieldDescriptor.CPPTYPE_BOOL: bool,
    FieldDescriptor.CPPTYPE_STRING: str,
}


def read_fields(param, names: tuple[str, ...]) -> dict[str, object]:
    """{attribute: value} of the SolverParameter fields ``names``, converted by their proto type."""
    by_name = param.DESCRIPTOR.fields_by_name
    values: dict[str, object] = {}
    for name in names:
        if name in PRESENCE and not param.HasField(name):
            values[attr_name(name)] = None
            continue
        values[attr_name(name)] = _CONVERT[by_name[name].cpp_type](getattr(param, name))
    return values

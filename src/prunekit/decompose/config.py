"""The rank configuration file, accnn's format: ``{"conv_params": {layer: K}, "fc_params":
{layer: K}}``. K is the rank per group of a conv (filters of ``<layer>_v`` per group) and the
hidden size of an InnerProduct (outputs of ``<layer>_red``)."""

from __future__ import annotations

import json
import os

from prunekit.atomic import atomic_write_text
from prunekit.errors import PrunekitError

SECTIONS = {"conv_params": "conv", "fc_params": "fc"}


def read_config(path: str | os.PathLike) -> dict[str, tuple[str, int]]:
    """{layer: (kind, K)} from a rank JSON; errors name the file and the bad entry."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise PrunekitError(f"{path}: rank config not found") from None
    except json.JSONDecodeError as err:
        raise PrunekitError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or set(data) - set(SECTIONS):
        raise PrunekitError(f"{path}: expected an object with 'conv_params' and/or 'fc_params'")
    out: dict[str, tuple[str, int]] = {}
    for section, kind in SECTIONS.items():
        ranks = data.get(section, {})
        if not isinstance(ranks, dict):
            raise PrunekitError(f"{path}: '{section}' must map layer names to ranks")
        for layer, rank in ranks.items():
            if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
                raise PrunekitError(f"{path}: {section}.{layer} = {rank!r}: expected an integer "
                                    "rank >= 1")
            out[layer] = (kind, rank)
    return out


def config_dict(ranks: dict[str, tuple[str, int]]) -> dict[str, dict[str, int]]:
    """The JSON object for {layer: (kind, K)}."""
    return {section: {name: k for name, (kind_, k) in ranks.items() if kind_ == kind}
            for section, kind in SECTIONS.items()}


def write_config(path: str | os.PathLike, ranks: dict[str, tuple[str, int]]) -> None:
    atomic_write_text(path, json.dumps(config_dict(ranks), indent=1) + "\n")

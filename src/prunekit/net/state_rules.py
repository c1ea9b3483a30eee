"""Which layers belong to a net: Caffe's include/exclude rules (NetStateRule).

A train_val.prototxt holds both phases; each Net keeps only the layers whose rules match its
phase, level and stages, exactly as Caffe's ``Net::FilterNet`` does.
"""

from __future__ import annotations

from collections.abc import Iterable


def rule_matches(rule, phase: int, level: int, stages: Iterable[str]) -> bool:
    """True when a NetStateRule accepts the net state (phase, level, stages)."""
    stages = set(stages)
    if rule.HasField("phase") and rule.phase != phase:
        return False
    if rule.HasField("min_level") and level < rule.min_level:
        return False
    if rule.HasField("max_level") and level > rule.max_level:
        return False
    if any(stage not in stages for stage in rule.stage):
        return False
    if any(stage in stages for stage in rule.not_stage):
        return False
    return True


def layer_included(layer_param, phase: int, level: int = 0, stages: Iterable[str] = ()) -> bool:
    """Caffe semantics: with include rules, any match keeps the layer; else any exclude drops it."""
    stages = tuple(stages)
    if len(layer_param.include):
        return any(rule_matches(r, phase, level, stages) for r in layer_param.include)
    return not any(rule_matches(r, phase, level, stages) for r in layer_param.exclude)

"""The rule registry: the generic rules of every layer in layers.registry plus the blocks of
layers.quality_rules."""

from __future__ import annotations

from functools import cache

from layers.quality_rules import MUNICIPALITY_HINTS, layer_quality
from layers.quality_spec import KINDS, QualityRule
from layers.registry import LAYERS
from twin.quality.generic import generic_rules


@cache
def _registry() -> dict[str, QualityRule]:
    rules: dict[str, QualityRule] = {}
    for spec in LAYERS.values():
        block = layer_quality(spec.id)
        for rule in (*generic_rules(spec, block, MUNICIPALITY_HINTS.get(spec.id)), *block.rules):
            if rule.id in rules:
                raise ValueError(f"two data-quality rules have the id {rule.id!r}")
            if rule.layer != spec.id:
                raise ValueError(f"rule {rule.id!r} is declared in the block of {spec.id!r} but names {rule.layer!r}")
            unknown = [d for d in rule.depends_on if d not in LAYERS]
            if unknown:
                raise ValueError(f"rule {rule.id!r} depends on unknown layer(s) {', '.join(unknown)}")
            rules[rule.id] = rule
    return rules


def all_rules(layer: str | None = None, kind: str | None = None) -> tuple[QualityRule, ...]:
    """Every rule, or those of one layer and/or one kind, in declaration order (layer by layer)."""
    if kind is not None and kind not in KINDS:
        raise KeyError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    return tuple(r for r in _registry().values()
                 if (layer is None or r.layer == layer) and (kind is None or r.kind == kind))


def get_rule(rule_id: str) -> QualityRule:
    """The rule with this id; KeyError when unknown."""
    try:
        return _registry()[rule_id]
    except KeyError:
        raise KeyError(f"unknown data-quality rule {rule_id!r}; see 'twin quality rules'") from None


def rules_reading(layers: set[str] | frozenset[str]) -> tuple[QualityRule, ...]:
    """The rules a change to these layers can change: those of the layers and those that read them."""
    return tuple(r for r in _registry().values() if r.layer in layers or set(r.depends_on) & layers)

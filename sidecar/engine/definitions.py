"""Flag and segment definitions: what a flag document says, as plain immutable data.

A definition is read (and validated) from a document by `compiler.read_definitions`, compiled into
the evaluator's state by `compiler.compile_definitions`, and kept by the compiled Flag and Segment
(`.definition`), so that what was loaded can be served back (the admin API, the sync stream) and
converted to the flagsidecar.v1 messages (sidecar/schema.py). No closures, nothing compiled.

The normalised document (`flag_document`, `segment_document`, `flag_set_document`): the flag file's
field names (DESIGN.md, "Flag file format"), fields in the order of FLAG_FIELDS etc., and a field
left out when it holds its default: name and description "", version None, no rules, no
defaultVariantWhenOn / defaultVariantWhenOff, trackEvents true, metadata {}, a variant's
description "", a rule's id "" (the rule is named by its index), no constraints, bucketBy ""
("$userId"), a constraint's property "" (segment operations) and no values. Everything else is
written, so reading the normalised document back gives an equal definition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .frozen import quick_init

EMPTY_METADATA: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class VariantDefinition:
    """One value a flag can serve. Also the compiled model's Variant (it needs nothing more)."""

    key: str
    value: Any  # a JSON value, never None
    description: str = ""


@dataclass(frozen=True, slots=True)
class ConstraintDefinition:
    property: str  # "" for the segment operations, which test no property
    operation: str  # a name of operators.OPERATORS
    values: tuple[Any, ...] = ()  # JSON scalars


@dataclass(frozen=True, slots=True)
class DistributionDefinition:
    variant: str  # a variant key of the flag
    percentage: float  # 0 to 100, at most two decimals (an int when the document wrote one)


@dataclass(frozen=True, slots=True)
class FlagRuleDefinition:
    id: str = ""  # "": the rule is named by its index
    constraints: tuple[ConstraintDefinition, ...] = ()
    distributions: tuple[DistributionDefinition, ...] = ()
    bucket_by: str = ""  # "": the user id ("$userId")


@dataclass(frozen=True, slots=True)
class SegmentRuleDefinition:
    id: str = ""
    constraints: tuple[ConstraintDefinition, ...] = ()


@dataclass(frozen=True, slots=True)
class SegmentDefinition:
    key: str
    name: str = ""  # "": the key is the name
    description: str = ""
    rules: tuple[SegmentRuleDefinition, ...] = ()


@quick_init
@dataclass(frozen=True, slots=True)
class FlagDefinition:
    key: str
    enabled: bool
    variants: tuple[VariantDefinition, ...]
    name: str = ""  # "": the key is the name
    description: str = ""
    version: int | None = None  # None: the store counts versions (flag.proto: 0)
    rules: tuple[FlagRuleDefinition, ...] = ()
    default_variant_when_on: str | None = None
    default_variant_when_off: str | None = None
    track_events: bool = True
    metadata: Mapping[str, Any] = field(default_factory=lambda: EMPTY_METADATA)  # JSON values, read-only


@dataclass(frozen=True, slots=True)
class FlagSetDefinition:
    flags: tuple[FlagDefinition, ...] = ()
    segments: tuple[SegmentDefinition, ...] = ()


# ---------------------------------------------------------------- definition -> document


def _constraint_document(constraint: ConstraintDefinition) -> dict[str, Any]:
    document: dict[str, Any] = {}
    if constraint.property:
        document["property"] = constraint.property
    document["operation"] = constraint.operation
    if constraint.values:
        document["values"] = list(constraint.values)
    return document


def rule_document(rule: FlagRuleDefinition | SegmentRuleDefinition) -> dict[str, Any]:
    document: dict[str, Any] = {}
    if rule.id:
        document["id"] = rule.id
    if rule.constraints:
        document["constraints"] = [_constraint_document(c) for c in rule.constraints]
    if isinstance(rule, FlagRuleDefinition):
        document["distributions"] = [
            {"variant": d.variant, "percentage": d.percentage} for d in rule.distributions
        ]
        if rule.bucket_by:
            document["bucketBy"] = rule.bucket_by
    return document


def flag_document(
    flag: FlagDefinition, rule_as: Callable[[FlagRuleDefinition], Any] = rule_document
) -> dict[str, Any]:
    """The flag as the flag file writes it, in normalised form (the module's docstring);
    `rule_as`: what stands for each of its rules."""
    document: dict[str, Any] = {"key": flag.key}
    if flag.name:
        document["name"] = flag.name
    if flag.description:
        document["description"] = flag.description
    document["enabled"] = flag.enabled
    if flag.version is not None:
        document["version"] = flag.version
    document["variants"] = [
        {"key": v.key, "value": v.value, **({"description": v.description} if v.description else {})}
        for v in flag.variants
    ]
    if flag.rules:
        document["rules"] = list(map(rule_as, flag.rules))
    if flag.default_variant_when_on is not None:
        document["defaultVariantWhenOn"] = flag.default_variant_when_on
    if flag.default_variant_when_off is not None:
        document["defaultVariantWhenOff"] = flag.default_variant_when_off
    if not flag.track_events:
        document["trackEvents"] = False
    if flag.metadata:
        document["metadata"] = dict(flag.metadata)
    return document


def segment_document(segment: SegmentDefinition) -> dict[str, Any]:
    document: dict[str, Any] = {"key": segment.key}
    if segment.name:
        document["name"] = segment.name
    if segment.description:
        document["description"] = segment.description
    if segment.rules:
        document["rules"] = [rule_document(rule) for rule in segment.rules]
    return document


def flag_set_document(definitions: FlagSetDefinition) -> dict[str, Any]:
    """The whole set as one flag document (`flags` always, `segments` when there are some)."""
    document: dict[str, Any] = {"flags": [flag_document(flag) for flag in definitions.flags]}
    if definitions.segments:
        document["segments"] = [segment_document(segment) for segment in definitions.segments]
    return document

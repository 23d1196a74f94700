"""The one schema of flags and segments: document <-> definition <-> flagsidecar.v1 messages.

- document -> definition: `from_document`, the engine's reading (sidecar.engine.read_definitions):
  every problem is listed in one FlagSetError;
- definition -> document: `to_document`, the normalised document (sidecar/engine/definitions.py
  says which defaults it leaves out);
- definition -> message: `flag_to_message`, `segment_to_message`, `flag_set_to_message`;
- message -> definition: `flag_set_from_message` (and `flag_from_message`): the message is written
  as a document and read as one, so a message gets the same checks and the same problem list as a
  flag file (an admin write or a sync update is validated exactly like a file).

What the messages cannot tell apart: protobuf's Value has one number type, so a whole number read
from a message is an int (1.0 reads back as 1; a document's 1.0 and 1 mean the same JSON number);
an empty string is an absent name, description, default variant or bucketBy, and version 0 is no
version, which is how the definitions read a document without them too.

Its own layer (pyproject.toml's contracts): the engine may not import generated code, and the
server, the admin API and the sync stream need this one conversion, so it sits between them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2

from flagsidecar.v1 import admin_pb2, flag_pb2

from .engine import (
    ConstraintDefinition,
    FlagDefinition,
    FlagRuleDefinition,
    FlagSetDefinition,
    SegmentDefinition,
    SegmentRuleDefinition,
    flag_set_document,
    read_definitions,
)
from .engine.operators import OPERATORS, SPECS

_OPERATION_NAMES = {spec.number: spec.name for spec in SPECS}
_MAX_EXACT_INTEGER = 2**53

__all__ = [
    "constraint_document",
    "flag_from_message",
    "flag_set_from_message",
    "flag_set_to_message",
    "flag_to_message",
    "from_document",
    "message_to_document",
    "segment_document_of",
    "segment_rule_document",
    "segment_to_message",
    "struct_to_json",
    "to_document",
    "value_to_json",
    "variant_document",
]


# ---------------------------------------------------------------- document <-> definition


def from_document(document: Any, source: str = "") -> FlagSetDefinition:
    """The definitions of a flag document (parsed JSON values); FlagSetError listing every problem."""
    return read_definitions(document, source)


def to_document(definitions: FlagSetDefinition) -> dict[str, Any]:
    """The normalised flag document of `definitions`: `from_document` reads it back as equal."""
    return flag_set_document(definitions)


# ---------------------------------------------------------------- definition -> message


def _value(data: Any) -> struct_pb2.Value:
    return json_format.ParseDict(data, struct_pb2.Value())


def _constraint_message(constraint: ConstraintDefinition) -> flag_pb2.Constraint:
    return flag_pb2.Constraint(
        property=constraint.property,
        operation=OPERATORS[constraint.operation].number,  # type: ignore[arg-type]
        values=[_value(value) for value in constraint.values],
    )


def _constraints(constraints: Iterable[ConstraintDefinition]) -> list[flag_pb2.Constraint]:
    return [_constraint_message(constraint) for constraint in constraints]


def _rule_message(rule: FlagRuleDefinition) -> flag_pb2.FlagRule:
    return flag_pb2.FlagRule(
        id=rule.id,
        constraints=_constraints(rule.constraints),
        distributions=[
            flag_pb2.Distribution(variant=d.variant, percentage=d.percentage) for d in rule.distributions
        ],
        bucket_by=rule.bucket_by,
    )


def flag_to_message(flag: FlagDefinition) -> flag_pb2.Flag:
    message = flag_pb2.Flag(
        key=flag.key,
        name=flag.name,
        description=flag.description,
        enabled=flag.enabled,
        version=flag.version or 0,
        variants=[
            flag_pb2.Variant(key=v.key, description=v.description, value=_value(v.value))
            for v in flag.variants
        ],
        rules=[_rule_message(rule) for rule in flag.rules],
        default_variant_when_on=flag.default_variant_when_on or "",
        default_variant_when_off=flag.default_variant_when_off or "",
        track_events=flag.track_events,
    )
    if flag.metadata:
        json_format.ParseDict(dict(flag.metadata), message.metadata)
    return message


def _segment_rule_message(rule: SegmentRuleDefinition) -> flag_pb2.SegmentRule:
    return flag_pb2.SegmentRule(id=rule.id, constraints=_constraints(rule.constraints))


def segment_to_message(segment: SegmentDefinition) -> flag_pb2.Segment:
    return flag_pb2.Segment(
        key=segment.key,
        name=segment.name,
        description=segment.description,
        rules=[_segment_rule_message(rule) for rule in segment.rules],
    )


def flag_set_to_message(definitions: FlagSetDefinition, revision: int = 0) -> flag_pb2.FlagSet:
    return flag_pb2.FlagSet(
        flags=[flag_to_message(flag) for flag in definitions.flags],
        segments=[segment_to_message(segment) for segment in definitions.segments],
        revision=revision,
    )


# ---------------------------------------------------------------- message -> definition


def _json(data: Any) -> Any:
    """A JSON value read from a protobuf Value/Struct, with whole numbers as ints (see the docstring)."""
    if type(data) is float and data.is_integer() and -_MAX_EXACT_INTEGER <= data <= _MAX_EXACT_INTEGER:
        return int(data)
    if isinstance(data, Mapping):
        return {key: _json(item) for key, item in data.items()}
    if isinstance(data, list):
        return [_json(item) for item in data]
    return data


def value_to_json(value: struct_pb2.Value) -> Any:
    """A Value as a document's JSON value (None when unset; whole numbers as ints)."""
    if value.WhichOneof("kind") is None:
        return None  # an unset Value: the document's missing value
    return _json(json_format.MessageToDict(value))


def struct_to_json(struct: struct_pb2.Struct) -> dict[str, Any]:
    converted: dict[str, Any] = _json(json_format.MessageToDict(struct))
    return converted


_python = value_to_json


def _operation(number: int) -> Any:
    """The operation's name; an unknown number stays what it was sent as, for the problem to name."""
    name = _OPERATION_NAMES.get(number)
    if name is not None:
        return name
    return flag_pb2.Operation.Name(number) if number in flag_pb2.Operation.values() else number


# flag_pb2.Constraint, and the admin API's NewConstraint (the same three fields).
_ConstraintMessage = flag_pb2.Constraint | admin_pb2.NewConstraint


def constraint_document(message: _ConstraintMessage) -> dict[str, Any]:
    """A constraint message as a document's constraint (not yet checked)."""
    return _constraint_document(message)


def _constraint_document(message: _ConstraintMessage) -> dict[str, Any]:
    document: dict[str, Any] = {"operation": _operation(message.operation)}
    if message.property:
        document["property"] = message.property
    if message.values:
        document["values"] = [_python(value) for value in message.values]
    return document


def _text(document: dict[str, Any], name: str, text: str) -> None:
    if text:
        document[name] = text


# The admin API's input messages have the fields of the flag.proto ones they stand for (less the
# version), so one reading serves both.
_FlagMessage = flag_pb2.Flag | admin_pb2.NewFlag
_FlagRuleMessage = flag_pb2.FlagRule | admin_pb2.NewFlagRule | admin_pb2.UpdateFlagRule
_SegmentMessage = flag_pb2.Segment | admin_pb2.NewSegment
_SegmentRuleMessage = flag_pb2.SegmentRule | admin_pb2.NewSegmentRule | admin_pb2.UpdateSegmentRule


def variant_document(message: flag_pb2.Variant | admin_pb2.NewVariant) -> dict[str, Any]:
    """A variant message as a document's variant (not yet checked)."""
    entry: dict[str, Any] = {"key": message.key, "value": _python(message.value)}
    _text(entry, "description", message.description)
    return entry


def flag_rule_document(rule: _FlagRuleMessage) -> dict[str, Any]:
    """A flag rule message as a document's rule (not yet checked)."""
    entry: dict[str, Any] = {
        "constraints": [_constraint_document(c) for c in rule.constraints],
        "distributions": [
            {"variant": d.variant, "percentage": _json(d.percentage)} for d in rule.distributions
        ],
    }
    _text(entry, "id", rule.id)
    _text(entry, "bucketBy", rule.bucket_by)
    return entry


def segment_rule_document(rule: _SegmentRuleMessage) -> dict[str, Any]:
    entry: dict[str, Any] = {"constraints": [_constraint_document(c) for c in rule.constraints]}
    _text(entry, "id", rule.id)
    return entry


def flag_document_of(message: _FlagMessage) -> dict[str, Any]:
    """A Flag (or the admin API's NewFlag) message as a flag document (not yet checked)."""
    document: dict[str, Any] = {"key": message.key, "enabled": message.enabled}
    _text(document, "name", message.name)
    _text(document, "description", message.description)
    if isinstance(message, flag_pb2.Flag) and message.version:
        document["version"] = message.version
    document["variants"] = [variant_document(variant) for variant in message.variants]
    if message.rules:
        document["rules"] = [flag_rule_document(rule) for rule in message.rules]
    _text(document, "defaultVariantWhenOn", message.default_variant_when_on)
    _text(document, "defaultVariantWhenOff", message.default_variant_when_off)
    if message.HasField("track_events"):
        document["trackEvents"] = message.track_events
    if message.HasField("metadata"):
        document["metadata"] = struct_to_json(message.metadata)
    return document


def segment_document_of(message: _SegmentMessage) -> dict[str, Any]:
    """A Segment (or NewSegment) message as a segment document (not yet checked)."""
    document: dict[str, Any] = {"key": message.key}
    _text(document, "name", message.name)
    _text(document, "description", message.description)
    if message.rules:
        document["rules"] = [segment_rule_document(rule) for rule in message.rules]
    return document


def message_to_document(message: flag_pb2.FlagSet) -> dict[str, Any]:
    """A FlagSet message as a flag document (not yet checked: `from_document` checks it)."""
    return {
        "flags": [flag_document_of(flag) for flag in message.flags],
        "segments": [segment_document_of(segment) for segment in message.segments],
    }


def flag_set_from_message(message: flag_pb2.FlagSet, source: str = "") -> FlagSetDefinition:
    """The definitions of a FlagSet message; FlagSetError listing every problem, as for a file."""
    return read_definitions(message_to_document(message), source)


def flag_from_message(
    message: flag_pb2.Flag, segments: Iterable[flag_pb2.Segment] = (), source: str = ""
) -> FlagDefinition:
    """One flag's definition, checked against the segments it may reference."""
    flag_set = flag_pb2.FlagSet(flags=[message], segments=list(segments))
    return flag_set_from_message(flag_set, source).flags[0]

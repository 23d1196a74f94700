"""The admin API's messages <-> the store's documents and records (translation only: what a
document means is the validator's business, in sidecar.store.admin).

A message's empty string is an absent field, as in sidecar.schema; the Update* messages mark what
they change with `optional` fields (HasField), so an unset field is left as it is.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import timestamp_pb2

from flagsidecar.v1 import admin_pb2
from sidecar.schema import (
    constraint_document,
    flag_to_message,
    segment_to_message,
    struct_to_json,
    value_to_json,
)
from sidecar.store.admin import FlagRecord, HistoryRecord, SegmentRecord

Document = dict[str, Any]


def _text(document: Document, name: str, text: str) -> None:
    if text:
        document[name] = text


def _constraints(messages: Any) -> list[Document]:
    return [constraint_document(message) for message in messages]


def flag_rule_document(message: admin_pb2.NewFlagRule | admin_pb2.UpdateFlagRule) -> Document:
    document: Document = {
        "constraints": _constraints(message.constraints),
        "distributions": [
            {"variant": d.variant, "percentage": _number(d.percentage)} for d in message.distributions
        ],
    }
    _text(document, "id", message.id)
    _text(document, "bucketBy", message.bucket_by)
    return document


def segment_rule_document(message: admin_pb2.NewSegmentRule | admin_pb2.UpdateSegmentRule) -> Document:
    document: Document = {"constraints": _constraints(message.constraints)}
    _text(document, "id", message.id)
    return document


def variant_document(message: admin_pb2.NewVariant) -> Document:
    document: Document = {"key": message.key, "value": value_to_json(message.value)}
    _text(document, "description", message.description)
    return document


def new_flag_document(message: admin_pb2.NewFlag) -> Document:
    document: Document = {"key": message.key, "enabled": message.enabled}
    _text(document, "name", message.name)
    _text(document, "description", message.description)
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


def flag_changes(message: admin_pb2.UpdateFlag) -> dict[str, Any]:
    """The fields UpdateFlag sets, by document name; None removes one (an empty string set)."""
    changes: dict[str, Any] = {}
    for field, name in (
        ("name", "name"),
        ("description", "description"),
        ("default_variant_when_on", "defaultVariantWhenOn"),
        ("default_variant_when_off", "defaultVariantWhenOff"),
    ):
        if message.HasField(field):
            changes[name] = getattr(message, field) or None
    if message.HasField("enabled"):
        changes["enabled"] = message.enabled
    if message.HasField("track_events"):
        changes["trackEvents"] = None if message.track_events else False
    if message.HasField("metadata"):
        changes["metadata"] = struct_to_json(message.metadata) or None
    return changes


def variant_changes(message: admin_pb2.UpdateVariant) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if message.HasField("description"):
        changes["description"] = message.description
    if message.HasField("value"):
        changes["value"] = value_to_json(message.value)
    return changes


def new_segment_document(message: admin_pb2.NewSegment) -> Document:
    document: Document = {"key": message.key}
    _text(document, "name", message.name)
    _text(document, "description", message.description)
    if message.rules:
        document["rules"] = [segment_rule_document(rule) for rule in message.rules]
    return document


def segment_changes(message: admin_pb2.UpdateSegment) -> dict[str, Any]:
    return {
        name: getattr(message, name) or None for name in ("name", "description") if message.HasField(name)
    }


def _number(value: float) -> int | float:
    return int(value) if value.is_integer() else value


def timestamp(text: str) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromJsonString(text)
    return stamp


def stored_flag(record: FlagRecord) -> admin_pb2.StoredFlag:
    flag = flag_to_message(record.definition)
    flag.version = record.version
    return admin_pb2.StoredFlag(
        flag=flag, updated_at=timestamp(record.updated_at), updated_by=record.updated_by
    )


def stored_segment(record: SegmentRecord) -> admin_pb2.StoredSegment:
    return admin_pb2.StoredSegment(
        segment=segment_to_message(record.definition),
        version=record.version,
        updated_at=timestamp(record.updated_at),
        updated_by=record.updated_by,
    )


def history_entry(record: HistoryRecord) -> admin_pb2.FlagHistoryEntry:
    entry = admin_pb2.FlagHistoryEntry(
        version=record.version,
        action=record.action,
        actor=record.actor,
        time=timestamp(record.at),
        changed_fields=record.changed,
    )
    if record.before is not None:
        entry.before.CopyFrom(flag_to_message(record.before))
    if record.after is not None:
        entry.after.CopyFrom(flag_to_message(record.after))
        entry.after.version = record.version
    return entry

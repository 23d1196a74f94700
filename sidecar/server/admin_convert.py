"""The admin API's messages <-> the store's documents and records (translation only: what a
document means is the validator's business, in sidecar.store.admin).

A message's empty string is an absent field, as in sidecar.schema; the Update* messages mark what
they change with `optional` fields (HasField), so an unset field is left as it is.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import timestamp_pb2

from flagsidecar.v1 import admin_pb2, evaluation_pb2
from sidecar.schema import (
    flag_document_of,
    flag_rule_document,
    flag_to_message,
    segment_document_of,
    segment_rule_document,
    segment_to_message,
    struct_to_json,
    value_to_json,
    variant_document,
)
from sidecar.server.edge import fill_struct, python_to_value
from sidecar.sources.database import UserEvaluation, UserRecord
from sidecar.store.admin import FlagRecord, HistoryRecord, SegmentRecord

__all__ = [
    "flag_changes",
    "flag_rule_document",
    "history_entry",
    "new_flag_document",
    "new_segment_document",
    "segment_changes",
    "segment_rule_document",
    "stored_flag",
    "stored_segment",
    "stored_user",
    "timestamp",
    "user_evaluation",
    "variant_changes",
    "variant_document",
]


new_flag_document = flag_document_of
new_segment_document = segment_document_of


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


def segment_changes(message: admin_pb2.UpdateSegment) -> dict[str, Any]:
    return {
        name: getattr(message, name) or None for name in ("name", "description") if message.HasField(name)
    }


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


_REASONS = frozenset(evaluation_pb2.Reason.keys())
_ERROR_CODES = frozenset(evaluation_pb2.ErrorCode.keys())


def stored_user(record: UserRecord) -> admin_pb2.StoredUser:
    message = admin_pb2.StoredUser(
        id=record.user_id,
        context_kind=record.context_kind,
        first_seen=timestamp(record.first_seen),
        last_seen=timestamp(record.last_seen),
    )
    if record.context:
        fill_struct(message.context, record.context)
    return message


def user_evaluation(record: UserEvaluation) -> admin_pb2.UserEvaluation:
    message = admin_pb2.UserEvaluation(
        flag_key=record.flag_key,
        flag_version=int(record.flag_version) if record.flag_version.isdigit() else 0,
        variant=record.variant,
        # The events' names are the engine's, which are the proto's (an unknown one: unset).
        reason=record.reason if record.reason in _REASONS else None,
        error_code=record.error_code if record.error_code in _ERROR_CODES else None,
        time=timestamp(record.at),
    )
    if record.value is not None:
        message.value.CopyFrom(python_to_value(record.value))
    return message

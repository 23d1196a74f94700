"""The Kafka exporter's message values: JSON (the default) or protobuf (flagsidecar.v1.ExportedEvent).

A batch is encoded at once, on the exporter's thread, never on the RPC's. Each format names itself
in the `content-type` header, so a consumer of a topic that changed format reads both.

Protobuf: the fields are the JSON form's, with the same values; what a field holds is first made
the exact JSON value (`dump_bytes` then orjson.loads: NaN as null, a date as its text), so the two
formats never disagree. A batch's events share a few value objects (the flag set's), so each value
is converted once per batch and its serialized `value` field appended to the rest of the message:
a protobuf message may list its fields in any order, and a field's bytes are tag, length, bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from google.protobuf import struct_pb2
from google.protobuf.message import DecodeError

from flagsidecar.v1 import evaluation_pb2, event_pb2

from ..feature_event import Event, FeatureEvent, dump_bytes
from .otlp_wire import field

FORMATS = ("json", "protobuf")
CONTENT_TYPE_HEADER = "content-type"
CONTENT_TYPES = {
    "json": b"application/json",
    "protobuf": b"application/x-protobuf; messageType=flagsidecar.v1.ExportedEvent",
}

# Enum numbers by the names the events hold (the engine's names are the proto's).
_REASONS: dict[str, Any] = dict(evaluation_pb2.Reason.items())
_ERROR_CODES: dict[str, Any] = dict(evaluation_pb2.ErrorCode.items())
_VALUE_TAG = bytes([(event_pb2.ExportedEvent.VALUE_FIELD_NUMBER << 3) | 2])  # length-delimited


def encode_json(events: Sequence[Event]) -> list[bytes]:
    """Each event's strict JSON in UTF-8 (feature_event.dump_bytes)."""
    return [dump_bytes(event.to_json()) for event in events]


def encode_protobuf(events: Sequence[Event]) -> list[bytes]:
    """Each event as a serialized flagsidecar.v1.ExportedEvent."""
    message = event_pb2.ExportedEvent
    values: dict[int, bytes] = {}  # id(value) -> its `value` field; the events keep the objects alive
    out: list[bytes] = []
    append = out.append
    for event in events:
        if isinstance(event, FeatureEvent):
            value_field = values.get(id(event.value))
            if value_field is None:
                value_field = values[id(event.value)] = _value_field(event.value)
            head = message(
                kind="feature",
                context_kind=event.context_kind,
                user_key=event.user_key,
                creation_date=int(event.creation_date),
                key=event.key,
                variation=event.variation,
                default=event.default,
                version=event.version,
                source=event.source,
                event_id=event.event_id,
                reason=_REASONS.get(event.reason, 0),
                error_code=_ERROR_CODES.get(event.error_code, 0),
                error_message=event.error_message,
            ).SerializeToString()
            append(head + value_field)
        else:
            data = _as_json(event.to_json())
            tracking = message(
                kind="tracking",
                context_kind=data["contextKind"],
                user_key=data["userKey"],
                creation_date=data["creationDate"],
                key=data["key"],
                event_id=data["eventId"],
            )
            tracking.evaluation_context.update(data["evaluationContext"])
            tracking.tracking_event_details.update(data["trackingEventDetails"])
            append(tracking.SerializeToString(deterministic=True))  # map keys sorted: same event, same bytes
    return out


ENCODERS: Mapping[str, Callable[[Sequence[Event]], list[bytes]]] = {
    "json": encode_json,
    "protobuf": encode_protobuf,
}


def event_id_of(format: str, value: bytes) -> str | None:
    """The eventId inside an encoded message value (None when it cannot be read)."""
    try:
        if format == "protobuf":
            return event_pb2.ExportedEvent.FromString(value).event_id or None
        event_id = orjson.loads(value)["eventId"]
        return event_id if isinstance(event_id, str) else None
    except (TypeError, ValueError, KeyError, DecodeError):
        return None


def _as_json(value: Any) -> Any:
    """The value exactly as the JSON payload has it."""
    return orjson.loads(dump_bytes(value))


def _value_field(value: Any) -> bytes:
    """ExportedEvent's serialized `value` field holding `value` (JSON null for None)."""
    holder = struct_pb2.Struct()
    holder.update({"v": _as_json(value)})
    encoded = holder.fields["v"].SerializeToString(deterministic=True)
    return field(_VALUE_TAG, encoded)

"""The events the pipeline carries: FeatureEvent (one per tracked evaluation) and TrackingEvent.

JSON field names are go-feature-flag's (`exporter/feature_event.go`, `exporter/tracking_event.go`)
plus `eventId`, so that existing consumers of its webhook/file output read ours unchanged and a
receiver can drop the duplicates that at-least-once delivery allows. A FeatureEvent also carries
the evaluation's `reason` and, on error, `errorCode` and `errorMessage` (OpenFeature's names),
which OpenTelemetry's feature_flag.evaluation event needs; they are not CSV/Parquet columns.

The hot path only builds the object (a slots class, positional arguments, a counter for the id);
the JSON dict is built later, on an exporter's worker, by `to_json`.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from sidecar.engine.model import Evaluation

# Unique ids without a uuid4 per event: a random per-process prefix (96 bits) plus a counter.
PROCESS_TOKEN = os.urandom(12).hex()  # as secrets.token_hex(12)
_sequence = itertools.count(1)

SDK_DEFAULT_VARIATION = "SdkDefault"
ANONYMOUS_ATTRIBUTE = "anonymous"
# Every JSON field of either event kind, in export order: the FeatureEvent's go-feature-flag
# fields, then eventId, then the TrackingEvent-only ones (the columns of CSV and Parquet files).
EVENT_FIELDS = (
    "kind",
    "contextKind",
    "userKey",
    "creationDate",
    "key",
    "variation",
    "value",
    "default",
    "version",
    "source",
    "eventId",
    "evaluationContext",
    "trackingEventDetails",
)


# What an event holds in memory, for the byte bound of each exporter's buffer (--events-buffer-bytes).
# A FeatureEvent's strings are its id and the user key; its value is shared with the flag set.
FEATURE_EVENT_BYTES = 512
TRACKING_EVENT_BYTES = 320


def approx_size(value: Any) -> int:
    """Roughly the bytes Python holds for a JSON-like value: sys.getsizeof of every part."""
    total = 0
    stack = [value]
    getsizeof = sys.getsizeof
    while stack:
        item = stack.pop()
        total += getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return total


# orjson writes what the stdlib's json.dumps(separators=(",", ":"), ensure_ascii=False) does, NaN and
# infinities as null, in a fraction of its time: the file and Kafka exporters' cost per event was
# the encoder's (BENCHMARKS.md). Dates and dataclasses go to `default` (str), as with json.dumps.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dump_bytes(value: Any) -> bytes:
    """Strict JSON (RFC 8259) in UTF-8 for any event field or document: every exporter, the spool
    and the dead-letter file encode through here (or `dumps`). NaN and +-Infinity have no JSON form:
    they are written as null (Track refuses them at admission, so only a flag's own variant value
    can hold one); anything else that is not JSON is written as its str()."""
    try:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):  # an integer beyond 64 bits, say
        return _stdlib_dumps(value, (",", ":")).encode()


def dumps(value: Any, separators: tuple[str, str] = (",", ":")) -> str:
    """`dump_bytes` as text; other `separators` (the log exporter's) take the stdlib encoder."""
    if separators == (",", ":"):
        return dump_bytes(value).decode()
    return _stdlib_dumps(value, separators)


def _stdlib_dumps(value: Any, separators: tuple[str, str]) -> str:
    options: dict[str, Any] = {"separators": separators, "ensure_ascii": False, "allow_nan": False}
    try:
        return json.dumps(value, default=str, **options)
    except ValueError:  # NaN or infinity somewhere (or a circular reference, which str() breaks)
        return json.dumps(_finite(value), default=str, **options)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def new_event_id() -> str:
    """A globally unique event id: `<24 hex chars per process>-<sequence in hex>`."""
    return f"{PROCESS_TOKEN}-{next(_sequence):x}"


def context_kind_of(context: Mapping[str, Any] | None) -> str:
    """go-feature-flag's rule: "anonymousUser" when the `anonymous` attribute is boolean true."""
    if context and context.get(ANONYMOUS_ATTRIBUTE) is True:
        return "anonymousUser"
    return "user"


class FeatureEvent:
    """One evaluation of a flag whose track_events is true."""

    __slots__ = (
        "context_kind",
        "creation_date",
        "default",
        "error_code",
        "error_message",
        "event_id",
        "key",
        "reason",
        "source",
        "user_key",
        "value",
        "variation",
        "version",
    )
    kind = "feature"
    size = FEATURE_EVENT_BYTES

    def __init__(
        self,
        key: str,
        user_key: str,
        variation: str,
        value: Any,
        default: bool,
        version: str,
        context_kind: str = "user",
        creation_date: float | None = None,
        source: str = "SERVER",
        event_id: str | None = None,
        reason: str = "",
        error_code: str = "",
        error_message: str = "",
    ) -> None:
        self.key = key
        self.user_key = user_key
        self.variation = variation
        self.value = value
        self.default = default
        self.version = version
        self.context_kind = context_kind
        self.creation_date = time.time() if creation_date is None else creation_date
        self.source = source
        self.event_id = new_event_id() if event_id is None else event_id
        self.reason = reason  # an engine Reason's name: "TARGETING_MATCH", "ERROR", ...
        self.error_code = error_code  # an engine ErrorCode's name, "" unless reason is ERROR
        self.error_message = error_message

    @classmethod
    def from_evaluation(
        cls,
        evaluation: Evaluation,
        user_id: str,
        context: Mapping[str, Any] | None = None,
        source: str = "SERVER",
    ) -> FeatureEvent:
        """The event for one engine Evaluation. Errors, and answers without a value (no default
        set), report variation "SdkDefault", default=true: the caller's default applied."""
        version = str(evaluation.flag_version) if evaluation.flag_version else ""
        kind = "anonymousUser" if context and context.get(ANONYMOUS_ATTRIBUTE) is True else "user"
        error = evaluation.error_code
        served = error is None and evaluation.has_value
        return cls(
            evaluation.flag_key,
            user_id,
            evaluation.variant if served else SDK_DEFAULT_VARIATION,
            evaluation.value if served else None,
            not served,
            version,
            kind,
            None,
            source,
            None,
            evaluation.reason.name,
            "" if error is None else error.name,
            "" if error is None else evaluation.error_message,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": "feature",
            "contextKind": self.context_kind,
            "userKey": self.user_key,
            "creationDate": int(self.creation_date),
            "key": self.key,
            "variation": self.variation,
            "value": self.value,
            "default": self.default,
            "version": self.version,
            "source": self.source,
            "eventId": self.event_id,
        }
        if self.reason:
            data["reason"] = self.reason
        if self.error_code:
            data["errorCode"] = self.error_code
            data["errorMessage"] = self.error_message
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureEvent:
        return cls(
            key=data["key"],
            user_key=data.get("userKey", ""),
            variation=data.get("variation", ""),
            value=data.get("value"),
            default=bool(data.get("default", False)),
            version=str(data.get("version", "")),
            context_kind=data.get("contextKind", "user"),
            creation_date=float(data.get("creationDate", 0)),
            source=data.get("source", "SERVER"),
            event_id=data.get("eventId") or new_event_id(),
            reason=str(data.get("reason") or ""),
            error_code=str(data.get("errorCode") or ""),
            error_message=str(data.get("errorMessage") or ""),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureEvent) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FeatureEvent({self.to_json()!r})"

    def with_context(self, context: Mapping[str, Any], size: int) -> ContextFeatureEvent:
        """The same event carrying the evaluation's context (for an exporter that keeps it: the
        `users` exporter); `size` is the context's approx_size, measured once per call."""
        event = ContextFeatureEvent(
            self.key,
            self.user_key,
            self.variation,
            self.value,
            self.default,
            self.version,
            self.context_kind,
            self.creation_date,
            self.source,
            self.event_id,
            self.reason,
            self.error_code,
            self.error_message,
        )
        event.context = context
        event.size = FEATURE_EVENT_BYTES + size
        return event


class ContextFeatureEvent(FeatureEvent):
    """A FeatureEvent with the evaluation's context, made only for the exporters that ask for it
    (`wants_context`): the others get the plain event, so no context reaches them, nor the
    go-feature-flag JSON they write. Sized by its context (the scheduler's byte budget counts it)."""

    __slots__ = ("context", "size")
    context: Mapping[str, Any]
    size: int

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "context": dict(self.context)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureEvent:
        plain = FeatureEvent.from_json(data)
        context = data.get("context")
        if not isinstance(context, Mapping):
            return plain
        return plain.with_context(context, approx_size(context))


class TrackingEvent:
    """An application's own event ("checkout completed"), sent through EventService.Track."""

    __slots__ = (
        "context_kind",
        "creation_date",
        "evaluation_context",
        "event_id",
        "key",
        "size",
        "tracking_event_details",
        "user_key",
    )
    kind = "tracking"

    def __init__(
        self,
        key: str,
        user_key: str,
        evaluation_context: Mapping[str, Any] | None = None,
        tracking_event_details: Mapping[str, Any] | None = None,
        context_kind: str | None = None,
        creation_date: float | None = None,
        event_id: str | None = None,
    ) -> None:
        self.key = key
        self.user_key = user_key
        self.evaluation_context = dict(evaluation_context or {})
        self.tracking_event_details = dict(tracking_event_details or {})
        self.context_kind = context_kind if context_kind is not None else context_kind_of(evaluation_context)
        self.creation_date = time.time() if creation_date is None else creation_date
        self.event_id = new_event_id() if event_id is None else event_id
        self.size = (
            TRACKING_EVENT_BYTES
            + approx_size(self.evaluation_context)
            + approx_size(self.tracking_event_details)
            + len(key)
            + len(user_key)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "tracking",
            "contextKind": self.context_kind,
            "userKey": self.user_key,
            "creationDate": int(self.creation_date),
            "key": self.key,
            # targetingKey last: it is always the user's id, whatever the context holds.
            "evaluationContext": {**self.evaluation_context, "targetingKey": self.user_key},
            "trackingEventDetails": self.tracking_event_details,
            "eventId": self.event_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrackingEvent:
        context = dict(data.get("evaluationContext") or {})
        context.pop("targetingKey", None)
        return cls(
            key=data["key"],
            user_key=data.get("userKey", ""),
            evaluation_context=context,
            tracking_event_details=data.get("trackingEventDetails") or {},
            context_kind=data.get("contextKind", "user"),
            creation_date=float(data.get("creationDate", 0)),
            event_id=data.get("eventId") or new_event_id(),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrackingEvent) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TrackingEvent({self.to_json()!r})"


Event = FeatureEvent | TrackingEvent


def event_from_json(data: Mapping[str, Any]) -> Event:
    """Rebuild an event from its JSON form (spool replay). Unknown kinds raise ValueError."""
    kind = data.get("kind")
    if kind == "feature":
        return ContextFeatureEvent.from_json(data) if "context" in data else FeatureEvent.from_json(data)
    if kind == "tracking":
        return TrackingEvent.from_json(data)
    raise ValueError(f"unknown event kind {kind!r}")

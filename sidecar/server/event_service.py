"""flagsidecar.v1.EventService: an application's own tracking events, into the event pipeline.

Track is a client stream. Each request becomes a TrackingEvent on the same pipeline as the
evaluation events (to every exporter that takes tracking events). Backpressure instead of loss:
when an exporter's memory buffer and spool are both full, the call ends with RESOURCE_EXHAUSTED;
the events before that one were accepted, and their count is in the `accepted-count` trailing
metadata (and in the message), so the client knows what to send again.

ReportEvaluations is the in-process client's way back (clients/python): a batch of FeatureEvents
it evaluated locally, queued as the sidecar's own evaluation events are (source PROVIDER_CACHE),
with the same backpressure and accepted count. The whole batch is checked before any event is
queued, so an INVALID_ARGUMENT batch queued nothing.

A message is admitted as Evaluate admits its user (edge.admit_user: the limits, no reserved
key, scalars only, finite numbers), its context may not set `targetingKey` (the exported event's
targetingKey is user.id), and its details are within --max-event-details-bytes and hold no NaN
or infinity (JSON cannot carry them). Each refusal is INVALID_ARGUMENT, counted by reason in
flag_sidecar_events_rejected_total.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any, NoReturn

import grpc

from flagsidecar.v1 import evaluation_pb2, event_pb2, event_pb2_grpc
from sidecar.engine.model import USER_ID_PROPERTY
from sidecar.events import EventPipeline, FeatureEvent
from sidecar.events.feature_event import SDK_DEFAULT_VARIATION

from .edge import (
    CallEdge,
    InvalidArgument,
    ResourceExhausted,
    SidecarError,
    abort,
    admit_user,
    struct_to_attributes,
    value_to_python,
)
from .limits import ContextLimits
from .metrics import NULL_METRICS

logger = logging.getLogger(__name__)

SERVICE_NAME: str = event_pb2.DESCRIPTOR.services_by_name["EventService"].full_name
ACCEPTED_METADATA = "accepted-count"
MAX_NAME_LENGTH = 256
TARGETING_KEY = "targetingKey"
MAX_REPORTED_EVENTS = 10_000
REPORTED_SOURCE = "PROVIDER_CACHE"  # go-feature-flag's source for evaluations made in a provider
_CONTEXT_KINDS = frozenset({"user", "anonymousUser"})
_REASONS = frozenset(evaluation_pb2.Reason.values())
_ERROR_CODES = frozenset(evaluation_pb2.ErrorCode.values())


class _Rejected(InvalidArgument):
    """A message Track refuses, with its reason in flag_sidecar_events_rejected_total."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


_BACKPRESSURE = ResourceExhausted("the event buffer and spool are full; send the rest again later")


class EventService(event_pb2_grpc.EventServiceServicer):
    def __init__(self, pipeline: EventPipeline, context_limits: ContextLimits | None = None) -> None:
        self._pipeline = pipeline
        self._context_limits = ContextLimits() if context_limits is None else context_limits
        self._edge = CallEdge(NULL_METRICS)  # the statuses every service sends; Track is not timed

    def Track(
        self, request_iterator: Iterator[event_pb2.TrackRequest], context: grpc.ServicerContext
    ) -> event_pb2.TrackResponse:
        return self._edge.shield("Track", context, self._track, request_iterator, context)

    def _track(
        self, request_iterator: Iterator[event_pb2.TrackRequest], context: grpc.ServicerContext
    ) -> event_pb2.TrackResponse:
        accepted = 0
        for request in request_iterator:
            try:
                attributes, details = self._admit(request)
            except _Rejected as rejected:
                self._pipeline.count_rejected(rejected.reason)
                self._end(context, accepted, rejected)
            if not self._pipeline.can_accept("tracking") or not self._pipeline.track(
                request.name, request.user.id, attributes, details
            ):
                self._pipeline.count_rejected("backpressure")
                self._end(context, accepted, _BACKPRESSURE)
            accepted += 1
        return event_pb2.TrackResponse(accepted=accepted)

    def ReportEvaluations(
        self, request: event_pb2.ReportEvaluationsRequest, context: grpc.ServicerContext
    ) -> event_pb2.ReportEvaluationsResponse:
        return self._edge.shield("ReportEvaluations", context, self._report, request, context)

    def _report(
        self, request: event_pb2.ReportEvaluationsRequest, context: grpc.ServicerContext
    ) -> event_pb2.ReportEvaluationsResponse:
        count = len(request.events)
        if count > MAX_REPORTED_EVENTS:
            self._pipeline.count_rejected("too_many_events")
            raise InvalidArgument(
                f"{count} events in one call; the limit is {MAX_REPORTED_EVENTS}: send smaller batches"
            )
        events, problems = [], []
        for index, message in enumerate(request.events):
            problem = _report_problem(message)
            if problem:
                problems.append(f"events[{index}]: {problem}")
            else:
                events.append(_feature_event(message))
        if problems:
            self._pipeline.count_rejected("invalid_event")
            raise InvalidArgument("; ".join(problems[:10]) + ("; ..." if len(problems) > 10 else ""))
        accepted = 0
        for event in events:
            if not self._pipeline.can_accept("feature") or not self._pipeline.add_event(event):
                self._pipeline.count_rejected("backpressure")
                self._end(context, accepted, _BACKPRESSURE)
            accepted += 1
        return event_pb2.ReportEvaluationsResponse(accepted=accepted)

    def _admit(self, request: event_pb2.TrackRequest) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The message's context and details as the event will hold them; raises _Rejected."""
        if not request.name:
            raise _Rejected("invalid_name", "name is required")
        if len(request.name) > MAX_NAME_LENGTH:
            raise _Rejected(
                "invalid_name", f"name is {len(request.name)} characters; the limit is {MAX_NAME_LENGTH}"
            )
        try:
            attributes = admit_user(self._context_limits, request.user)
        except InvalidArgument as error:
            raise _Rejected("invalid_context", error.message) from None
        attributes.pop(USER_ID_PROPERTY, None)
        if TARGETING_KEY in attributes:
            raise _Rejected(
                "invalid_context",
                f"invalid user context: context key {TARGETING_KEY!r} is reserved in tracking events: "
                "the sidecar sets it to user.id",
            )
        if not request.details.fields:
            return attributes or None, None
        limit = self._pipeline.max_details_bytes
        if limit:
            size = request.details.ByteSize()
            if size > limit:
                raise _Rejected(
                    "details_too_large",
                    f"details are {size} bytes; the limit is {limit} bytes (--max-event-details-bytes)",
                )
        details = struct_to_attributes(request.details)
        bad = _non_finite(details, "details")
        if bad is not None:
            raise _Rejected(
                "invalid_details", f"{bad[0]} holds {bad[1]}, which is not a finite number (JSON has none)"
            )
        return attributes or None, details

    @staticmethod
    def _end(context: grpc.ServicerContext, accepted: int, error: SidecarError) -> NoReturn:
        context.set_trailing_metadata(((ACCEPTED_METADATA, str(accepted)),))
        abort(context, error.code, error.message, f" ({accepted} events of this stream were accepted)")


def _report_problem(message: event_pb2.FeatureEvent) -> str:
    """What is wrong with a reported event ("" when nothing is)."""
    if not message.flag_key:
        return "flag_key is required"
    if len(message.flag_key) > MAX_NAME_LENGTH:
        return f"flag_key is {len(message.flag_key)} characters; the limit is {MAX_NAME_LENGTH}"
    if message.context_kind and message.context_kind not in _CONTEXT_KINDS:
        return f"context_kind {message.context_kind!r}: expected user or anonymousUser"
    if message.reason not in _REASONS:
        return f"reason {message.reason} is not a flagsidecar.v1.Reason"
    if message.error_code not in _ERROR_CODES:
        return f"error_code {message.error_code} is not a flagsidecar.v1.ErrorCode"
    return ""


def _feature_event(message: event_pb2.FeatureEvent) -> FeatureEvent:
    """The pipeline's FeatureEvent for a reported one (engine Reason/ErrorCode numbers match)."""
    error = message.error_code
    return FeatureEvent(
        message.flag_key,
        message.user_key,
        message.variation or SDK_DEFAULT_VARIATION,
        value_to_python(message.value) if message.HasField("value") else None,
        message.sdk_default,
        str(message.flag_version) if message.flag_version else "",
        message.context_kind or "user",
        float(message.creation_date) if message.creation_date else None,
        REPORTED_SOURCE,
        message.event_id or None,
        evaluation_pb2.Reason.Name(message.reason) if message.reason else "",
        evaluation_pb2.ErrorCode.Name(error) if error else "",
        message.error_message if error else "",
    )


def _non_finite(value: Any, path: str) -> tuple[str, float] | None:
    """The path and value of the first NaN or infinity in a JSON-like value, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, value)
    if isinstance(value, dict):
        for key, item in value.items():
            found = _non_finite(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _non_finite(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None

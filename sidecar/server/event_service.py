"""flagsidecar.v1.EventService: an application's own tracking events, into the event pipeline.

Track is a client stream. Each request becomes a TrackingEvent on the same pipeline as the
evaluation events (to every exporter that takes tracking events). Backpressure instead of loss:
when an exporter's memory buffer and spool are both full, the call ends with RESOURCE_EXHAUSTED;
the events before that one were accepted, and their count is in the `accepted-count` trailing
metadata (and in the message), so the client knows what to send again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import grpc

from flagsidecar.v1 import event_pb2, event_pb2_grpc
from sidecar.events import EventPipeline

from .convert import struct_to_attributes
from .limits import ContextLimits, bounded

logger = logging.getLogger(__name__)

SERVICE_NAME: str = event_pb2.DESCRIPTOR.services_by_name["EventService"].full_name
ACCEPTED_METADATA = "accepted-count"
MAX_NAME_LENGTH = 256


class EventService(event_pb2_grpc.EventServiceServicer):
    def __init__(self, pipeline: EventPipeline, context_limits: ContextLimits | None = None) -> None:
        self._pipeline = pipeline
        self._context_limits = ContextLimits() if context_limits is None else context_limits

    def Track(
        self, request_iterator: Iterator[event_pb2.TrackRequest], context: grpc.ServicerContext
    ) -> event_pb2.TrackResponse:
        accepted = 0
        for request in request_iterator:
            problem = self._problem(request)
            if problem is not None:
                self._end(context, accepted, grpc.StatusCode.INVALID_ARGUMENT, problem)
            if not self._pipeline.can_accept("tracking") or not self._pipeline.track(
                request.name,
                request.user.id,
                struct_to_attributes(request.user.context) if request.user.context.fields else None,
                struct_to_attributes(request.details) if request.details.fields else None,
            ):
                self._end(
                    context,
                    accepted,
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "the event buffer and spool are full; send the rest again later",
                )
            accepted += 1
        return event_pb2.TrackResponse(accepted=accepted)

    def _problem(self, request: event_pb2.TrackRequest) -> str | None:
        if not request.name:
            return "name is required"
        if len(request.name) > MAX_NAME_LENGTH:
            return f"name is {len(request.name)} characters; the limit is {MAX_NAME_LENGTH}"
        return self._context_limits.violation(request.user.context)

    @staticmethod
    def _end(context: grpc.ServicerContext, accepted: int, code: grpc.StatusCode, message: str) -> None:
        context.set_trailing_metadata(((ACCEPTED_METADATA, str(accepted)),))
        context.abort(code, f"{bounded(message)} ({accepted} events of this stream were accepted)")

"""flagsidecar.v1.EvaluationService: the native API (DESIGN.md, "Public API")."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc
from sidecar.engine import ErrorCode, InvalidContextError
from sidecar.events import EventPipeline
from sidecar.store import FlagStore

from .convert import EncodedEvaluations, user_context
from .limits import ContextLimits
from .metrics import NULL_METRICS, NullMetrics, SidecarMetrics

logger = logging.getLogger(__name__)

SERVICE_NAME: str = evaluation_pb2.DESCRIPTOR.services_by_name["EvaluationService"].full_name

Request = TypeVar("Request")
Response = TypeVar("Response")
Handler = Callable[["EvaluationService", Request, grpc.ServicerContext], Response]


class RequestFailed(Exception):
    """Ends a call with a gRPC status instead of a response."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def rpc_method(method: Handler[Request, Response]) -> Handler[Request, Response]:
    """Turn RequestFailed into its status and anything unexpected into INTERNAL, and time the
    handler into the latency histogram (by method and status code).

    context.abort() raises, so it is called outside the try: otherwise the catch-all would
    swallow the abort itself.
    """
    name = method.__name__

    @functools.wraps(method)
    def guarded(self: EvaluationService, request: Request, context: grpc.ServicerContext) -> Response:
        started = time.perf_counter()
        try:
            response = method(self, request, context)
            self._metrics.observe_rpc(name, time.perf_counter() - started, "OK")
            return response
        except RequestFailed as failure:
            code, message = failure.code, failure.message
        except Exception:
            logger.exception("%s failed on an unexpected error", name)
            code, message = grpc.StatusCode.INTERNAL, "internal error in the sidecar (see its log)"
        self._metrics.observe_rpc(name, time.perf_counter() - started, code)
        context.abort(code, message)
        raise AssertionError("unreachable: context.abort raises")

    return guarded


class EvaluationService(evaluation_pb2_grpc.EvaluationServiceServicer):
    """Answers with serialized responses (bytes): see `add_to_server` and convert.EncodedEvaluations."""

    def __init__(
        self,
        store: FlagStore,
        encoded: EncodedEvaluations,
        metrics: SidecarMetrics | NullMetrics = NULL_METRICS,
        context_limits: ContextLimits | None = None,
        events: EventPipeline | None = None,
    ) -> None:
        self._store = store
        self._encoded = encoded
        self._metrics = metrics
        self._context_limits = ContextLimits() if context_limits is None else context_limits
        # One non-blocking call per evaluation (a few microseconds; nothing without exporters).
        self._events = EventPipeline() if events is None else events
        self._ready = False

    @rpc_method
    def Evaluate(self, request: evaluation_pb2.EvaluateRequest, context: grpc.ServicerContext) -> bytes:
        flag_key = request.flag_key  # each field read of a protobuf message costs: read them once
        if not flag_key:
            raise RequestFailed(grpc.StatusCode.INVALID_ARGUMENT, "flag_key is required")
        user = request.user
        user_context = self._context_of(user)
        evaluation = self._store.evaluate(flag_key, user_context, request.debug)
        self._metrics.record_evaluation(evaluation)
        self._events.add_evaluation(evaluation, user.id, user_context)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "evaluated %s for user %r: variant %r (%s)",
                evaluation.flag_key,
                user.id,
                evaluation.variant,
                evaluation.reason.name,
            )
        if evaluation.error_code is ErrorCode.FLAG_NOT_FOUND:
            raise RequestFailed(grpc.StatusCode.NOT_FOUND, evaluation.error_message)
        return self._encoded.evaluate_response(evaluation)

    @rpc_method
    def EvaluateAll(self, request: evaluation_pb2.EvaluateAllRequest, context: grpc.ServicerContext) -> bytes:
        flag_keys = list(request.flag_keys) or None  # an empty filter means every flag
        user = request.user
        user_context = self._context_of(user)
        evaluations = self._store.evaluate_all(user_context, flag_keys, request.debug)
        self._metrics.record_evaluations(evaluations)
        self._events.add_evaluations(evaluations, user.id, user_context)
        return self._encoded.evaluate_all_response(evaluations)

    def _context_of(self, user: evaluation_pb2.User) -> dict[str, object]:
        if not self._ready:  # a store never goes back to not ready: ask it until it is
            if not self._store.ready:
                raise RequestFailed(grpc.StatusCode.UNAVAILABLE, "no flag set is loaded yet")
            self._ready = True
        violation = self._context_limits.violation(user.context)
        if violation is not None:
            raise RequestFailed(grpc.StatusCode.INVALID_ARGUMENT, violation)
        try:
            return user_context(user)
        except InvalidContextError as error:
            raise RequestFailed(grpc.StatusCode.INVALID_ARGUMENT, f"invalid user context: {error}") from None


def add_to_server(servicer: EvaluationService, server: grpc.Server) -> None:
    """Like the generated add_EvaluationServiceServicer_to_server, but the servicer answers with
    already-serialized responses (bytes, on every path), so there is no response serializer:
    grpcio sends the bytes as they are, without a Python call per response."""
    handlers = {
        "Evaluate": grpc.unary_unary_rpc_method_handler(
            servicer.Evaluate, request_deserializer=evaluation_pb2.EvaluateRequest.FromString
        ),
        "EvaluateAll": grpc.unary_unary_rpc_method_handler(
            servicer.EvaluateAll, request_deserializer=evaluation_pb2.EvaluateAllRequest.FromString
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)

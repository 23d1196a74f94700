"""flagsidecar.v1.EvaluationService: the native API (DESIGN.md, "Public API").

Each method has two paths. The general one (`Evaluate`, `EvaluateAll`: a parsed request in, every
check and error as the API describes) is the reference. The one grpcio calls (`evaluate_bytes`,
`evaluate_all_bytes`, registered by add_to_server) takes the request's bytes, serves the common
case in one flat function and hands anything else to the general path. Flat because inside the
server every Python call, frame and object touched costs several times its timeit price: grpcio
evicts our code and data from the CPU caches between calls (BENCHMARKS.md, "Where the time goes
now"). tests/server/test_evaluation_paths.py checks that both paths give the same responses,
statuses, metrics and events.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from time import perf_counter
from typing import Any, TypeVar

import grpc

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc
from sidecar.engine import ErrorCode, Evaluation
from sidecar.events import EventPipeline
from sidecar.store import FlagStore

from .convert import EncodedEvaluations
from .edge import (
    NOT_READY,
    CallEdge,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
    admit_user,
    plain_context,
)
from .limits import ContextLimits
from .metrics import NULL_METRICS, NullMetrics, SidecarMetrics

logger = logging.getLogger(__name__)

SERVICE_NAME: str = evaluation_pb2.DESCRIPTOR.services_by_name["EvaluationService"].full_name

Request = TypeVar("Request")
_parse_evaluate = evaluation_pb2.EvaluateRequest.FromString
_parse_evaluate_all = evaluation_pb2.EvaluateAllRequest.FromString
_EVALUATE_REQUEST = evaluation_pb2.EvaluateRequest.DESCRIPTOR.full_name
_EVALUATE_ALL_REQUEST = evaluation_pb2.EvaluateAllRequest.DESCRIPTOR.full_name
_DEBUG = logging.DEBUG


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
        self._edge = CallEdge(metrics)  # statuses and timing, as every service has them
        self._context_limits = ContextLimits() if context_limits is None else context_limits
        # One non-blocking call per evaluation (a few microseconds; nothing without exporters).
        self._events = EventPipeline() if events is None else events
        self._ready = False
        # What the fast paths need to know once. A pipeline's routes are fixed when it is built,
        # and without any add_evaluation does nothing: the fast paths skip the call.
        self._events_enabled = self._events.enabled
        self._answer = store.answer  # the store's hot path, looked up once
        self._max_keys = self._context_limits.max_keys or sys.maxsize
        self._max_context_bytes = self._context_limits.max_bytes or sys.maxsize
        self._max_response_bytes = self._context_limits.max_response_bytes or sys.maxsize

    # ------------------------------------------------------------ what grpcio calls

    def evaluate_bytes(self, request_bytes: bytes, context: grpc.ServicerContext) -> bytes:
        """The Evaluate RPC as registered: the common case flat, anything else through Evaluate.

        The common case: the store is ready, no debug trace, a plain context
        (edge.plain_context) within the limits, a known flag (FlagStore.answer, one snapshot),
        an answer already encoded and no debug logging. A plain context is never larger than the request that
        carried it, so a request within --max-context-bytes needs no Struct.ByteSize() (a costly
        re-encoding, BENCHMARKS.md). Side effects come in the general path's order, at the end, so
        a failure anywhere leaves the same trace as there.
        """
        started = perf_counter()
        try:
            request = _parse_evaluate(request_bytes)
        except Exception as error:
            self._edge.undecodable("Evaluate", _EVALUATE_REQUEST, context, started, error)
        try:
            flag_key = request.flag_key
            if (
                self._ready
                and flag_key
                and not request.debug
                and len(request_bytes) <= self._max_context_bytes
            ):
                user = request.user
                attributes = plain_context(user, self._max_keys)
                if attributes is not None and (answer := self._answer(flag_key, attributes)) is not None:
                    entry = self._encoded.entries.get(id(answer))
                    # A first answer is encoded on the general path, which also does the debug log.
                    if entry is not None and entry[0] is answer and not logger.isEnabledFor(_DEBUG):
                        if self._events_enabled:
                            self._events.add_evaluation(answer, user.id, attributes)
                        self._metrics.observe_evaluation_rpc("Evaluate", entry[2], perf_counter() - started)
                        return entry[1]
        except Exception:
            self._edge.failed("Evaluate", context, started)
        return self._guarded("Evaluate", self._evaluate, request, context, started)

    def evaluate_all_bytes(self, request_bytes: bytes, context: grpc.ServicerContext) -> bytes:
        """The EvaluateAll RPC as registered: as evaluate_bytes, the common case (the same
        conditions, any flags) without the general path's calls, anything else through EvaluateAll."""
        started = perf_counter()
        try:
            request = _parse_evaluate_all(request_bytes)
        except Exception as error:
            self._edge.undecodable("EvaluateAll", _EVALUATE_ALL_REQUEST, context, started, error)
        try:
            if self._ready and not request.debug and len(request_bytes) <= self._max_context_bytes:
                user = request.user
                flag_keys = request.flag_keys
                attributes = plain_context(user, self._max_keys)
                view = self._store.view()  # one snapshot for the key check and the evaluations
                # A request over a limit is refused on the general path.
                if attributes is not None and (
                    not flag_keys or self._context_limits.flag_keys_violation(flag_keys, view) is None
                ):
                    evaluations = view.evaluate_all(attributes, flag_keys)
                    response, keys = self._encoded.evaluate_all_entries(evaluations)
                    if len(response) <= self._max_response_bytes:
                        if self._events_enabled:
                            self._events.add_evaluations(
                                _found(evaluations) if flag_keys else evaluations, user.id, attributes
                            )
                        self._metrics.count_evaluations(keys)
                        self._metrics.observe_rpc("EvaluateAll", perf_counter() - started, "OK")
                        return response
        except Exception:
            self._edge.failed("EvaluateAll", context, started)
        return self._guarded("EvaluateAll", self._evaluate_all, request, context, started)

    # ------------------------------------------------------------ the general path

    def Evaluate(self, request: evaluation_pb2.EvaluateRequest, context: grpc.ServicerContext) -> bytes:
        return self._guarded("Evaluate", self._evaluate, request, context, perf_counter())

    def EvaluateAll(self, request: evaluation_pb2.EvaluateAllRequest, context: grpc.ServicerContext) -> bytes:
        return self._guarded("EvaluateAll", self._evaluate_all, request, context, perf_counter())

    def _evaluate(self, request: evaluation_pb2.EvaluateRequest) -> bytes:
        flag_key = request.flag_key  # each field read of a protobuf message costs: read them once
        if not flag_key:
            raise InvalidArgument("flag_key is required")
        view = self._store.view()  # one snapshot for the key check and the evaluation
        too_long = self._context_limits.flag_key_too_long(flag_key)
        if too_long is not None and flag_key not in view:
            raise InvalidArgument.over(too_long)
        user = request.user
        user_context = self._context_of(user)
        evaluation = view.evaluate(flag_key, user_context, request.debug)
        self._events.add_evaluation(evaluation, user.id, user_context)
        self._metrics.record_evaluation(evaluation)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "evaluated %s for user %r: variant %r (%s)",
                evaluation.flag_key,
                user.id,
                evaluation.variant,
                evaluation.reason.name,
            )
        if evaluation.error_code is ErrorCode.FLAG_NOT_FOUND:
            raise NotFound(evaluation.error_message)
        return self._encoded.evaluate_response(evaluation)

    def _evaluate_all(self, request: evaluation_pb2.EvaluateAllRequest) -> bytes:
        flag_keys = list(request.flag_keys) or None  # an empty filter means every flag
        view = self._store.view()  # one snapshot for the key check and the evaluations
        if flag_keys:
            violated = self._context_limits.flag_keys_violation(flag_keys, view)
            if violated is not None:
                raise InvalidArgument.over(violated)
        user = request.user
        user_context = self._context_of(user)
        evaluations = view.evaluate_all(user_context, flag_keys, request.debug)
        response, keys = self._encoded.evaluate_all_entries(evaluations)
        violated = self._context_limits.response_violation(len(response))
        if violated is not None:
            raise ResourceExhausted.over(violated)
        # An event for a flag that does not exist is noise (README "Limits"): none for unknown keys.
        self._events.add_evaluations(_found(evaluations) if flag_keys else evaluations, user.id, user_context)
        self._metrics.count_evaluations(keys)
        return response

    def _context_of(self, user: evaluation_pb2.User) -> dict[str, object]:
        if not self._ready:  # a store never goes back to not ready: ask it until it is
            if not self._store.ready:
                raise Unavailable(NOT_READY)
            self._ready = True
        return admit_user(self._context_limits, user)

    # ------------------------------------------------------------ statuses and timing

    def _guarded(
        self,
        name: str,
        method: Callable[[Request], bytes],
        request: Request,
        context: grpc.ServicerContext,
        started: float,
    ) -> bytes:
        """A general-path method through the edge: timed from `started`, its errors statuses."""
        return self._edge.run(name, context, started, method, request)


def _found(evaluations: list[Evaluation]) -> list[Evaluation]:
    """The evaluations of flags that exist: an EvaluateAll listing unknown keys makes no event for them."""
    return [evaluation for evaluation in evaluations if evaluation.error_code is not ErrorCode.FLAG_NOT_FOUND]


def add_to_server(servicer: EvaluationService, server: grpc.Server) -> None:
    """Like the generated add_EvaluationServiceServicer_to_server, but with neither a request
    deserializer nor a response serializer: the servicer parses the request bytes itself (the fast
    paths want their length, and grpcio's deserializing wrapper is a Python call per request) and
    answers with already-serialized responses on every path, which grpcio sends as they are."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "Evaluate": grpc.unary_unary_rpc_method_handler(servicer.evaluate_bytes),
        "EvaluateAll": grpc.unary_unary_rpc_method_handler(servicer.evaluate_all_bytes),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)

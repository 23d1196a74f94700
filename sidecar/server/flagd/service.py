"""flagd.evaluation.v1.Service and flagd.evaluation.v2.Service over the FlagStore.

Both versions share one resolver; they differ only in their message classes, in v2's optional
value/variant (which the same code leaves unset where v1 then reads zero values), and in v1's
ResolveAll. The mapping rules are in `mapping.py`'s docstring; the behaviour that differs between
protocol versions is flagd 0.16's:

- disabled flag: reason DISABLED, no value and no variant (v2: both absent; v1: the zero value and
  an empty variant). It is a successful answer, so providers hand the caller its code default.
  Our `defaultVariantWhenOff` is not sent over this protocol (it still decides what the native API
  answers and what the FeatureEvent records).
- ResolveAll (v1 only) answers every flag that evaluates successfully; like flagd it leaves out
  disabled flags and flags whose evaluation fails, and also flags whose type the protocol cannot
  carry (lists, nulls). Integers are sent as double_value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Final, Protocol, TypeVar

import grpc
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct

from ...engine import ErrorCode, Evaluation, Flag, Reason, flag_not_found
from ...store import FlagStore
from ..decoding import UndecodableRequest, add_servicer
from ..edge import (
    FLAGD,
    NOT_READY,
    CallEdge,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
    admit_attributes,
    check_limits,
    evaluation_error,
    fill_struct,
    guarded,
)
from ..limits import ContextLimits
from ..metrics import NULL_METRICS, NullMetrics, SidecarMetrics
from ..streams import StreamAdmission
from . import mapping
from ._generated import evaluation_v1, evaluation_v1_grpc, evaluation_v2, evaluation_v2_grpc
from .mapping import BOOLEAN, NUMBER, OBJECT, STRING, ContextRules
from .stream import DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_MAX_EVENT_STREAMS, EventBroadcaster

# What a Resolve* call asks for: the flag type it accepts, and whether the value must be an int64.
FLOAT: Final = "float"
INTEGER: Final = "integer"
_ACCEPTS: Final[Mapping[str, str]] = {
    BOOLEAN: BOOLEAN,
    STRING: STRING,
    FLOAT: NUMBER,
    INTEGER: NUMBER,
    OBJECT: OBJECT,
}


class EvaluationEvents(Protocol):
    """Where evaluations go to become FeatureEvents: sidecar.events.EventPipeline's hot-path calls,
    made with the same arguments as the native EvaluationService (evaluation, user id, context)."""

    def add_evaluation(
        self, evaluation: Evaluation, user_id: str, context: Mapping[str, Any] | None = None
    ) -> None: ...

    def add_evaluations(
        self, evaluations: Iterable[Evaluation], user_id: str, context: Mapping[str, Any] | None = None
    ) -> None: ...


_DISABLED: Final = mapping.REASONS[Reason.DISABLED]
_Response = TypeVar("_Response", bound=Message)


@dataclass(frozen=True, slots=True)
class _Answer:
    """What a Resolve* call sends: value None means "no value" (DISABLED, or no default set)."""

    value: Any
    variant: str
    reason: str
    metadata: Struct | None


class FlagdResolver:
    """The protocol-independent part of every Resolve* call."""

    def __init__(
        self,
        store: FlagStore,
        rules: ContextRules | None = None,
        events: EvaluationEvents | None = None,
        *,
        metrics: SidecarMetrics | NullMetrics = NULL_METRICS,
        context_limits: ContextLimits | None = None,
    ) -> None:
        self.store = store
        self.rules = rules or ContextRules()
        self.events = events
        self.metrics = metrics
        self.edge = CallEdge(metrics)  # statuses and timing, as every service has them
        self.context_limits = ContextLimits() if context_limits is None else context_limits
        self._metadata: dict[tuple[str, int], Struct | None] = {}

    def _recorded(self, evaluation: Evaluation, user_id: str, context: Mapping[str, Any]) -> None:
        """Count the evaluation and make its FeatureEvent, exactly as the native Evaluate does."""
        self.metrics.record_evaluation(evaluation)
        if self.events is not None:
            self.events.add_evaluation(evaluation, user_id, context)

    # ------------------------------------------------------------ context

    def context_of(self, request_context: Struct, call: grpc.ServicerContext) -> tuple[str, dict[str, Any]]:
        """(user id, engine context) for a request, admitted by the edge (sidecar.server.edge.context);
        raises InvalidArgument / Unavailable."""
        if not self.store.ready:
            raise Unavailable(NOT_READY)
        check_limits(self.context_limits, request_context)
        metadata = call.invocation_metadata() if self.rules.header_keys else None
        user_id, attributes = self.rules.merge(request_context, metadata)
        return user_id, admit_attributes(user_id, attributes, FLAGD)

    # ------------------------------------------------------------ one flag

    def resolve(
        self, flag_key: str, request_context: Struct, call: grpc.ServicerContext, kind: str
    ) -> _Answer:
        """Evaluate `flag_key` as a flag of protocol type `kind`; aborts the call on an error."""
        user_id, context = self.context_of(request_context, call)
        view = self.store.view()  # the flag's type and metadata from the set that evaluates it
        flag: Flag | None = view.flag(flag_key)
        too_long = self.context_limits.flag_key_too_long(flag_key) if flag is None else None
        if too_long is not None:
            raise InvalidArgument.over(too_long)
        evaluation = flag_not_found(flag_key) if flag is None else view.evaluate(flag_key, context)
        answer = self._answer(flag, evaluation, kind)
        # A failed type check is what the client got, so it is what gets counted and recorded.
        self._recorded(answer if isinstance(answer, Evaluation) else evaluation, user_id, context)
        if isinstance(answer, Evaluation):
            raise evaluation_error(answer.error_code, answer.error_message)
        return answer

    def _answer(self, flag: Flag | None, evaluation: Evaluation, kind: str) -> _Answer | Evaluation:
        """The answer to send, or the error Evaluation to fail with."""
        if flag is None or evaluation.error_code is ErrorCode.FLAG_NOT_FOUND:
            return evaluation
        actual = mapping.value_type(evaluation.value) if evaluation.has_value else mapping.flag_type(flag)
        if actual != _ACCEPTS[kind]:
            return _type_mismatch(evaluation, flag, f"a {actual} flag, not a {_ACCEPTS[kind]} flag")
        if evaluation.is_error:
            return evaluation
        if evaluation.reason is Reason.DISABLED:
            # flagd 0.16: DISABLED with no value and no variant, whatever defaultVariantWhenOff says.
            return _Answer(None, "", _DISABLED, self.metadata_of(flag))
        if not evaluation.has_value:
            # No default set (flagd's null defaultVariant): reason DEFAULT, no value, no variant,
            # so the provider returns the caller's code default at once.
            return _Answer(None, "", mapping.REASONS[evaluation.reason], self.metadata_of(flag))
        value = evaluation.value
        if kind == FLOAT:
            value = float(value)
        elif kind == INTEGER:
            value = mapping.to_int64(value)
            if value is None:
                return _type_mismatch(evaluation, flag, f"{evaluation.value!r}, not a 64-bit integer")
        return _Answer(value, evaluation.variant, mapping.REASONS[evaluation.reason], self.metadata_of(flag))

    def metadata_of(self, flag: Flag) -> Struct | None:
        """The flag's metadata as a Struct (built once per flag version), None when it has none."""
        if not flag.metadata:
            return None
        key = (flag.key, flag.version)
        struct = self._metadata.get(key)
        if struct is None:
            if len(self._metadata) > 10_000:
                self._metadata.clear()
            struct = self._metadata[key] = fill_struct(Struct(), flag.metadata)
        return struct

    # ------------------------------------------------------------ every flag

    def resolve_all(
        self, request_context: Struct, call: grpc.ServicerContext, any_flag: type[Any]
    ) -> dict[str, Any]:
        """flag key -> AnyFlag (message class `any_flag`) for every flag that answers successfully."""
        user_id, context = self.context_of(request_context, call)
        view = self.store.view()  # every flag's metadata from the set that evaluates it
        evaluations = view.evaluate_all(context)
        # As the native EvaluateAll: every evaluation is counted, events as configured for bulk calls.
        self.metrics.record_evaluations(evaluations)
        if self.events is not None:
            self.events.add_evaluations(evaluations, user_id, context)
        flags: dict[str, Any] = {}
        for evaluation in evaluations:
            if not evaluation.has_value or evaluation.reason is Reason.DISABLED:
                continue
            message = _any_flag(any_flag, evaluation)
            if message is None:
                continue
            flag = view.flag(evaluation.flag_key)
            metadata = self.metadata_of(flag) if flag is not None else None
            if metadata is not None:
                message.metadata.CopyFrom(metadata)
            flags[evaluation.flag_key] = message
        return flags


def _type_mismatch(evaluation: Evaluation, flag: Flag, what: str) -> Evaluation:
    return Evaluation(
        flag_key=flag.key,
        value=None,
        variant="",
        reason=Reason.ERROR,
        flag_version=evaluation.flag_version or flag.version,
        error_code=ErrorCode.TYPE_MISMATCH,
        error_message=f"flag {flag.key!r} is {what}",
        track_events=evaluation.track_events,
    )


def _any_flag(any_flag: type[Any], evaluation: Evaluation) -> Any:
    value = evaluation.value
    message = any_flag(reason=mapping.REASONS[evaluation.reason], variant=evaluation.variant)
    kind = mapping.value_type(value)
    if kind == BOOLEAN:
        message.bool_value = value
    elif kind == STRING:
        message.string_value = value
    elif kind == NUMBER:
        message.double_value = float(value)
    elif kind == OBJECT:
        message.object_value.SetInParent()
        fill_struct(message.object_value, value)
    else:
        return None
    return message


# ---------------------------------------------------------------- servicers


class _Resolvers:
    """The Resolve* methods and EventStream, for the message module `_pb` of one protocol version."""

    _pb: ModuleType
    rpc_prefix: str  # the method prefix in metrics: "flagd.v1" / "flagd.v2"

    def __init__(self, resolver: FlagdResolver, events: EventBroadcaster) -> None:
        self._resolver = resolver
        self._events = events
        self.edge = resolver.edge  # what `guarded` times and maps calls with

    def _resolve(
        self, request: Any, context: grpc.ServicerContext, kind: str, response: _Response
    ) -> _Response:
        answer = self._resolver.resolve(request.flag_key, request.context, context, kind)
        response.reason = answer.reason  # type: ignore[attr-defined]
        if answer.value is not None:
            response.variant = answer.variant  # type: ignore[attr-defined]
            if kind == OBJECT:
                response.value.SetInParent()  # type: ignore[attr-defined]  # {} is still a value
                fill_struct(response.value, answer.value)  # type: ignore[attr-defined]
            else:
                response.value = answer.value  # type: ignore[attr-defined]
        if answer.metadata is not None:
            response.metadata.CopyFrom(answer.metadata)  # type: ignore[attr-defined]
        return response

    @guarded
    def ResolveBoolean(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._resolve(request, context, BOOLEAN, self._pb.ResolveBooleanResponse())

    @guarded
    def ResolveString(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._resolve(request, context, STRING, self._pb.ResolveStringResponse())

    @guarded
    def ResolveFloat(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._resolve(request, context, FLOAT, self._pb.ResolveFloatResponse())

    @guarded
    def ResolveInt(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._resolve(request, context, INTEGER, self._pb.ResolveIntResponse())

    @guarded
    def ResolveObject(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._resolve(request, context, OBJECT, self._pb.ResolveObjectResponse())

    def EventStream(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        for event_type, data in self._events.events(context):
            message = self._pb.EventStreamResponse(type=event_type)
            if data is not None:
                fill_struct(message.data, data)
            yield message

    def undecodable(self, failure: UndecodableRequest) -> None:
        """A request that does not parse (answered by sidecar.server.decoding): counted in the RPC
        latency metrics as `guarded` counts the method's other outcomes (EventStream is not timed)."""
        if getattr(getattr(self, failure.method, None), "timed", False):
            self._resolver.metrics.observe_rpc(
                f"{self.rpc_prefix}/{failure.method}",
                time.perf_counter() - failure.started,
                grpc.StatusCode.INVALID_ARGUMENT,
            )


class EvaluationServiceV1(_Resolvers, evaluation_v1_grpc.ServiceServicer):
    """flagd.evaluation.v1.Service."""

    _pb = evaluation_v1
    rpc_prefix = "flagd.v1"

    @guarded
    def ResolveAll(
        self, request: evaluation_v1.ResolveAllRequest, context: grpc.ServicerContext
    ) -> evaluation_v1.ResolveAllResponse:
        response = evaluation_v1.ResolveAllResponse()
        for key, flag in self._resolver.resolve_all(request.context, context, evaluation_v1.AnyFlag).items():
            response.flags[key].CopyFrom(flag)
        violated = self._resolver.context_limits.response_violation(response.ByteSize())
        if violated is not None:
            raise ResourceExhausted.over(violated)
        return response


class EvaluationServiceV2(_Resolvers, evaluation_v2_grpc.ServiceServicer):
    """flagd.evaluation.v2.Service (no ResolveAll)."""

    _pb = evaluation_v2
    rpc_prefix = "flagd.v2"


SERVICE_NAME_V1: Final = evaluation_v1.DESCRIPTOR.services_by_name["Service"].full_name
SERVICE_NAME_V2: Final = evaluation_v2.DESCRIPTOR.services_by_name["Service"].full_name


def add_to_server(
    server: grpc.Server,
    resolver: FlagdResolver,
    events: EventBroadcaster,
    streams: StreamAdmission | None = None,
) -> tuple[str, str]:
    """Register both protocol versions on `server`; returns their full service names. A request that
    is not the method's message is INVALID_ARGUMENT naming the one expected (sidecar.server.decoding);
    EventStream is under `streams`' limits (sidecar.server.streams)."""
    v1 = EvaluationServiceV1(resolver, events)
    v2 = EvaluationServiceV2(resolver, events)
    add_servicer(evaluation_v1_grpc.add_ServiceServicer_to_server, v1, server, v1.undecodable, streams)
    add_servicer(evaluation_v2_grpc.add_ServiceServicer_to_server, v2, server, v2.undecodable, streams)
    return SERVICE_NAME_V1, SERVICE_NAME_V2


# ---------------------------------------------------------------- wiring


@dataclass(frozen=True)
class FlagdSettings:
    """The flagd-specific settings: context enrichment (-X / -H) and the EventStream's limits."""

    context: ContextRules = field(default_factory=ContextRules)
    keepalive_interval: float = DEFAULT_KEEPALIVE_INTERVAL
    # EventStreams open at once; every stream is also under the server's --max-streams, which
    # decides the worker pool (sidecar.server.streams).
    max_event_streams: int = DEFAULT_MAX_EVENT_STREAMS

    @classmethod
    def from_options(
        cls, context_values: Iterable[str] = (), context_from_headers: Iterable[str] = (), **kwargs: Any
    ) -> FlagdSettings:
        """From --context-value KEY=VALUE and --context-from-header HEADER=KEY texts (a later one
        wins). Raises ValueError naming a bad entry."""
        static: dict[str, str] = {}
        headers: dict[str, str] = {}
        for text in context_values:
            static.update([_parsed("--context-value", mapping.parse_context_value, text)])
        for text in context_from_headers:
            headers.update([_parsed("--context-from-header", mapping.parse_header_mapping, text)])
        return cls(ContextRules(static, headers), **kwargs)


def _parsed(option: str, parse: Callable[[str], tuple[str, str]], text: str) -> tuple[str, str]:
    try:
        return parse(text)
    except ValueError as error:
        raise ValueError(f"{option} {text}: {error}") from None


class FlagdServices:
    """Both flagd services over one store, with their EventStream fan-out; what app.py registers."""

    def __init__(
        self,
        store: FlagStore,
        settings: FlagdSettings | None = None,
        *,
        events: EvaluationEvents | None = None,
        metrics: SidecarMetrics | NullMetrics = NULL_METRICS,
        context_limits: ContextLimits | None = None,
    ) -> None:
        settings = settings or FlagdSettings()
        self.resolver = FlagdResolver(
            store, settings.context, events, metrics=metrics, context_limits=context_limits
        )
        self.events = EventBroadcaster(store, settings.keepalive_interval, settings.max_event_streams)

    def add_to_server(self, server: grpc.Server, streams: StreamAdmission | None = None) -> tuple[str, str]:
        return add_to_server(server, self.resolver, self.events, streams)

    def shutdown(self) -> None:
        """provider_shutdown on every EventStream, which then ends: run before the server stops."""
        self.events.shutdown()

    def close(self) -> None:
        """After the server stopped: stop following the store (streams, if any, are told to end)."""
        self.events.shutdown(timeout=0)

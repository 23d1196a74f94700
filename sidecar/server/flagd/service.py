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

import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final, TypeVar

import grpc
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct

from ...engine import (
    ErrorCode,
    Evaluation,
    Flag,
    InvalidContextError,
    Reason,
    build_context,
    flag_not_found,
)
from ...store import FlagStore
from . import mapping
from ._generated import evaluation_v1, evaluation_v1_grpc, evaluation_v2, evaluation_v2_grpc
from .mapping import BOOLEAN, NUMBER, OBJECT, STRING, ContextRules, fill_struct
from .stream import EventBroadcaster

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

log = logging.getLogger(__name__)

# Called for every evaluation answered through flagd's protocol, with the same arguments the
# native service uses: the engine's Evaluation, the user id and the user's attributes.
EvaluationRecorder = Callable[[Evaluation, str, Mapping[str, Any]], None]

_DISABLED: Final = mapping.REASONS[Reason.DISABLED]
_Response = TypeVar("_Response", bound=Message)
_Handler = TypeVar("_Handler", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class _Answer:
    """What a Resolve* call sends: value None means "no value" (DISABLED)."""

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
        record: EvaluationRecorder | None = None,
    ) -> None:
        self.store = store
        self.rules = rules or ContextRules()
        self.record = record
        self._metadata: dict[tuple[str, int], Struct | None] = {}

    # ------------------------------------------------------------ context

    def context_of(
        self, request_context: Struct, call: grpc.ServicerContext
    ) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(user id, attributes, engine context) for a request, or abort INVALID_ARGUMENT/UNAVAILABLE."""
        if not self.store.ready:
            raise Failure(grpc.StatusCode.UNAVAILABLE, "no flag set is loaded yet")
        metadata = call.invocation_metadata() if self.rules.header_keys else None
        user_id, attributes = self.rules.merge(request_context, metadata)  # type: ignore[arg-type]
        try:
            return user_id, attributes, build_context(user_id, attributes)
        except InvalidContextError as error:
            raise Failure(grpc.StatusCode.INVALID_ARGUMENT, f"invalid evaluation context: {error}") from None

    # ------------------------------------------------------------ one flag

    def resolve(
        self, flag_key: str, request_context: Struct, call: grpc.ServicerContext, kind: str
    ) -> _Answer:
        """Evaluate `flag_key` as a flag of protocol type `kind`; aborts the call on an error."""
        user_id, attributes, context = self.context_of(request_context, call)
        flag: Flag | None = self.store.get_flag(flag_key)
        evaluation = flag_not_found(flag_key) if flag is None else self.store.evaluate(flag_key, context)
        answer = self._answer(flag, evaluation, kind)
        if self.record is not None:
            recorded = evaluation if not isinstance(answer, Evaluation) else answer
            try:
                self.record(recorded, user_id, attributes)
            except Exception:  # events must never fail an evaluation
                log.exception("recording the evaluation of %r failed", flag_key)
        if isinstance(answer, Evaluation):
            raise Failure(mapping.status_code(answer.error_code), answer.error_message)
        return answer

    def _answer(self, flag: Flag | None, evaluation: Evaluation, kind: str) -> _Answer | Evaluation:
        """The answer to send, or the error Evaluation to fail with."""
        if flag is None or evaluation.error_code is ErrorCode.FLAG_NOT_FOUND:
            return evaluation
        actual = mapping.value_type(evaluation.value) if not evaluation.is_error else mapping.flag_type(flag)
        if actual != _ACCEPTS[kind]:
            return _type_mismatch(evaluation, flag, f"a {actual} flag, not a {_ACCEPTS[kind]} flag")
        if evaluation.reason is Reason.DISABLED or (evaluation.is_error and not flag.enabled):
            return _Answer(None, "", _DISABLED, self.metadata_of(flag))
        if evaluation.is_error:
            return evaluation
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
        user_id, attributes, context = self.context_of(request_context, call)
        flags: dict[str, Any] = {}
        for evaluation in self.store.evaluate_all(context):
            if self.record is not None:
                try:
                    self.record(evaluation, user_id, attributes)
                except Exception:
                    log.exception("recording the evaluation of %r failed", evaluation.flag_key)
            if evaluation.is_error or evaluation.reason is Reason.DISABLED:
                continue
            message = _any_flag(any_flag, evaluation)
            if message is None:
                continue
            flag = self.store.get_flag(evaluation.flag_key)
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


class Failure(Exception):
    """Ends a call with a gRPC status (raised inside, turned into context.abort at the edge)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _guarded(method: _Handler) -> _Handler:
    """Failure -> its status; anything unexpected -> INTERNAL (not UNKNOWN, which clients retry).

    context.abort() raises, so it runs outside the try, where nothing can swallow it.
    """

    @functools.wraps(method)
    def guarded(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Failure as failure:
            code, message = failure.code, failure.message
        except Exception:
            log.exception("flagd %s failed on an unexpected error", method.__name__)
            code, message = grpc.StatusCode.INTERNAL, "internal error in the sidecar (see its log)"
        context.abort(code, message)
        raise AssertionError("unreachable: ServicerContext.abort raises")

    return guarded


# ---------------------------------------------------------------- servicers


class _Resolvers:
    """The Resolve* methods and EventStream, for the message module `_pb` of one protocol version."""

    _pb: ModuleType

    def __init__(self, resolver: FlagdResolver, events: EventBroadcaster) -> None:
        self._resolver = resolver
        self._events = events

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

    @_guarded
    def ResolveBoolean(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._resolve(request, context, BOOLEAN, self._pb.ResolveBooleanResponse())

    @_guarded
    def ResolveString(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._resolve(request, context, STRING, self._pb.ResolveStringResponse())

    @_guarded
    def ResolveFloat(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._resolve(request, context, FLOAT, self._pb.ResolveFloatResponse())

    @_guarded
    def ResolveInt(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._resolve(request, context, INTEGER, self._pb.ResolveIntResponse())

    @_guarded
    def ResolveObject(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._resolve(request, context, OBJECT, self._pb.ResolveObjectResponse())

    def EventStream(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        for event_type, data in self._events.events(context):
            message = self._pb.EventStreamResponse(type=event_type)
            if data is not None:
                fill_struct(message.data, data)
            yield message


class EvaluationServiceV1(_Resolvers, evaluation_v1_grpc.ServiceServicer):
    """flagd.evaluation.v1.Service."""

    _pb = evaluation_v1

    @_guarded
    def ResolveAll(
        self, request: evaluation_v1.ResolveAllRequest, context: grpc.ServicerContext
    ) -> evaluation_v1.ResolveAllResponse:
        response = evaluation_v1.ResolveAllResponse()
        for key, flag in self._resolver.resolve_all(request.context, context, evaluation_v1.AnyFlag).items():
            response.flags[key].CopyFrom(flag)
        return response


class EvaluationServiceV2(_Resolvers, evaluation_v2_grpc.ServiceServicer):
    """flagd.evaluation.v2.Service (no ResolveAll)."""

    _pb = evaluation_v2


SERVICE_NAME_V1: Final = evaluation_v1.DESCRIPTOR.services_by_name["Service"].full_name
SERVICE_NAME_V2: Final = evaluation_v2.DESCRIPTOR.services_by_name["Service"].full_name


def add_to_server(server: grpc.Server, resolver: FlagdResolver, events: EventBroadcaster) -> tuple[str, str]:
    """Register both protocol versions on `server`; returns their full service names."""
    evaluation_v1_grpc.add_ServiceServicer_to_server(EvaluationServiceV1(resolver, events), server)
    evaluation_v2_grpc.add_ServiceServicer_to_server(EvaluationServiceV2(resolver, events), server)
    return SERVICE_NAME_V1, SERVICE_NAME_V2

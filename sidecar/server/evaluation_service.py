"""flagsidecar.v1.EvaluationService: the native API (DESIGN.md, "Public API")."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TypeVar

import grpc

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc
from sidecar.engine import ErrorCode, InvalidContextError, build_context
from sidecar.store import FlagStore

from .convert import EvaluationMessages, struct_to_attributes

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
    """Turn RequestFailed into its status and anything unexpected into INTERNAL.

    context.abort() raises, so it is called outside the try: otherwise the catch-all would
    swallow the abort itself.
    """

    @functools.wraps(method)
    def guarded(self: EvaluationService, request: Request, context: grpc.ServicerContext) -> Response:
        try:
            return method(self, request, context)
        except RequestFailed as failure:
            code, message = failure.code, failure.message
        except Exception:
            logger.exception("%s failed on an unexpected error", method.__name__)
            code, message = grpc.StatusCode.INTERNAL, "internal error in the sidecar (see its log)"
        context.abort(code, message)
        raise AssertionError("unreachable: context.abort raises")

    return guarded


class EvaluationService(evaluation_pb2_grpc.EvaluationServiceServicer):
    def __init__(self, store: FlagStore, messages: EvaluationMessages) -> None:
        self._store = store
        self._messages = messages

    @rpc_method
    def Evaluate(
        self, request: evaluation_pb2.EvaluateRequest, context: grpc.ServicerContext
    ) -> evaluation_pb2.EvaluateResponse:
        if not request.flag_key:
            raise RequestFailed(grpc.StatusCode.INVALID_ARGUMENT, "flag_key is required")
        evaluation = self._store.evaluate(request.flag_key, self._context_of(request.user), request.debug)
        if evaluation.error_code is ErrorCode.FLAG_NOT_FOUND:
            raise RequestFailed(grpc.StatusCode.NOT_FOUND, evaluation.error_message)
        return self._messages.response(evaluation)

    @rpc_method
    def EvaluateAll(
        self, request: evaluation_pb2.EvaluateAllRequest, context: grpc.ServicerContext
    ) -> evaluation_pb2.EvaluateAllResponse:
        flag_keys = list(request.flag_keys) or None  # an empty filter means every flag
        evaluations = self._store.evaluate_all(self._context_of(request.user), flag_keys, request.debug)
        return self._messages.evaluate_all_response(evaluations)

    def _context_of(self, user: evaluation_pb2.User) -> dict[str, object]:
        if not self._store.ready:
            raise RequestFailed(grpc.StatusCode.UNAVAILABLE, "no flag set is loaded yet")
        attributes = struct_to_attributes(user.context) if user.context.fields else None
        try:
            return build_context(user.id, attributes)
        except InvalidContextError as error:
            raise RequestFailed(grpc.StatusCode.INVALID_ARGUMENT, f"invalid user context: {error}") from None

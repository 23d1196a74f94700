"""Guarded timing: every unary call of the evaluation services timed into
flag_sidecar_rpc_duration_seconds{method, code} and ended by the one error mapping (errors.py).

Done in the handler, not by a grpc.ServerInterceptor: an interceptor costs the native Evaluate
fast path more than the call's own timing does (measured: bench/notes.md, "One gRPC edge"), and
the fast path must time from before it parses the request, which only the handler sees.

context.abort() raises, so it is never called inside a `try` that catches Exception: the catch-all
would swallow the abort itself.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any, NoReturn, Protocol, TypeVar, cast

import grpc
from google.protobuf.message import Message

from ..limits import bounded
from ..metrics import NullMetrics, SidecarMetrics
from .errors import INTERNAL_ERROR, SidecarError, abort, undecodable_message

logger = logging.getLogger(__name__)

Response = TypeVar("Response")
_Handler = TypeVar("_Handler", bound=Callable[..., Any])


class CallEdge:
    """Times calls into the RPC histogram and maps their outcome to a status (one per service)."""

    __slots__ = ("metrics",)

    def __init__(self, metrics: SidecarMetrics | NullMetrics) -> None:
        self.metrics = metrics

    def run(
        self,
        name: str,
        context: grpc.ServicerContext,
        started: float,
        method: Callable[..., Response],
        *args: Any,
    ) -> Response:
        """`method(*args)`, timed from `started` under `name`: a SidecarError becomes its status,
        anything else INTERNAL."""
        try:
            response = method(*args)
        except SidecarError as error:
            self.fail(name, context, started, error)
        except Exception:
            self.failed(name, context, started)
        self.metrics.observe_rpc(name, perf_counter() - started, "OK")
        return response

    def shield(
        self, name: str, context: grpc.ServicerContext, method: Callable[..., Response], *args: Any
    ) -> Response:
        """`method(*args)` for a streaming call: not timed (a stream lasts as long as its client
        wants), the same mapping. A call that already ended (an abort inside it, such as an
        undecodable message's) or is gone (grpc.RpcError: the client cancelled) is left as it is."""
        try:
            return method(*args)
        except SidecarError as error:
            if error.limit is not None:
                self.metrics.count_limit(error.limit)
            abort(context, error.code, error.message, details=error.details)
        except grpc.RpcError:
            raise
        except Exception:
            code = getattr(context, "code", None)  # grpcio's ServicerContext has it, its stubs do not
            if code is not None and code() is not None:  # ended by an abort() inside
                raise
            logger.exception("%s failed on an unexpected error", name)
            abort(context, grpc.StatusCode.INTERNAL, INTERNAL_ERROR)

    def fail(self, name: str, context: grpc.ServicerContext, started: float, error: SidecarError) -> NoReturn:
        if error.limit is not None:
            self.metrics.count_limit(error.limit)
        self.end(name, context, started, error.code, error.message, error.details)

    def failed(self, name: str, context: grpc.ServicerContext, started: float) -> NoReturn:
        """End a call on an unexpected error (called from its except block, for the traceback)."""
        logger.exception("%s failed on an unexpected error", name)
        self.end(name, context, started, grpc.StatusCode.INTERNAL, INTERNAL_ERROR)

    def undecodable(
        self, name: str, expected: str, context: grpc.ServicerContext, started: float, error: Exception
    ) -> NoReturn:
        """A request that is not the method's message (`expected`, a full message type name) is the
        client's error: INVALID_ARGUMENT naming that message (grpcio's deserializer says INTERNAL)."""
        logger.warning("%s: undecodable request (%s)", name, bounded(str(error), 200))
        self.end(name, context, started, grpc.StatusCode.INVALID_ARGUMENT, undecodable_message(expected))

    def end(
        self,
        name: str,
        context: grpc.ServicerContext,
        started: float,
        code: grpc.StatusCode,
        message: str,
        details: Sequence[Message] = (),
    ) -> NoReturn:
        self.metrics.observe_rpc(name, perf_counter() - started, code)
        abort(context, code, message, details=details)


class EdgeServicer(Protocol):
    """What `guarded` needs of a servicer: its CallEdge and its methods' prefix in the metrics."""

    @property
    def edge(self) -> CallEdge: ...

    @property
    def rpc_prefix(self) -> str: ...


def guarded(method: _Handler) -> _Handler:
    """A servicer method `(self, request, context)` run through its servicer's `edge`, timed under
    "<rpc_prefix>/<method name>". Marked `timed`, for a decoding hook to count undecodable calls."""
    name = method.__name__

    @functools.wraps(method)
    def run(self: EdgeServicer, request: Any, context: grpc.ServicerContext) -> Any:
        return self.edge.run(
            f"{self.rpc_prefix}/{name}", context, perf_counter(), method, self, request, context
        )

    run.timed = True  # type: ignore[attr-defined]
    return cast(_Handler, run)  # same signature: functools.wraps's type does not say so

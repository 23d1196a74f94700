"""A request that is not the method's message is the client's error: INVALID_ARGUMENT, not INTERNAL.

grpcio parses each request with its handler's request_deserializer before the servicer sees it, and
when that raises it answers INTERNAL "Exception deserializing request!" (and prints a traceback): a
server fault by its status, and one that names nothing the client could fix. `add_servicer`
registers a servicer through its generated `add_*_to_server` function, handing that function a
stand-in for the server (`_Registration`) that changes every method handler before registering it:

- the handler gets no request deserializer, so grpcio passes the request bytes through as they are;
- the behaviour is wrapped in a function that parses them with the generated deserializer
  (`SomeRequest.FromString`) and calls the servicer method. A request that does not parse ends the
  call with INVALID_ARGUMENT and `undecodable_message(the expected full message type)`, logged once
  as a WARNING; the server goes on serving. An `on_undecodable` hook sees it first: the flagd
  services count it in their RPC metrics, Track reports how many events it accepted before.

Why the wrapper parses rather than a deserializer returning an error marker that the wrapper then
tests for: the wrapper is a Python call per request either way, and parsing inside it costs nothing
more than grpcio calling the deserializer, while a marker-returning deserializer is a second added
call (measured in BENCHMARKS.md, "Costs behind the code"). So a valid request costs one extra
Python call; a client stream, one generator step per message instead.

Every arity is handled. For a client stream (EventService.Track) the request iterator is wrapped:
the bad message aborts the call from inside the servicer's loop over its requests, as grpcio's own
ServicerContext.abort does, so a servicer must not catch Exception around that loop.

Streaming handlers are also put under the server's stream limits when `add_servicer` is given its
`StreamAdmission` (sidecar.server.streams): admission wraps the parsing handler, so a refused stream
parses nothing. Health and reflection are registered here too, so a request that does not parse
is INVALID_ARGUMENT on every service the sidecar serves.

Handlers this cannot change are registered as they are (grpcio's INTERNAL for a bad request): no
deserializer (the servicer parses bytes itself, as the native EvaluationService does; that one is
registered by evaluation_service.add_to_server, not here), a deserializer that is not a generated
message's FromString, or a non-blocking streaming behaviour (it takes a third argument).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import grpc

from .edge.errors import abort, undecodable_message
from .limits import bounded

if TYPE_CHECKING:
    from .streams import StreamAdmission

logger = logging.getLogger(__name__)

Servicer = TypeVar("Servicer")
_Behaviour = Callable[[Any, grpc.ServicerContext], Any]
_Parse = Callable[[bytes], Any]

# The generated handler factories, by (request streaming, response streaming).
_HANDLER_FACTORIES: Mapping[tuple[bool, bool], Callable[..., grpc.RpcMethodHandler]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


@dataclass(frozen=True, slots=True)
class UndecodableRequest:
    """What an `on_undecodable` hook is told, before the call ends with INVALID_ARGUMENT."""

    method: str  # the method's name in its service, e.g. "ResolveBoolean"
    expected: str  # the full name of the message type expected
    error: Exception  # what the deserializer raised
    context: grpc.ServicerContext  # e.g. for trailing metadata; the hook must not abort
    decoded_before: int  # messages of this call parsed before this one (0 for a unary request)
    started: float  # perf_counter() when the parse failed: a valid request is never timed here


# Counts the call or sets trailing metadata; returns text to add to the status message, or None.
UndecodableHook = Callable[[UndecodableRequest], str | None]


def add_servicer(
    add_to_server: Callable[[Servicer, Any], None],
    servicer: Servicer,
    server: grpc.Server,
    on_undecodable: UndecodableHook | None = None,
    streams: StreamAdmission | None = None,
) -> None:
    """Register `servicer` on `server` through its generated `add_*_to_server` function, every
    handler answering an undecodable request with INVALID_ARGUMENT (see the module docstring), and
    every streaming handler under `streams`' limits."""
    registration = _Registration(server, on_undecodable, streams)
    add_to_server(servicer, registration)
    registration.check(add_to_server)


class _Registration:
    """Stands in for the server in a generated add_*_to_server function (grpcio-tools >= 1.62 code
    calls add_generic_rpc_handlers and then add_registered_method_handlers with the same handlers)."""

    def __init__(
        self,
        server: grpc.Server,
        on_undecodable: UndecodableHook | None,
        streams: StreamAdmission | None,
    ) -> None:
        self._server = server
        self._on_undecodable = on_undecodable
        self._streams = streams
        self._generic = 0
        self._registered = 0

    def add_generic_rpc_handlers(self, _handlers: Any) -> None:
        # The same handlers come by name through add_registered_method_handlers (the generic handler
        # object keeps them private), and are registered both ways from there.
        self._generic += 1

    def add_registered_method_handlers(
        self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler]
    ) -> None:
        self._registered += 1
        changed = {
            name: _decoding_handler(service, name, handler, self._on_undecodable)
            for name, handler in handlers.items()
        }
        if self._streams is not None:
            for name, handler in changed.items():
                if handler.request_streaming or handler.response_streaming:
                    changed[name] = self._streams.guard(f"{service}/{name}", handler)
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, changed),))
        self._server.add_registered_method_handlers(service, changed)

    def check(self, add_to_server: Callable[..., Any]) -> None:
        """Older generated code only calls add_generic_rpc_handlers: its service would be missing."""
        if self._generic > self._registered:
            raise TypeError(
                f"{add_to_server.__qualname__} registers generic handlers only (code generated by "
                "grpcio-tools older than 1.62): regenerate it"
            )


def _decoding_handler(
    service: str, name: str, handler: grpc.RpcMethodHandler, on_undecodable: UndecodableHook | None
) -> grpc.RpcMethodHandler:
    """`handler` with no deserializer and a behaviour that parses, or `handler` itself if it cannot be."""
    parse = handler.request_deserializer
    descriptor = getattr(getattr(parse, "__self__", None), "DESCRIPTOR", None)  # FromString's class
    behaviour = handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    if parse is None or descriptor is None or getattr(behaviour, "experimental_non_blocking", False):
        return handler
    reject = _Rejection(f"/{service}/{name}", name, descriptor.full_name, on_undecodable)
    wrap = _parsing_stream if handler.request_streaming else _parsing
    factory = _HANDLER_FACTORIES[(handler.request_streaming, handler.response_streaming)]
    return factory(
        wrap(behaviour, parse, reject),  # type: ignore[arg-type]
        request_deserializer=None,
        response_serializer=handler.response_serializer,
    )


def _parsing(behaviour: _Behaviour, parse: _Parse, reject: _Rejection) -> _Behaviour:
    """For a unary request: the one extra Python call a valid request costs."""

    @functools.wraps(behaviour)  # keeps grpcio's experimental_* attributes, if any
    def parsing(request_bytes: bytes, context: grpc.ServicerContext) -> Any:
        try:
            request = parse(request_bytes)
        except Exception as error:
            reject(error, context, 0)
        return behaviour(request, context)

    return parsing


def _parsing_stream(behaviour: _Behaviour, parse: _Parse, reject: _Rejection) -> _Behaviour:
    """For a client stream: the servicer iterates over the messages parsed one at a time."""

    def parsed(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[Any]:
        for decoded, request_bytes in enumerate(requests):  # decoded: the messages before this one
            try:
                request = parse(request_bytes)
            except Exception as error:
                reject(error, context, decoded)
            yield request

    @functools.wraps(behaviour)
    def parsing(requests: Iterator[bytes], context: grpc.ServicerContext) -> Any:
        return behaviour(parsed(requests, context), context)

    return parsing


@dataclass(frozen=True, slots=True)
class _Rejection:
    """Ends a call whose request does not parse (one per method, built at registration)."""

    path: str  # "/package.Service/Method", for the log
    method: str
    expected: str
    on_undecodable: UndecodableHook | None

    def __call__(self, error: Exception, context: grpc.ServicerContext, decoded_before: int) -> NoReturn:
        started = perf_counter()
        logger.warning("%s: undecodable request (%s)", self.path, bounded(str(error), 200))
        message = undecodable_message(self.expected)
        if self.on_undecodable is not None:
            failure = UndecodableRequest(self.method, self.expected, error, context, decoded_before, started)
            try:
                extra = self.on_undecodable(failure)
            except Exception:  # the answer stays INVALID_ARGUMENT whatever the hook does
                logger.exception("%s: the undecodable-request hook failed", self.path)
            else:
                if extra:
                    message = f"{message} {extra}"
        abort(context, grpc.StatusCode.INVALID_ARGUMENT, message)

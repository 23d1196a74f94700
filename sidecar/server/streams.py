"""Admission of streaming RPCs: no client can take the capacity that unary calls need.

grpcio's sync server runs every call on a worker of one thread pool, and a stream (Track, flagd's
EventStream, health Watch, reflection) holds its worker for its whole life. So the server's pool
is sized unary workers + `max_streams`, and every streaming handler is registered through
`StreamAdmission.guard`, which:

- admits a new stream only while fewer than `max_streams` are open, and fewer than
  `max_per_peer` on the same connection; otherwise the call ends at once with RESOURCE_EXHAUSTED
  and a message naming the limit. Open streams can therefore never hold the unary workers.
  A Unix-socket client cannot be told from another (grpcio reports every one as "unix:"), so
  those are under the global limit only;
- ends a stream that has had no message (received or sent) for `idle_timeout` with
  DEADLINE_EXCEEDED, from one reaper thread shared by every stream (what an abandoned or stuck
  stream would otherwise hold for good);
- counts open, refused and idle-closed streams per method (`stats`, exposed by metrics.py).

What admission knows of a stream is its slot (`_Stream`): method, peer, last activity. Nothing here
depends on a stream holding a thread: `guard_async` admits the grpc.aio streams of the sync
listener (sidecar/server/sync) under the same limits, messages and metrics. Those are not reaped
here: a Watch sends a heartbeat while nothing changes, and ends itself when its client takes no
message for the idle timeout (the reaper's end_call needs a sync server's call).
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import grpc

from .edge import abort

logger = logging.getLogger(__name__)

DEFAULT_MAX_STREAMS: Final = 64
DEFAULT_MAX_STREAMS_PER_CONNECTION: Final = 16
DEFAULT_STREAM_IDLE_TIMEOUT: Final = 300.0
# Peers grpcio reports without anything that tells one connection from another.
_ANONYMOUS_PEERS: Final = frozenset({"", "unix:"})
# The reaper looks at the open streams this often (a fraction of the idle timeout, at most 1 s):
# a stream ends between idle_timeout and idle_timeout + this after its last message.
_MAX_REAP_INTERVAL: Final = 1.0

_Behaviour = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """--max-streams, --max-streams-per-connection, --stream-idle-timeout."""

    max_streams: int = DEFAULT_MAX_STREAMS
    max_per_peer: int = DEFAULT_MAX_STREAMS_PER_CONNECTION
    idle_timeout: float = DEFAULT_STREAM_IDLE_TIMEOUT
    max_streams_option: str = "--max-streams"  # what the refusal tells the operator to raise

    def __post_init__(self) -> None:
        if self.max_streams < 1 or self.max_per_peer < 1:
            raise ValueError("max_streams and max_per_peer must be at least 1")
        if self.idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")


@dataclass(slots=True, eq=False)
class _Stream:
    method: str
    peer: str | None  # None: not told apart from other clients
    context: Any  # a grpc.ServicerContext, or grpc.aio's for a guard_async stream
    last_active: float
    received: int = 0
    ended: bool = False  # the reaper has ended it (its handler may not have returned yet)
    reaped: bool = True  # False: the stream ends itself when idle (guard_async)

    def sent(self) -> None:
        self.last_active = time.monotonic()


@dataclass(slots=True)
class StreamStats:
    """Per method ("package.Service/Method"); what /metrics shows."""

    open: Counter[str] = field(default_factory=Counter)
    refused: Counter[tuple[str, str]] = field(default_factory=Counter)  # (method, reason)
    idle_closed: Counter[str] = field(default_factory=Counter)


REFUSED_LIMIT: Final = "max_streams"
REFUSED_PER_CONNECTION: Final = "max_streams_per_connection"


class StreamAdmission:
    """The stream limits of one gRPC server (see the module docstring)."""

    def __init__(self, limits: StreamLimits | None = None) -> None:
        self.limits = StreamLimits() if limits is None else limits
        self._lock = threading.Lock()
        self._open: set[_Stream] = set()
        self._per_peer: Counter[str] = Counter()
        self._stats = StreamStats()
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._reaper: threading.Thread | None = None
        self._reap_interval = min(_MAX_REAP_INTERVAL, self.limits.idle_timeout / 4)

    @property
    def open_streams(self) -> int:
        with self._lock:
            return len(self._open)

    def stats(self) -> StreamStats:
        """A copy of the counters (a scrape reads it)."""
        with self._lock:
            return StreamStats(
                Counter(self._stats.open), Counter(self._stats.refused), Counter(self._stats.idle_closed)
            )

    def close(self) -> None:
        """Stop the reaper (the server is stopping; grpcio ends what is still open)."""
        with self._lock:
            self._closed = True
            self._wake.notify_all()

    # ------------------------------------------------------------ registration

    def guard(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """`handler` (a streaming one; "package.Service/Method" is `method`) under these limits."""
        behaviour = handler.unary_stream or handler.stream_unary or handler.stream_stream
        if behaviour is None:
            raise TypeError(f"{method} is not a streaming method")
        if getattr(behaviour, "experimental_non_blocking", False):
            # grpcio's non-blocking streams send from under the servicer's locks, which is what
            # froze the whole server (health Watch); every stream here is a plain generator.
            raise TypeError(f"{method}: non-blocking streaming handlers are not supported")
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._server_stream(method, behaviour),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._client_stream(method, behaviour),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            self._bidi_stream(method, behaviour),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _server_stream(self, method: str, behaviour: _Behaviour) -> _Behaviour:
        def server_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            stream = self._admit(method, context)
            try:
                for response in behaviour(request, context):
                    stream.sent()
                    yield response
            finally:
                self._release(stream)

        return server_stream

    def _client_stream(self, method: str, behaviour: _Behaviour) -> _Behaviour:
        def client_stream(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            stream = self._admit(method, context)
            try:
                return behaviour(_received(requests, stream), context)
            finally:
                self._release(stream)

        return client_stream

    def _bidi_stream(self, method: str, behaviour: _Behaviour) -> _Behaviour:
        def bidi_stream(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            stream = self._admit(method, context)
            try:
                for response in behaviour(_received(requests, stream), context):
                    stream.sent()
                    yield response
            finally:
                self._release(stream)

        return bidi_stream

    # ------------------------------------------------------------ admission

    def guard_async(self, method: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        """A grpc.aio streaming `behaviour` (a coroutine writing with context.write, or an async
        generator of responses) under these limits; it ends itself when idle (module docstring)."""

        if inspect.isasyncgenfunction(behaviour):
            return self._guard_async_generator(method, behaviour)

        async def guarded(request: Any, context: Any) -> None:
            stream = await self._admit_async(method, context)
            try:
                await behaviour(request, context)
            finally:
                self._release(stream)

        return guarded

    def _guard_async_generator(self, method: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        """guard_async for a behaviour that yields its responses (grpc.aio's other style)."""

        async def guarded(request: Any, context: Any) -> Any:
            stream = await self._admit_async(method, context)
            try:
                async for response in behaviour(request, context):
                    stream.sent()
                    yield response
            finally:
                self._release(stream)

        return guarded

    async def _admit_async(self, method: str, context: Any) -> _Stream:
        """A slot for a grpc.aio stream, or the call ends RESOURCE_EXHAUSTED (abort raises)."""
        stream, refusal = self._take(method, context, reaped=False)
        if stream is None:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, refusal)
            raise AssertionError("context.abort returned")  # it raises; for the type checker
        return stream

    def _admit(self, method: str, context: grpc.ServicerContext) -> _Stream:
        stream, refusal = self._take(method, context)
        if stream is None:
            abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, refusal)
        return stream

    def _take(self, method: str, context: Any, reaped: bool = True) -> tuple[_Stream | None, str]:
        """A slot for a new stream, or None and why it is refused (counted and logged)."""
        peer: str | None = context.peer()
        if peer in _ANONYMOUS_PEERS:
            peer = None
        limits = self.limits
        with self._lock:
            total = len(self._open)
            on_peer = self._per_peer[peer] if peer is not None else 0
            if total >= limits.max_streams:
                refusal = (
                    REFUSED_LIMIT,
                    f"too many open streams: all {limits.max_streams} allowed "
                    f"({limits.max_streams_option}) are in use; close streams that are no longer "
                    f"needed, or raise {limits.max_streams_option}",
                )
            elif peer is not None and on_peer >= limits.max_per_peer:
                refusal = (
                    REFUSED_PER_CONNECTION,
                    f"too many open streams on this connection: {on_peer} of "
                    f"{limits.max_per_peer} allowed (--max-streams-per-connection); share one "
                    "stream per subscription, close those no longer needed, or raise the limit",
                )
            else:
                refusal = None
                stream = _Stream(method, peer, context, time.monotonic(), reaped=reaped)
                self._open.add(stream)
                if peer is not None:
                    self._per_peer[peer] += 1
                self._stats.open[method] += 1
                if reaped and self._reaper is None and not self._closed:
                    self._reaper = threading.Thread(target=self._reap, name="grpc-stream-reaper", daemon=True)
                    self._reaper.start()
            if refusal is not None:
                self._stats.refused[(method, refusal[0])] += 1
        if refusal is not None:
            logger.warning("%s from %s refused: %s", method, context.peer(), refusal[1])
            return None, refusal[1]
        return stream, ""

    def _release(self, stream: _Stream) -> None:
        with self._lock:
            if stream not in self._open:
                return
            self._open.discard(stream)
            if stream.peer is not None:
                self._per_peer[stream.peer] -= 1
                if not self._per_peer[stream.peer]:
                    del self._per_peer[stream.peer]
            self._stats.open[stream.method] -= 1

    # ------------------------------------------------------------ idle streams

    def _reap(self) -> None:
        idle_timeout = self.limits.idle_timeout
        while True:
            with self._lock:
                self._wake.wait(self._reap_interval)
                if self._closed:
                    return
                cutoff = time.monotonic() - idle_timeout
                # Ended once: a stream stays in _open (and counted) until its handler returns.
                idle = [s for s in self._open if s.reaped and s.last_active < cutoff and not s.ended]
                for stream in idle:
                    stream.ended = True
                    self._stats.idle_closed[stream.method] += 1
            for stream in idle:
                message = (
                    f"stream closed after {idle_timeout:g}s without a message (--stream-idle-timeout); "
                    f"{stream.received} messages were received on it; open a new one when needed"
                )
                logger.info("%s from %s: %s", stream.method, stream.context.peer(), message)
                end_call(stream.context, grpc.StatusCode.DEADLINE_EXCEEDED, message)


def _received(requests: Iterator[Any], stream: _Stream) -> Iterator[Any]:
    for request in requests:
        stream.received += 1
        stream.last_active = time.monotonic()
        yield request


def end_call(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> None:
    """End a call from any thread, the client getting `code` and `message`.

    ServicerContext.abort() only works in the handler's own thread, and context.cancel() sends
    CANCELLED without a word. The core call under the context can be cancelled with a status
    (grpc_call_cancel_with_status); grpcio keeps it in a private attribute, so when that is not
    there (another grpcio), fall back to the public cancel(). tests/server/test_streams.py checks
    the client sees the status, so an upgrade that changes this fails there. A call that is not
    grpcio's (the flagd Connect listener's, sidecar/server/flagd/connect.py) ends itself with
    `end_with_status`.
    """
    end_with_status = getattr(context, "end_with_status", None)
    if end_with_status is not None:
        end_with_status(code, message)
        return
    call = getattr(getattr(context, "_rpc_event", None), "call", None)
    if call is not None:
        try:
            call.cancel(code.value[0], message)
            return
        except Exception:
            logger.debug("cancel with status failed", exc_info=True)
    context.cancel()

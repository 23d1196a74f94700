"""Server processes for the RPC benchmarks: our sidecar, and the same server with an empty service.

    python -m bench.servers KIND FLAGS_FILE PORT_FILE

KIND is one of

- `sidecar`: sidecar.server.app.SidecarServer (grpcio's sync server) with SERVICE_REGISTRARS;
- `empty`: the same SidecarServer, same executor and options, with a single unary method that
  returns an empty message without parsing its request: grpcio's own per-call cost, the floor;
- `aio-sidecar` / `aio-empty`: the same pair on a grpc.aio server (same health and reflection
  services, same store), the EvaluationService's methods called from thin async wrappers.

Both kinds of a pair load the same flag file into a started FlagStore (file watcher included),
so the only difference between them is the service that answers.

With BENCH_SPIN_US=N, the empty method spins for N microseconds of pure Python before answering;
with BENCH_TOUCH_DICTS=N it reads N dicts picked across a 70 MB pool: calibrations of what the
server charges for handler time by itself. With BENCH_PARSE_REQUEST=1 it parses its request as an
EvaluateRequest and reads the user's context the way the sidecar does (edge.plain_context), then
answers empty: the part of an Evaluate call no implementation of this API can skip.

With BENCH_EVENTS_DIR=DIR in the environment, every server (empty ones included) runs an event
pipeline with a file exporter writing into DIR, as `serve --exporter file:dir=DIR` does; with
BENCH_EXPORTER=SPEC, one with that exporter (`serve --exporter SPEC`; bench/otlp.py uses it).

With BENCH_SOURCE=URI (sqlite:///..., postgresql://...), the store follows that database source
instead of the flag file (bench/database_cases.py imports the file into it first).

With BENCH_INTERCEPTOR=1, the `sidecar` kind does its RPC timing and status mapping in a
grpc.ServerInterceptor rather than in its handlers (see "BENCH_INTERCEPTOR=1" below).

With BENCH_INSTRUMENT=cpu or =profile (and BENCH_INSTRUMENT_OUT=PATH), our code on the call path
is timed in thread CPU or profiled; see "optional instrumentation" below.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import pstats
import random
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from flagsidecar.v1.evaluation_pb2 import EvaluateRequest
from sidecar.events import EventPipeline, PipelineConfig, build_pipeline
from sidecar.server.app import (
    SERVICE_REGISTRARS,
    RegisteredServices,
    ServiceDependencies,
    SidecarServer,
    register_evaluation_service,
)
from sidecar.server.metrics import NullMetrics, SidecarMetrics
from sidecar.store import FlagStore

# A --before revision from before sidecar/sources/ has FileRepository, with the same constructor.
# Asked of the store, not by trying the import: the editable install would find this tree's
# sidecar.sources under the older sidecar package.
if hasattr(FlagStore, "view"):
    from sidecar.sources import FileSource
else:
    from sidecar.store import FileRepository as FileSource  # type: ignore[attr-defined,no-redef]

EMPTY_SERVICE = "bench.Empty"
EMPTY_METHOD = f"/{EMPTY_SERVICE}/Call"
KINDS = ("sidecar", "empty", "aio-sidecar", "aio-empty")

# ---------------------------------------------------------------- optional instrumentation

# BENCH_INSTRUMENT=cpu: the thread CPU time of our code (the handler; any request deserializer or
# response serializer, each timed on its own) is added up per call; =profile: the same code runs
# under cProfile with a thread-CPU clock. Either is written to BENCH_INSTRUMENT_OUT on SIGTERM
# (JSON / pstats).
_INSTRUMENT = os.environ.get("BENCH_INSTRUMENT", "")
_INSTRUMENT_OUT = os.environ.get("BENCH_INSTRUMENT_OUT", "")
_profiles: list[cProfile.Profile] = []
_local = threading.local()
_cpu_counters: list[list[int]] = []  # per thread: [CPU ns in our code, handler calls]


def _counter_of_thread() -> list[int]:
    counter: list[int] | None = getattr(_local, "counter", None)
    if counter is None:
        counter = _local.counter = [0, 0]
        _cpu_counters.append(counter)
    return counter


def _profile_of_thread() -> cProfile.Profile:
    profile: cProfile.Profile | None = getattr(_local, "profile", None)
    if profile is None:
        profile = cProfile.Profile(time.thread_time_ns, 1e-9)
        _profiles.append(profile)
        _local.profile = profile
    return profile


def _instrumented(function: Callable[..., Any], counts_calls: bool = False) -> Callable[..., Any]:
    if _INSTRUMENT == "cpu":

        def timed(*args: Any) -> Any:
            started = time.thread_time_ns()
            try:
                return function(*args)
            finally:
                counter = _counter_of_thread()
                counter[0] += time.thread_time_ns() - started
                counter[1] += counts_calls

        return timed
    if _INSTRUMENT == "profile":

        def profiled(*args: Any) -> Any:
            profile = _profile_of_thread()
            profile.enable()
            try:
                return function(*args)
            finally:
                profile.disable()

        return profiled
    return function


def _profiled(handler: Callable[..., Any]) -> Callable[..., Any]:
    return _instrumented(handler, counts_calls=True)


def _write_instrumentation() -> None:
    if _INSTRUMENT == "cpu" and _INSTRUMENT_OUT:
        cpu_ns, calls = (sum(c[0] for c in _cpu_counters), sum(c[1] for c in _cpu_counters))
        Path(_INSTRUMENT_OUT).write_text(json.dumps({"cpu_ns": cpu_ns, "calls": calls}))
    elif _INSTRUMENT == "profile" and _INSTRUMENT_OUT and _profiles:
        stats = pstats.Stats(_profiles[0])
        for profile in _profiles[1:]:
            stats.add(profile)
        stats.dump_stats(_INSTRUMENT_OUT)


def _wrap_handler(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    if handler.unary_unary is None:
        return handler
    return grpc.unary_unary_rpc_method_handler(
        _profiled(handler.unary_unary),
        request_deserializer=handler.request_deserializer and _instrumented(handler.request_deserializer),
        response_serializer=handler.response_serializer and _instrumented(handler.response_serializer),
    )


class _WrappingRegistration:
    """What a registrar sees as the server: every handler it registers is passed through `wrap`
    and registered both ways (generic and registered method), as add_to_server does."""

    def __init__(self, server: Any, wrap: Callable[[grpc.RpcMethodHandler], grpc.RpcMethodHandler]) -> None:
        self._server = server
        self._wrap = wrap

    def add_generic_rpc_handlers(self, _handlers: Any) -> None:
        pass  # the registrars add the same handlers through add_registered_method_handlers

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        wrapped = {name: self._wrap(handler) for name, handler in handlers.items()}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, wrapped),))
        self._server.add_registered_method_handlers(service, wrapped)


# ---------------------------------------------------------------- handlers


_SPIN_SECONDS = float(os.environ.get("BENCH_SPIN_US", "0")) / 1e6
_TOUCH = int(os.environ.get("BENCH_TOUCH_DICTS", "0"))
# 200,000 small dicts in random order (about 70 MB): reading a few dozen of them misses the caches
# the way a real handler's objects do, unlike a spin loop.
_POOL: list[dict[str, int]] = []
if _TOUCH:
    _POOL = [{f"k{field}": field for field in range(8)} for _ in range(200_000)]
    random.Random(42).shuffle(_POOL)
_cursor = [0]
_PARSE_REQUEST = os.environ.get("BENCH_PARSE_REQUEST") == "1"


try:
    from sidecar.server.edge import plain_context
except ImportError:  # an older revision's tree (--before): only the parse calibration needs it
    try:
        from sidecar.server.convert import plain_context  # type: ignore[attr-defined, no-redef]
    except ImportError:
        plain_context = None  # type: ignore[assignment]


def parse_request(request: bytes) -> object:
    """What every Evaluate handler does first: parse the request, read the user's context."""
    assert plain_context is not None, "this revision's sidecar has no plain_context"
    return plain_context(EvaluateRequest.FromString(request).user, 1 << 30)


def _empty_call(request: bytes, _context: Any) -> bytes:
    if _PARSE_REQUEST:
        parse_request(request)
    if _SPIN_SECONDS:  # calibration: pure-Python CPU in the handler, nothing else
        clock = time.perf_counter
        end = clock() + _SPIN_SECONDS
        while clock() < end:
            pass
    if _TOUCH:  # calibration: Python work that reads memory, as a handler does
        start = _cursor[0]
        total = 0
        for item in _POOL[start : start + _TOUCH]:
            total += item.get("k3", 0)
        _cursor[0] = (start + _TOUCH) % (len(_POOL) - _TOUCH)
    return b""


def register_empty_service(server: grpc.Server, _deps: ServiceDependencies) -> RegisteredServices:
    handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
        "Call": grpc.unary_unary_rpc_method_handler(_profiled(_empty_call))
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(EMPTY_SERVICE, handlers),))
    server.add_registered_method_handlers(EMPTY_SERVICE, handlers)
    return RegisteredServices((EMPTY_SERVICE,))


def _profiling_registrar(
    register: Callable[[Any, ServiceDependencies], RegisteredServices],
) -> Callable[[grpc.Server, ServiceDependencies], RegisteredServices]:
    if not _INSTRUMENT:
        return register
    return lambda server, deps: register(_WrappingRegistration(server, _wrap_handler), deps)


# ---------------------------------------------------------------- BENCH_INTERCEPTOR=1

# The alternative to the edge's in-handler timing (sidecar/server/edge/timing.py), measured against
# it: a grpc.ServerInterceptor times every unary call into the RPC histogram and maps a SidecarError
# to its status, and the servicers' own timing is switched off (their metrics only count
# evaluations), so the server does the same work with the timing moved out of the handler.
_INTERCEPTOR = os.environ.get("BENCH_INTERCEPTOR") == "1"


class _CountingOnly(SidecarMetrics):
    """The servicers' metrics when the interceptor times: evaluations counted, no RPC timing."""

    def observe_rpc(self, method: str, seconds: float, code: Any = "OK") -> None:
        pass

    def observe_evaluation_rpc(self, method: str, key: Any, seconds: float) -> None:
        self.count_evaluations((key,))


class EdgeInterceptor(grpc.ServerInterceptor):
    """Times each unary call under its method name and ends a SidecarError with its status."""

    def __init__(self, metrics: SidecarMetrics | NullMetrics) -> None:
        self._metrics = metrics
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method: str = handler_call_details.method
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:  # one wrapper per handler, not one per call
            return known[1]
        wrapped = grpc.unary_unary_rpc_method_handler(
            self._timed(method.rsplit("/", 1)[-1], handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _timed(self, name: str, behaviour: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        from sidecar.server.edge import SidecarError, abort

        observe = self._metrics.observe_rpc
        clock = time.perf_counter

        def timed(request: Any, context: Any) -> Any:
            started = clock()
            try:
                response = behaviour(request, context)
            except SidecarError as error:
                observe(name, clock() - started, error.code)
                abort(context, error.code, error.message)
            observe(name, clock() - started, "OK")
            return response

        return timed


def _server_with(interceptors: list[grpc.ServerInterceptor]) -> Callable[..., grpc.Server]:
    build = grpc.server

    def server(*args: Any, **kwargs: Any) -> grpc.Server:
        return build(*args, **{**kwargs, "interceptors": interceptors})

    return server


# ---------------------------------------------------------------- sync server


def serve_sync(kind: str, store: FlagStore, port_file: str, events: EventPipeline) -> None:
    registrars = (
        (register_empty_service,)
        if kind == "empty"
        else tuple(_profiling_registrar(r) for r in SERVICE_REGISTRARS)
    )
    metrics = SidecarMetrics(store)  # as `serve` has it
    if _INTERCEPTOR and kind == "sidecar":
        grpc.server = _server_with([EdgeInterceptor(metrics)])
        metrics = _CountingOnly(store)
    server = SidecarServer(store, "127.0.0.1:0", registrars=registrars, events=events, metrics=metrics)
    port = server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    Path(port_file).write_text(str(port))
    stopped.wait()
    server.stop(0)
    _write_instrumentation()


# ---------------------------------------------------------------- grpc.aio server


class _Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class _AbortCapture:
    """The servicers are sync and call context.abort(), which in grpc.aio is a coroutine: record
    the abort and let the async wrapper await the real one."""

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise _Aborted(code, details)


_CAPTURE = _AbortCapture()


def _async_unary(sync: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Awaitable[Any]]:
    """Run a sync handler inline on the event loop (it does no I/O and never blocks)."""
    sync = _profiled(sync)

    async def handler(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return sync(request, _CAPTURE)
        except _Aborted as aborted:
            await context.abort(aborted.code, aborted.details)

    return handler


def _to_async(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    if handler.unary_unary is None:
        raise TypeError("only unary-unary methods are benchmarked on grpc.aio")
    return grpc.unary_unary_rpc_method_handler(
        _async_unary(handler.unary_unary),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


async def serve_aio(kind: str, store: FlagStore, port_file: str, events: EventPipeline) -> None:
    from grpc_health.v1 import _async as health_aio
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection

    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    deps = ServiceDependencies(store=store, events=events, metrics=SidecarMetrics(store))
    registration: Any = _WrappingRegistration(server, _to_async)
    # Only the native EvaluationService: the other registrars' streaming methods have no async form.
    registrars = (register_empty_service,) if kind == "aio-empty" else (register_evaluation_service,)
    names = tuple(name for register in registrars for name in register(registration, deps).names)
    reflection.enable_server_reflection((*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    for name in ("", *names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    Path(port_file).write_text(str(port))
    await stopped.wait()
    await server.stop(0)
    _write_instrumentation()


def main(kind: str, flags_file: str, port_file: str) -> None:
    if kind not in KINDS:
        raise SystemExit(f"unknown server kind {kind!r}; kinds: {', '.join(KINDS)}")
    uri = os.environ.get("BENCH_SOURCE")
    if uri:  # a database source (bench/database_cases.py): the flag file imported into it
        from sidecar.sources import open_source

        store = FlagStore(open_source(uri), remote=True)
    else:
        store = FlagStore(FileSource(flags_file))
    store.start()
    events_dir = os.environ.get("BENCH_EVENTS_DIR")
    specs = [f"file:dir={events_dir}"] if events_dir else []
    specs += [os.environ["BENCH_EXPORTER"]] if os.environ.get("BENCH_EXPORTER") else []
    events = build_pipeline(PipelineConfig(exporters=specs)) if specs else EventPipeline()
    events.start()
    if kind.startswith("aio-"):
        asyncio.run(serve_aio(kind, store, port_file, events))
    else:
        serve_sync(kind, store, port_file, events)
    events.close()
    store.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])

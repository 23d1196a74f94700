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

With BENCH_EVENTS_DIR=DIR in the environment, every server (empty ones included) runs an event
pipeline with a file exporter writing into DIR, as `serve --exporter file:dir=DIR` does.

With BENCH_PROFILE=PATH in the environment, the handlers run under cProfile (one profiler per
worker thread) and the merged statistics are written to PATH (pstats format) on SIGTERM.
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from sidecar.events import EventPipeline, PipelineConfig, build_pipeline
from sidecar.server.app import (
    SERVICE_REGISTRARS,
    RegisteredServices,
    ServiceDependencies,
    SidecarServer,
    register_evaluation_service,
)
from sidecar.store import FileRepository, FlagStore

EMPTY_SERVICE = "bench.Empty"
EMPTY_METHOD = f"/{EMPTY_SERVICE}/Call"
KINDS = ("sidecar", "empty", "aio-sidecar", "aio-empty")

# ---------------------------------------------------------------- optional cProfile

_PROFILE_PATH = os.environ.get("BENCH_PROFILE")
_profiles: list[cProfile.Profile] = []
_local = threading.local()


def _profiled(handler: Callable[..., Any]) -> Callable[..., Any]:
    """`handler` with a per-thread cProfile switched on at its first call in each thread (cProfile
    profiles only the thread that enabled it; once on, it stays on for that thread)."""
    if not _PROFILE_PATH:
        return handler

    def wrapper(*args: Any) -> Any:
        if not getattr(_local, "on", False):
            profile = cProfile.Profile()
            _profiles.append(profile)
            _local.on = True
            profile.enable()
        return handler(*args)

    return wrapper


def _write_profile() -> None:
    if not _PROFILE_PATH or not _profiles:
        return
    stats = pstats.Stats(_profiles[0])
    for profile in _profiles[1:]:
        stats.add(profile)
    stats.dump_stats(_PROFILE_PATH)


def _wrap_handler(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    if handler.unary_unary is None:
        return handler
    return grpc.unary_unary_rpc_method_handler(
        _profiled(handler.unary_unary),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
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


def _empty_call(_request: bytes, _context: Any) -> bytes:
    return b""


def register_empty_service(server: grpc.Server, _deps: ServiceDependencies) -> RegisteredServices:
    handlers = {"Call": grpc.unary_unary_rpc_method_handler(_profiled(_empty_call))}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(EMPTY_SERVICE, handlers),))
    server.add_registered_method_handlers(EMPTY_SERVICE, handlers)
    return RegisteredServices((EMPTY_SERVICE,))


def _profiling_registrar(
    register: Callable[[Any, ServiceDependencies], RegisteredServices],
) -> Callable[[grpc.Server, ServiceDependencies], RegisteredServices]:
    if not _PROFILE_PATH:
        return register
    return lambda server, deps: register(_WrappingRegistration(server, _wrap_handler), deps)


# ---------------------------------------------------------------- sync server


def serve_sync(kind: str, store: FlagStore, port_file: str, events: EventPipeline) -> None:
    registrars = (
        (register_empty_service,)
        if kind == "empty"
        else tuple(_profiling_registrar(r) for r in SERVICE_REGISTRARS)
    )
    server = SidecarServer(store, "127.0.0.1:0", registrars=registrars, events=events)
    port = server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    Path(port_file).write_text(str(port))
    stopped.wait()
    server.stop(0)
    _write_profile()


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
    deps = ServiceDependencies(store=store, events=events)
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
    _write_profile()


def main(kind: str, flags_file: str, port_file: str) -> None:
    if kind not in KINDS:
        raise SystemExit(f"unknown server kind {kind!r}; kinds: {', '.join(KINDS)}")
    store = FlagStore(FileRepository(flags_file))
    store.start()
    events_dir = os.environ.get("BENCH_EVENTS_DIR")
    events = (
        build_pipeline(PipelineConfig(exporters=[f"file:dir={events_dir}"]))
        if events_dir
        else EventPipeline()
    )
    events.start()
    if kind.startswith("aio-"):
        asyncio.run(serve_aio(kind, store, port_file, events))
    else:
        serve_sync(kind, store, port_file, events)
    events.close()
    store.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])

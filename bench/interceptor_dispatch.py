"""What a grpc.ServerInterceptor adds to every call's handler lookup, in a timeit loop.

    .venv/bin/python -m bench.interceptor_dispatch

grpcio's sync server looks a call's handler up through its interceptor pipeline when it has one
(grpc._server._find_method_handler): a few Python calls per RPC before the handler runs, then the
interceptor's wrapper around the handler. This times that lookup plus the handler call with
bench.servers.EdgeInterceptor (timing and status mapping, as BENCH_INTERCEPTOR=1 serves) against
the lookup grpcio does without interceptors, with an empty handler and metrics that record nothing.
The server charges several times these prices (BENCHMARKS.md, "Where the time goes now"); the
end-to-end figures are bench.run's --interceptor rows.
"""

from __future__ import annotations

import timeit
from typing import Any

import grpc
from grpc import _interceptor
from grpc._server import _HandlerCallDetails

from sidecar.server.metrics import NullMetrics

from .servers import EdgeInterceptor


def main(calls: int = 200_000, repeats: int = 7) -> None:
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(lambda _r, _c: b"")
    details = _HandlerCallDetails("/flagsidecar.v1.EvaluationService/Evaluate", ())

    def lookup(_details: Any) -> grpc.RpcMethodHandler:
        return handler

    pipeline = _interceptor.service_pipeline([EdgeInterceptor(NullMetrics())])
    assert pipeline is not None
    # Called as grpcio calls them, with nothing in between: unary-unary handlers, no context needed.
    cases = {
        "no interceptor": lambda: lookup(details).unary_unary(b"", None),  # type: ignore[misc, arg-type]
        "EdgeInterceptor": lambda: pipeline.execute(lookup, details).unary_unary(b"", None),  # type: ignore[misc, arg-type]
    }
    for name, case in cases.items():
        best = min(timeit.repeat(case, number=calls, repeat=repeats)) / calls * 1e6
        print(f"{name}: {best:.2f} µs per call (handler lookup and call)")


if __name__ == "__main__":
    main()

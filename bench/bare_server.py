"""The smallest grpcio server processes, the memory floors an idle sidecar is compared with.

    python -m bench.bare_server PORT_FILE                 # interpreter + grpcio, one empty method
    python -m bench.bare_server PORT_FILE --dependencies  # + the libraries the sidecar serves with

The first is the floor any Python gRPC server starts from. The second adds, used the way the
sidecar uses them but with none of its code and no flags, the third-party libraries `flag-sidecar
serve` cannot do without: protobuf messages, gRPC health and reflection, prometheus_client behind
an HTTP listener, PyYAML, a watchdog observer on a directory, cachetools and mmh3. What an idle
sidecar holds beyond that second floor is its own: code, flags, threads.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
from concurrent import futures
from pathlib import Path

import grpc


def _with_dependencies(server: grpc.Server) -> list[object]:
    """Load and start what the sidecar's dependencies hold at idle; returns what must stay alive."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import cachetools
    import mmh3
    import prometheus_client
    import yaml
    from grpc_health.v1 import health, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    health_pb2_grpc.add_HealthServicer_to_server(
        health.HealthServicer(experimental_non_blocking=True), server
    )
    reflection.enable_server_reflection(("bench.Empty", health.SERVICE_NAME, reflection.SERVICE_NAME), server)

    registry = prometheus_client.CollectorRegistry()
    prometheus_client.ProcessCollector(registry=registry)

    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = prometheus_client.generate_latest(registry)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    http = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=http.serve_forever, daemon=True).start()

    watched = tempfile.TemporaryDirectory()
    observer = Observer()
    observer.schedule(FileSystemEventHandler(), watched.name)
    observer.start()

    cache: cachetools.TTLCache[str, object] = cachetools.TTLCache(maxsize=1024, ttl=60)
    cache["flag"] = yaml.safe_load("flags: []")
    mmh3.hash("warm-up")
    return [http, watched, observer, cache]


def main(port_file: str, dependencies: bool = False) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(lambda _r, _c: b"")
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Empty", {"Call": handler}),))
    kept = _with_dependencies(server) if dependencies else []
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    Path(port_file).write_text(str(port))
    stopped.wait()
    server.stop(0)
    del kept


if __name__ == "__main__":
    main(sys.argv[1], "--dependencies" in sys.argv[2:])

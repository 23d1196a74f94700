"""Server processes for the RPC benchmarks: our sidecar, and the same server with an empty service.

    python -m bench.servers sidecar FLAGS_FILE PORT_FILE
    python -m bench.servers empty FLAGS_FILE PORT_FILE

Both are built by sidecar.server.app.SidecarServer with the same executor and options; the empty
one registers a single unary method that returns an empty message without parsing its request,
which is grpcio's own per-call cost: the floor.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import grpc

from sidecar.server.app import SERVICE_REGISTRARS, RegisteredServices, ServiceDependencies, SidecarServer
from sidecar.store import FileRepository, FlagStore

EMPTY_SERVICE = "bench.Empty"
EMPTY_METHOD = f"/{EMPTY_SERVICE}/Call"


def register_empty_service(server: grpc.Server, _deps: ServiceDependencies) -> RegisteredServices:
    handler = grpc.method_handlers_generic_handler(
        EMPTY_SERVICE, {"Call": grpc.unary_unary_rpc_method_handler(lambda _request, _context: b"")}
    )
    server.add_generic_rpc_handlers((handler,))
    return RegisteredServices((EMPTY_SERVICE,))


def main(kind: str, flags_file: str, port_file: str) -> None:
    store = FlagStore(FileRepository(flags_file))
    store.start()
    registrars = (register_empty_service,) if kind == "empty" else SERVICE_REGISTRARS
    server = SidecarServer(store, "127.0.0.1:0", registrars=registrars)
    port = server.start()
    Path(port_file).write_text(str(port))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    server.stop(0)
    store.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])

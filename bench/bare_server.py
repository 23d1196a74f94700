"""The smallest grpcio server process: one empty unary method and nothing else imported.

    python -m bench.bare_server PORT_FILE

Its idle RSS is the memory floor any Python gRPC server starts from (interpreter + grpcio).
"""

from __future__ import annotations

import signal
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc


def main(port_file: str) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handler = grpc.unary_unary_rpc_method_handler(lambda _request, _context: b"")
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Empty", {"Call": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    Path(port_file).write_text(str(port))
    stopped.wait()
    server.stop(0)


if __name__ == "__main__":
    main(sys.argv[1])

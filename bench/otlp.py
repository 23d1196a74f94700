"""Evaluate with the otlp exporter on, against the same sidecar with no exporter and the empty RPC.

    python -m bench.otlp [--repeats N] [--calls N] [--concurrency N]

A local OTLP/gRPC receiver (opentelemetry-proto's LogsService, in this process, counting records)
stands for the collector. The measured sidecar runs `--exporter otlp:endpoint=<receiver>` with
flush_interval=0.1 (instead of 10 s), so that each measurement's events are encoded and sent
within it: the server's CPU per call then includes the exporter's work on its worker threads.
The receiver's count proves the events were delivered. The same sidecar with the file exporter
(same flush interval, fsync off) puts the figure beside the cost of any exporter.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc

from . import flagsets
from .rpc import LoadGenerator, pin_to_cpus, server_process
from .servers import EMPTY_METHOD

CASES = ("static", "split")
FLAGS = 100


class Collector(logs_service_pb2_grpc.LogsServiceServicer):
    """Accepts every request and counts its records."""

    def __init__(self) -> None:
        self.records = 0
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        n = sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)
        with self.lock:
            self.records += n
        return logs_service_pb2.ExportLogsServiceResponse()

    def close(self) -> None:
        self.server.stop(0).wait(5)


@dataclass
class OtlpResults:
    # Per case: CPU per call (µs) of the empty RPC, the sidecar without and with the otlp exporter,
    # and the per-repeat ratios otlp/empty and otlp/no exporter.
    empty_us: dict[str, list[float]] = field(default_factory=dict)
    off_us: dict[str, list[float]] = field(default_factory=dict)
    on_us: dict[str, list[float]] = field(default_factory=dict)
    on_vs_empty: dict[str, list[float]] = field(default_factory=dict)
    on_vs_off: dict[str, list[float]] = field(default_factory=dict)
    file_vs_empty: dict[str, list[float]] = field(default_factory=dict)
    delivered: int = 0
    sent: int = 0
    concurrency: int = 0
    calls: int = 0


def run(flags_file: Path, repeats: int, calls: int, concurrency: int, pin: bool = False) -> OtlpResults:
    results = OtlpResults(concurrency=concurrency, calls=calls)
    every = (
        results.empty_us,
        results.off_us,
        results.on_us,
        results.on_vs_empty,
        results.on_vs_off,
        results.file_vs_empty,
    )
    for case in CASES:
        for series in every:
            series[case] = []
    collector = Collector()
    try:
        with contextlib.ExitStack() as stack:

            def start(kind: str, env: dict[str, str] | None = None) -> LoadGenerator:
                server = stack.enter_context(server_process(kind, flags_file, env))
                generator = stack.enter_context(LoadGenerator(server))
                if pin:
                    pin_to_cpus(server.pid, {0})
                    pin_to_cpus(generator.pid, {1})
                return generator

            spec = f"otlp:endpoint=http://127.0.0.1:{collector.port},flush_interval=0.1"
            empty, off, on = start("empty"), start("sidecar"), start("sidecar", {"BENCH_EXPORTER": spec})
            events_dir = stack.enter_context(tempfile.TemporaryDirectory())
            file_spec = f"file:dir={events_dir},flush_interval=0.1,fsync=false"
            to_file = start("sidecar", {"BENCH_EXPORTER": file_spec})
            for _ in range(repeats):
                for case in CASES:
                    request = flagsets.evaluate_request(case)
                    floor = empty.measure(EMPTY_METHOD, b"", calls, concurrency)
                    without = off.measure(flagsets.EVALUATE_METHOD, request, calls, concurrency)
                    with_otlp = on.measure(flagsets.EVALUATE_METHOD, request, calls, concurrency)
                    with_file = to_file.measure(flagsets.EVALUATE_METHOD, request, calls, concurrency)
                    results.file_vs_empty[case].append(with_file.cpu_us / floor.cpu_us)
                    results.sent += with_otlp.calls
                    results.empty_us[case].append(floor.cpu_us)
                    results.off_us[case].append(without.cpu_us)
                    results.on_us[case].append(with_otlp.cpu_us)
                    results.on_vs_empty[case].append(with_otlp.cpu_us / floor.cpu_us)
                    results.on_vs_off[case].append(with_otlp.cpu_us / without.cpu_us)
        # The servers have stopped (SIGTERM flushes the pipeline): every event has been sent.
        results.delivered = collector.records
    finally:
        collector.close()
    return results


def main() -> None:
    import statistics

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pin-cpus", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        flags_file = flagsets.write_flag_file(Path(tmp), FLAGS)
        results = run(flags_file, args.repeats, args.calls, args.concurrency, args.pin_cpus)
    for case in CASES:
        print(
            f"Evaluate {case}: empty {statistics.median(results.empty_us[case]):.0f} us, "
            f"no exporter {statistics.median(results.off_us[case]):.0f} us, "
            f"otlp {statistics.median(results.on_us[case]):.0f} us; "
            f"otlp/empty {statistics.median(results.on_vs_empty[case]):.3f}x, "
            f"otlp/no exporter {statistics.median(results.on_vs_off[case]):.3f}x, "
            f"file/empty {statistics.median(results.file_vs_empty[case]):.3f}x"
        )
    print(f"events delivered to the receiver: {results.delivered} (at least {results.sent} expected)")


if __name__ == "__main__":
    main()

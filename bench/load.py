"""Load generator, run in its own process against one server: unary calls with prebuilt request bytes.

    python -m bench.load TARGET

Reads one JSON command per line on stdin: {"method", "request" (hex), "calls", "concurrency",
"warmup"}. For each it makes `warmup` calls, prints {"warm": true} and waits for a line "go" (so
the caller can read the server's CPU counters right before the measured calls), then makes `calls`
calls from `concurrency` threads and prints one JSON line: wall seconds, calls, throughput and
per-call latency percentiles in microseconds. One channel (one HTTP/2 connection) serves all
commands, as a client application would hold it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import grpc


def run(call: Any, request: bytes, calls: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    per_worker = max(1, calls // concurrency)
    start_line = threading.Barrier(concurrency + 1)

    def worker() -> None:
        mine = []
        clock = time.perf_counter
        start_line.wait()
        for _ in range(per_worker):
            start = clock()
            call(request, timeout=30)
            mine.append(clock() - start)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    start_line.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    latencies.sort()
    return {
        "wall_s": wall,
        "calls": len(latencies),
        "throughput": len(latencies) / wall,
        "p50_us": latencies[len(latencies) // 2] * 1e6,
        "p99_us": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e6,
    }


def main(target: str) -> None:
    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=10)
    while line := sys.stdin.readline():
        if not line.strip():
            continue
        command = json.loads(line)
        # bytes in, bytes out: no client-side protobuf
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(command["method"])
        request = bytes.fromhex(command["request"])
        if command.get("warmup"):
            run(call, request, command["warmup"], command["concurrency"])
        print(json.dumps({"warm": True}), flush=True)
        if sys.stdin.readline().strip() != "go":
            break
        result = run(call, request, command["calls"], command["concurrency"])
        print(json.dumps(result), flush=True)
    channel.close()


if __name__ == "__main__":
    main(sys.argv[1])

"""Load generator, run in its own process: N unary calls of one method with prebuilt request bytes.

    python -m bench.load TARGET METHOD REQUEST_HEX CALLS CONCURRENCY

Prints one JSON line: wall seconds, calls, and per-call latency percentiles in microseconds.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import grpc


def run(target: str, method: str, request: bytes, calls: int, concurrency: int) -> dict[str, float]:
    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=10)
    call = channel.unary_unary(method)  # bytes in, bytes out: no client-side (de)serialization
    latencies: list[float] = []
    lock = threading.Lock()
    per_worker = calls // concurrency

    def worker() -> None:
        mine = []
        for _ in range(per_worker):
            start = time.perf_counter()
            call(request, timeout=10)
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    latencies.sort()
    channel.close()
    return {
        "wall_s": wall,
        "calls": len(latencies),
        "throughput": len(latencies) / wall,
        "p50_us": latencies[len(latencies) // 2] * 1e6,
        "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6,
    }


if __name__ == "__main__":
    target, method, request_hex, calls, concurrency = sys.argv[1:6]
    print(json.dumps(run(target, method, bytes.fromhex(request_hex), int(calls), int(concurrency))))

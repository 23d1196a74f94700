"""Where the otlp exporter's CPU goes: each pipeline thread's CPU per event, in this process.

    python -m bench.otlp_threads [--rate N] [--seconds S] [--exporter otlp|file]

Events are added at a fixed rate (about what the Evaluate load of bench/otlp.py makes) to a
pipeline with the otlp exporter (flush_interval=0.1) sending to bench/otlp.py's local receiver,
or the file exporter for comparison. Each thread's CPU clock is read before and after: the batch
thread (intake to batches), the export thread (encoding and the Export call), and the receiver's
server threads, which in a real deployment are the collector's. Run it from an older revision's
tree for an A/B.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time

from sidecar.engine.model import Evaluation, Reason
from sidecar.events import PipelineConfig, build_pipeline

from .otlp import Collector

WARMUP = 2000


def thread_cpu(ident: int | None) -> float:
    if ident is None:
        return 0.0
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(ident))
    except OSError:  # the thread has exited
        return 0.0


def measure(rate: int, seconds: float, kind: str) -> tuple[dict[str, float], int, int]:
    """(µs of CPU per event by thread name, with "add_evaluation" for the caller; events the
    receiver got; events added)."""
    collector = Collector()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if kind == "otlp":
                spec = f"otlp:endpoint=http://127.0.0.1:{collector.port},flush_interval=0.1"
            else:
                spec = f"file:dir={tmp},flush_interval=0.1,fsync=false"
            pipeline = build_pipeline(PipelineConfig(exporters=[spec]))
            pipeline.start()
            evaluation = Evaluation("flag-007", True, "on", Reason.STATIC, 3)
            context = {"plan": "pro"}
            for i in range(WARMUP):  # the channel connected, the caches filled
                pipeline.add_evaluation(evaluation, f"user-{i % 100}", context)
            time.sleep(0.5)
            me = threading.current_thread()
            threads = {t.name: t.ident for t in threading.enumerate() if t is not me}
            before = {name: thread_cpu(ident) for name, ident in threads.items()}
            calls = int(rate * seconds)
            adding = 0.0
            start = time.perf_counter()
            for i in range(calls):
                began = time.thread_time()
                pipeline.add_evaluation(evaluation, f"user-{i % 100}", context)
                adding += time.thread_time() - began
                while time.perf_counter() < start + (i + 1) / rate:
                    time.sleep(0.0002)
            time.sleep(0.3)  # the last batch sealed and sent
            after = {name: thread_cpu(ident) for name, ident in threads.items()}
            pipeline.close()
        used = {name: (after[name] - before[name]) / calls * 1e6 for name in threads}
        used["add_evaluation"] = adding / calls * 1e6
        return used, collector.records, calls + WARMUP
    finally:
        collector.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=3000, help="events per second")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--exporter", choices=("otlp", "file"), default="otlp")
    args = parser.parse_args()
    used, delivered, sent = measure(args.rate, args.seconds, args.exporter)
    for name, us in used.items():
        if us > 0.1:
            print(f"{name:32s} {us:8.2f} µs/event")
    print(f"delivered to the receiver: {delivered} of {sent}")


if __name__ == "__main__":
    main()

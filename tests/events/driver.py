"""A stand-alone process for the crash tests: an EventPipeline with a spool and a webhook exporter.

    python tests/events/driver.py --url URL --spool DIR [--count N] [--rate R] [--sent FILE]

Prints "ready" once started, then produces --count events (0: until stopped) at about --rate
per second, appending each event id to --sent. "sent N" is printed when --count is reached. On
SIGTERM it closes the pipeline within --grace seconds, prints the counters as JSON and exits 0.
`--exporter SPEC` replaces the webhook (tests/kafka); `--stats FILE` rewrites the counters there
every 50 ms, for a test that waits on them before a SIGKILL.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from sidecar.engine.model import Evaluation, Reason
from sidecar.events import EventPipeline, FeatureEvent, PipelineConfig, RetryPolicy, build_pipeline


def write_stats(pipeline: EventPipeline, path: Path, stop: threading.Event) -> None:
    temporary = path.with_suffix(".tmp")
    while not stop.wait(0.05):
        temporary.write_text(json.dumps(pipeline.stats()))
        temporary.replace(path)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--exporter")
    parser.add_argument("--stats", type=Path)
    parser.add_argument("--spool", required=True, type=Path)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--sent", type=Path)
    parser.add_argument("--flush-interval", type=float, default=0.05)
    parser.add_argument("--max-events", type=int, default=50)
    parser.add_argument("--grace", type=float, default=5.0)
    parser.add_argument("--tag", default="run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="driver %(levelname)s %(message)s")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pipeline = build_pipeline(
        PipelineConfig(
            exporters=[args.exporter or f"webhook:url={args.url},timeout=2"],
            flush_interval=args.flush_interval,
            max_events_in_memory=args.max_events,
            spool_dir=args.spool,
            retry=RetryPolicy(initial=0.02, maximum=0.2),
            shutdown_grace=args.grace,
        )
    )
    pipeline.start()
    if args.stats:
        threading.Thread(target=write_stats, args=(pipeline, args.stats, stop), daemon=True).start()
    print("ready", flush=True)

    sent = open(args.sent, "a", buffering=1) if args.sent else None  # noqa: SIM115 - line buffered log
    evaluation = Evaluation("new-checkout", True, "on", Reason.TARGETING_MATCH, 1)
    produced = 0
    started = time.monotonic()
    while not stop.is_set() and (args.count == 0 or produced < args.count):
        if args.rate <= 0:
            break
        event = FeatureEvent.from_evaluation(evaluation, f"{args.tag}-{produced}")
        pipeline.add_event(event)
        if sent is not None:
            sent.write(event.event_id + "\n")
        produced += 1
        ahead = produced / args.rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    if args.count:
        print(f"sent {produced}", flush=True)
    stop.wait()
    pipeline.close()
    print(json.dumps(pipeline.stats()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

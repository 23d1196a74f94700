"""The options of the event pipeline (declared as sidecar.options explains)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sidecar.options import (
    option,
    parse_bool,
    parse_path,
    parse_positive_count,
    parse_positive_seconds,
    parse_seconds,
    parse_size,
)


def parse_exporter(text: str) -> str:
    """KIND[:key=value,...]; the syntax, the kind and the values a kind checks without building
    (CHECKS) are checked here (an option error, exit 2), the rest when the pipeline is built."""
    from .exporters import CHECKS, FACTORIES
    from .options import Options, parse_exporter_spec

    spec = parse_exporter_spec(text)  # raises SpecError, a ValueError
    if spec.kind not in FACTORIES:
        raise ValueError(
            f"unknown exporter kind {spec.kind!r}; the exporters are {', '.join(sorted(FACTORIES))}"
        )
    check = CHECKS.get(spec.kind)
    if check is not None:
        check(Options(spec))
    return text.strip()


@dataclass(frozen=True)
class EventOptions:
    exporter: tuple[str, ...] | None = option(
        parse_exporter,
        None,
        "KIND[:key=value,...]",
        "send evaluation and tracking events to an exporter: log, file:dir=PATH[,format=jsonl|csv|"
        "parquet], webhook:url=URL[,secret=S], kafka:brokers=HOST:PORT,topic=T[,format=json|protobuf], "
        "otlp:endpoint=URL; "
        "repeat for several (environment: one per line)",
        multiple=True,
        separator="\n",
    )
    flush_interval: float = option(
        parse_positive_seconds,
        10.0,
        "SECONDS",
        "bulk exporters (file, webhook) get the waiting events at least this often",
    )
    max_events_in_memory: int = option(
        parse_positive_count, 10_000, "N", "bulk exporters get a batch as soon as this many events wait"
    )
    events_buffer_bytes: int = option(
        parse_size,
        64 * 1024**2,
        "BYTES",
        "memory each exporter may hold for events it cannot take yet; past it they go to the "
        "spool (without one: dropped, counted and logged; Track answers RESOURCE_EXHAUSTED)",
    )
    max_event_details_bytes: int = option(
        parse_size,
        64 * 1024,
        "BYTES",
        "largest encoded `details` of a Track event; larger ones are INVALID_ARGUMENT (0: no limit)",
    )
    spool_dir: Path | None = option(
        parse_path,
        None,
        "PATH",
        "disk spool (a subdirectory per exporter): events an exporter could not take yet survive "
        "outages and restarts; without it they are kept in memory only",
    )
    spool_max_bytes: int = option(
        parse_size,
        256 * 1024**2,
        "BYTES",
        "disk quota of each exporter's spool; past it new events are dropped (counted and logged)",
    )
    events_on_evaluate_all: bool = option(
        parse_bool,
        True,
        "BOOL",
        "EvaluateAll produces one event per flag, like Evaluate (false: it produces none)",
    )
    events_flush_timeout: float = option(
        parse_seconds,
        5.0,
        "SECONDS",
        "on SIGTERM/SIGINT, how long exporters may take to deliver waiting events (within "
        "--shutdown-timeout); what is left goes to the spool",
    )

"""EventPipeline: fans every event out to one DataExporterScheduler per configured exporter.

The gRPC servicers hold one pipeline and call `add_evaluation` (or `add_evaluations` for
EvaluateAll) once per evaluation; that call builds one FeatureEvent and puts it on each
exporter's queue, nothing more. Each exporter has its own threads, buffer and spool directory,
so a slow or broken one never holds back the others.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .exporter import Exporter
from .exporters import FACTORIES
from .feature_event import Event, FeatureEvent, TrackingEvent, approx_size
from .options import ExporterSpec, Options, SpecError, parse_exporter_spec
from .scheduler import DEFAULT_BUFFER_BYTES, DataExporterScheduler, RetryPolicy
from .spool import Spool

if TYPE_CHECKING:
    from sidecar.engine.model import Evaluation

MIB = 1024 * 1024
DEFAULT_MAX_DETAILS_BYTES = 64 * 1024
EVENT_KINDS = {"all": frozenset({"feature", "tracking"}), "feature": frozenset({"feature"})}
EVENT_KINDS["tracking"] = frozenset({"tracking"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Everything the command line says about events (the options: sidecar/events/settings.py)."""

    exporters: Sequence[str | ExporterSpec] = ()
    flush_interval: float = 10.0
    max_events_in_memory: int = 10_000
    buffer_bytes: int = DEFAULT_BUFFER_BYTES  # each exporter's memory buffer, in bytes
    max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES  # a Track event's details (0: no limit)
    spool_dir: Path | None = None
    spool_max_bytes: int = 256 * MIB
    fsync: bool = True
    events_on_evaluate_all: bool = True
    shutdown_grace: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    source: str = "SERVER"


@dataclass(frozen=True, slots=True)
class Route:
    """One exporter's scheduler and the kinds of events it takes."""

    scheduler: DataExporterScheduler
    kinds: frozenset[str] = EVENT_KINDS["all"]

    @property
    def wants_context(self) -> bool:
        """Its exporter keeps the evaluation's context (the `users` exporter)."""
        return bool(getattr(self.scheduler.exporter, "wants_context", False))


class EventPipeline:
    def __init__(
        self,
        routes: Sequence[Route | DataExporterScheduler] = (),
        *,
        events_on_evaluate_all: bool = True,
        source: str = "SERVER",
        shutdown_grace: float = 10.0,
        max_details_bytes: int = DEFAULT_MAX_DETAILS_BYTES,
        logger: logging.Logger | None = None,
    ) -> None:
        self.routes = tuple(r if isinstance(r, Route) else Route(r) for r in routes)
        self.max_details_bytes = max_details_bytes
        # Track events refused at admission, by reason (flag_sidecar_events_rejected_total).
        self._rejected: dict[str, int] = {}
        self._rejected_lock = threading.Lock()
        self.events_on_evaluate_all = events_on_evaluate_all
        self.source = source
        self.shutdown_grace = shutdown_grace
        self.log = logger or logging.getLogger("sidecar.events")
        self._feature = tuple(r.scheduler for r in self.routes if "feature" in r.kinds)
        self._tracking = tuple(r.scheduler for r in self.routes if "tracking" in r.kinds)
        self._feature_adds = tuple(
            r.scheduler.add_feature_event for r in self.routes if "feature" in r.kinds and not r.wants_context
        )
        # Events with the context, sized by it: only for the exporters that keep it.
        self._context_adds = tuple(
            r.scheduler.add_sized_event for r in self.routes if "feature" in r.kinds and r.wants_context
        )
        self._tracking_adds = tuple(s.add_sized_event for s in self._tracking)
        self._closed = False

    @property
    def schedulers(self) -> tuple[DataExporterScheduler, ...]:
        return tuple(r.scheduler for r in self.routes)

    @property
    def enabled(self) -> bool:
        return bool(self.routes)

    # ---- the hot path ------------------------------------------------------------------------

    def add_evaluation(
        self, evaluation: Evaluation, user_id: str, context: Mapping[str, Any] | None = None
    ) -> None:
        """Record one evaluation (if its flag tracks events). Never blocks, never does I/O."""
        self._add_evaluation(evaluation, user_id, context, None)

    def _add_evaluation(
        self,
        evaluation: Evaluation,
        user_id: str,
        context: Mapping[str, Any] | None,
        kept: tuple[Mapping[str, Any], int] | None,
    ) -> None:
        """`kept`: a copy of the context and its size, made once for a call of several flags."""
        adds, context_adds = self._feature_adds, self._context_adds
        if not (adds or context_adds) or not evaluation.track_events:
            return
        event = FeatureEvent.from_evaluation(evaluation, user_id, context, self.source)
        for add in adds:
            add(event)
        if context_adds:
            held, size = _kept(context) if kept is None else kept
            with_context = event.with_context(held, size)
            for add in context_adds:
                add(with_context)

    def add_evaluations(
        self, evaluations: Iterable[Evaluation], user_id: str, context: Mapping[str, Any] | None = None
    ) -> None:
        """Record the evaluations of an EvaluateAll call, unless configured not to."""
        if not (self._feature_adds or self._context_adds) or not self.events_on_evaluate_all:
            return
        # The context is copied and measured once for the call, not once per flag.
        kept = _kept(context) if self._context_adds else None
        for evaluation in evaluations:
            self._add_evaluation(evaluation, user_id, context, kept)

    def add_event(self, event: Event) -> bool:
        """Queue any event for every exporter that takes its kind; False if one refused it."""
        adds = self._feature_adds if event.kind == "feature" else self._tracking_adds
        accepted = True
        for add in adds:
            accepted = add(event) and accepted
        return accepted

    def track(
        self,
        name: str,
        user_id: str,
        context: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        """Queue an application's tracking event; False if an exporter refused it."""
        return self.add_event(TrackingEvent(name, user_id, context, details))

    def can_accept(self, kind: str = "tracking") -> bool:
        """False when some exporter of this kind would have to drop a new event (memory buffer and
        spool both full): the Track RPC answers RESOURCE_EXHAUSTED instead of dropping."""
        targets = self._feature if kind == "feature" else self._tracking
        return not self._closed and not any(s.saturated for s in targets)

    def count_rejected(self, reason: str) -> None:
        """Count a Track event refused before it reached any exporter (invalid, or pushed back)."""
        with self._rejected_lock:
            self._rejected[reason] = self._rejected.get(reason, 0) + 1

    def rejections(self) -> dict[str, int]:
        with self._rejected_lock:
            return dict(self._rejected)

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for scheduler in self.schedulers:
            scheduler.start_daemon()

    def flush(self) -> None:
        for scheduler in self.schedulers:
            scheduler.flush()

    def wait_idle(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        return all(s.wait_idle(max(0.0, end - time.monotonic())) for s in self.schedulers)

    def close(self, grace: float | None = None) -> None:
        """Flush every exporter in parallel within `grace` seconds; spool (or count) the rest."""
        if self._closed:
            return
        self._closed = True
        timeout = self.shutdown_grace if grace is None else grace
        threads = [
            threading.Thread(target=s.close, args=(timeout,), name=f"events-{s.name}-close", daemon=True)
            for s in self.schedulers
        ]
        for t in threads:
            t.start()
        end = time.monotonic() + timeout + 5.0  # close() itself keeps to the deadline
        for t in threads:
            t.join(max(0.0, end - time.monotonic()))

    # ---- counters ----------------------------------------------------------------------------

    def stats(self) -> dict[str, dict[str, int]]:
        """Counters per exporter name: enqueued, exported, retried, spooled, replayed,
        dead_lettered, dropped, in_memory, spool_pending, spool_bytes, failing."""
        return {s.name: s.stats() for s in self.schedulers}

    def dropped_by_reason(self) -> dict[str, dict[str, int]]:
        return {s.name: s.dropped_by_reason for s in self.schedulers}

    def export_errors(self) -> dict[str, dict[str, int]]:
        """Failed export attempts per exporter name, by reason (unknown_topic, authentication...)."""
        return {s.name: s.errors_by_reason for s in self.schedulers}


def build_pipeline(config: PipelineConfig, logger: logging.Logger | None = None) -> EventPipeline:
    """Build (not start) the pipeline for a configuration. Raises SpecError with a clear message
    for a bad `--exporter` spec, SpoolLockedError when another process owns a spool directory."""
    log = logger or logging.getLogger("sidecar.events")
    routes: list[Route] = []
    names: set[str] = set()
    try:
        for item in config.exporters:
            spec = parse_exporter_spec(item) if isinstance(item, str) else item
            routes.append(_build_route(spec, config, names, log))
    except BaseException:
        for route in routes:
            if route.scheduler.spool is not None:
                route.scheduler.spool.close()
        raise
    if not routes:
        log.info("no event exporter configured: evaluation events are not recorded")
    return EventPipeline(
        routes,
        events_on_evaluate_all=config.events_on_evaluate_all,
        source=config.source,
        shutdown_grace=config.shutdown_grace,
        max_details_bytes=config.max_details_bytes,
        logger=log,
    )


def _build_route(spec: ExporterSpec, config: PipelineConfig, names: set[str], log: logging.Logger) -> Route:
    factory = FACTORIES.get(spec.kind)
    if factory is None:
        raise SpecError(f"exporter {spec}: unknown kind {spec.kind!r}; kinds: {', '.join(sorted(FACTORIES))}")
    options = Options(spec)
    name = options.string("name")
    if name is None:
        name, n = spec.kind, 1
        while name in names:
            n += 1
            name = f"{spec.kind}-{n}"
    elif not _NAME.match(name):
        raise options.error(f"name={name!r}: use letters, digits, '.', '_' and '-'")
    if name in names:
        raise options.error(f"two exporters are named {name!r}; give one a different name=")
    kinds = EVENT_KINDS[options.choice("events", EVENT_KINDS, "all")]
    flush_interval = options.real("flush_interval", config.flush_interval, minimum=0.001)
    max_events = options.integer("max_events", config.max_events_in_memory, minimum=1)
    buffer_limit = options.integer("buffer", 0, minimum=0) or None
    buffer_bytes = int(options.real("buffer_mb", config.buffer_bytes / MIB, minimum=0.001) * MIB)
    spool_max_bytes = int(options.real("spool_max_mb", config.spool_max_bytes / MIB, minimum=0.0) * MIB)
    dead_letter = options.string("dead_letter")
    exporter: Exporter = factory(options)
    options.finish()
    names.add(name)
    spool = None
    if config.spool_dir is not None:
        spool = Spool(
            Path(config.spool_dir) / name,
            max_bytes=spool_max_bytes,
            fsync=config.fsync,
            logger=log,
        )
    if dead_letter is None and config.spool_dir is not None:
        dead_letter = str(Path(config.spool_dir) / name / "dead-letter.jsonl")
    scheduler = DataExporterScheduler(
        flush_interval,
        max_events,
        exporter,
        log,
        name=name,
        spool=spool,
        buffer_limit=buffer_limit,
        buffer_bytes=buffer_bytes,
        retry=config.retry,
        dead_letter_path=dead_letter,
        close_timeout=config.shutdown_grace,
    )
    return Route(scheduler, kinds)


def _kept(context: Mapping[str, Any] | None) -> tuple[Mapping[str, Any], int]:
    """A copy of the context (the caller's may change once the call returns) and its size, without
    the reserved `$` keys the sidecar itself adds (`$userId`: the user's id, kept anyway)."""
    held = {key: value for key, value in (context or {}).items() if not key.startswith("$")}
    return held, approx_size(held)

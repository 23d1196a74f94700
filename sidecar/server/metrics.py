"""Prometheus metrics, counted on the hot path in plain Python and exposed at scrape time.

`Counter.labels(...).inc()` and `Histogram.observe()` take a lock each and cost a large share of
what an Evaluate RPC may add to grpcio's own cost (BENCHMARKS.md, "Costs behind the code"). So
the servicers only bump dict entries and a custom Collector turns those dicts, the store's
`stats` and the event pipeline's counters into metric families when /metrics is scraped.

Each worker thread counts into its own shard (a threading.local), so no lock is needed and no
increment is lost; a scrape sums the shards. Copying a dict or list is one C call that holds the
GIL, so a scrape never sees a dict changing size under it.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from enum import Enum
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from sidecar.engine import ErrorCode, Evaluation
from sidecar.logging_setup import suppressed_counts
from sidecar.store import SourceStatus

PREFIX = "flag_sidecar_"

# Handler time of a local RPC is tens of microseconds; the top buckets catch a stalled call.
RPC_BUCKETS: tuple[float, ...] = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)

# Flag keys of FLAG_NOT_FOUND answers come from clients: counting each one as its own series
# would let a buggy client grow memory without bound (flagd#1931). They share this label.
UNKNOWN_FLAG = "(unknown)"
# Beyond this many (flag, variant, reason, error) series per thread, new ones share one series.
MAX_EVALUATION_SERIES = 10_000
OVERFLOW_FLAG = "(other)"

# What EventPipeline.stats() reports per exporter, in exposition order; absent ones read as 0.
EXPORTER_COUNTERS: tuple[tuple[str, str], ...] = (
    ("enqueued", "Feature events accepted by the pipeline, per exporter"),
    ("exported", "Feature events the exporter has confirmed, per exporter"),
    ("retried", "Failed export attempts that were retried, per exporter"),
    ("spooled", "Feature events written to the disk spool (memory full or export failing), per exporter"),
    ("dropped", "Feature events lost, per exporter (each drop is also logged)"),
    ("replayed", "Feature events read back from the disk spool for export, per exporter"),
    ("dead_lettered", "Feature events set aside after a permanent export error, per exporter"),
)
EXPORTER_GAUGES: tuple[tuple[str, str], ...] = (
    ("in_memory", "Feature events waiting in memory, per exporter"),
    ("in_memory_bytes", "Approximate bytes of the events waiting in memory (--events-buffer-bytes)"),
    ("spool_pending", "Feature events waiting in the disk spool, per exporter"),
    ("spool_bytes", "Bytes used by the disk spool, per exporter"),
    ("failing", "1 while the exporter's last export attempt failed"),
)


class StoreLike(Protocol):
    """What the collector reads from a FlagStore (kept structural so tests can pass a stub)."""

    @property
    def ready(self) -> bool: ...

    @property
    def stats(self) -> Mapping[str, int]: ...


# Returns {exporter name: {"enqueued": n, "exported": n, ...}}; missing counters read as 0.
ExporterCounters = Callable[[], Mapping[str, Mapping[str, int]]]


class StreamCounters(Protocol):
    """What a scrape reads from sidecar.server.streams.StreamAdmission.stats() (per method)."""

    @property
    def open(self) -> Mapping[str, int]: ...
    @property
    def refused(self) -> Mapping[tuple[str, str], int]: ...  # (method, reason)
    @property
    def idle_closed(self) -> Mapping[str, int]: ...


class ProbeCounters(Protocol):
    """sidecar.server.liveness.LivenessProbe, as a scrape reads it."""

    failures: int

    def problem(self) -> str | None: ...


EvalKey = tuple[str, str, Enum, Enum | None]  # flag, variant, reason, error code


def evaluation_key(evaluation: Evaluation) -> EvalKey:
    """The series `evaluation` is counted in: (flag, variant, reason, error code), except that
    answers for unknown flags share the UNKNOWN_FLAG series."""
    error = evaluation.error_code
    if error is ErrorCode.FLAG_NOT_FOUND:
        return (UNKNOWN_FLAG, "", evaluation.reason, error)
    return (evaluation.flag_key, evaluation.variant, evaluation.reason, error)


class _Shard:
    __slots__ = ("evaluations", "rpcs")

    def __init__(self) -> None:
        # A Counter for update(): it counts a batch of keys in one C loop (EvaluateAll).
        self.evaluations: Counter[EvalKey] = Counter()
        # (method, code) -> [count per bucket (last is +Inf)..., sum of seconds]
        self.rpcs: dict[tuple[str, Any], list[float]] = {}


class SidecarMetrics:
    """The sidecar's metrics on a registry of their own (several servers can share a process)."""

    def __init__(
        self,
        store: StoreLike | None = None,
        *,
        rpc_buckets: Iterable[float] = RPC_BUCKETS,
        process_metrics: bool = True,
    ) -> None:
        self.store = store
        self.rpc_buckets = tuple(sorted(rpc_buckets))
        self._local = threading.local()
        self._shards: list[_Shard] = []
        self._shards_lock = threading.Lock()  # only taken when a thread makes its first shard
        self._exporter_sources: list[ExporterCounters] = []
        # Requests refused over a limit, by the limit's option name: rare, so a lock is fine here.
        self._limit_rejections: Counter[str] = Counter()
        self._limits_lock = threading.Lock()
        self._rejection_sources: list[Callable[[], Mapping[str, int]]] = []
        self._stream_sources: list[Callable[[], StreamCounters]] = []
        self.liveness_probes: list[ProbeCounters] = []
        self._export_error_sources: list[ExporterCounters] = []
        self.registry = CollectorRegistry()
        self.registry.register(_SidecarCollector(self))
        if process_metrics:
            # process_resident_memory_bytes, CPU seconds, open fds; python_info.
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)

    # ------------------------------------------------------------ wiring

    def add_exporter_counters(self, source: ExporterCounters) -> None:
        """Register a callable read at scrape time: {exporter: {enqueued, exported, ...}}."""
        self._exporter_sources.append(source)

    def add_event_rejections(self, source: Callable[[], Mapping[str, int]]) -> None:
        """Register a callable read at scrape time: {reason: Track events refused at admission}."""
        self._rejection_sources.append(source)

    def add_export_errors(self, source: ExporterCounters) -> None:
        """Register a callable read at scrape time: {exporter: {reason: failed export attempts}}."""
        self._export_error_sources.append(source)

    def export_errors(self) -> dict[tuple[str, str], int]:
        totals: dict[tuple[str, str], int] = {}
        for source in self._export_error_sources:
            for exporter, reasons in source().items():
                for reason, count in reasons.items():
                    totals[(exporter, reason)] = totals.get((exporter, reason), 0) + int(count)
        return totals

    def event_rejections(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for source in self._rejection_sources:
            for reason, count in source().items():
                totals[reason] = totals.get(reason, 0) + int(count)
        return totals

    def add_stream_stats(self, source: Callable[[], StreamCounters]) -> None:
        """Register a stream admission's `stats` (read at scrape time; one per gRPC server)."""
        self._stream_sources.append(source)

    def add_liveness_probe(self, probe: ProbeCounters) -> None:
        self.liveness_probes.append(probe)

    # ------------------------------------------------------------ hot path

    def _shard(self) -> _Shard:
        try:
            shard: _Shard = self._local.shard
        except AttributeError:
            shard = _Shard()
            with self._shards_lock:
                self._shards.append(shard)
            self._local.shard = shard
        return shard

    def record_evaluation(self, evaluation: Evaluation) -> None:
        """Count one evaluation by flag, variant and reason."""
        self.count_evaluations((evaluation_key(evaluation),))

    def record_evaluations(self, evaluations: Iterable[Evaluation]) -> None:
        """Count evaluations by flag, variant and reason."""
        self.count_evaluations([evaluation_key(evaluation) for evaluation in evaluations])

    def count_evaluations(self, keys: Sequence[EvalKey]) -> None:
        """Count one evaluation per key (from evaluation_key; the servicers keep each precomputed
        answer's key, so a call builds none). EvaluateAll counts its answers in one C loop."""
        try:
            counts = self._local.shard.evaluations
        except AttributeError:
            counts = self._shard().evaluations
        if len(counts) + len(keys) <= MAX_EVALUATION_SERIES:
            counts.update(keys)  # cannot reach the cap: no key needs checking
            return
        for key in keys:
            _count(counts, key)

    def count_limit(self, limit: str) -> None:
        """Count one request refused over `limit` (an option name, e.g. "max_flag_key_bytes")."""
        with self._limits_lock:
            self._limit_rejections[limit] += 1

    def limit_rejections(self) -> dict[str, int]:
        with self._limits_lock:
            return dict(self._limit_rejections)

    def observe_rpc(self, method: str, seconds: float, code: Any = "OK") -> None:
        """Count one RPC into the latency histogram of (method, status code); `code` may be a
        grpc.StatusCode or its name."""
        try:
            shard = self._local.shard
        except AttributeError:
            shard = self._shard()
        self._observe(shard, method, code, seconds)

    def observe_evaluation_rpc(self, method: str, key: EvalKey, seconds: float) -> None:
        """count_evaluations((key,)) and observe_rpc(method, seconds, "OK") in one call: the metrics
        of an Evaluate call on the servicer's fast path."""
        try:
            shard = self._local.shard
        except AttributeError:
            shard = self._shard()
        _count(shard.evaluations, key)
        self._observe(shard, method, "OK", seconds)

    def _observe(self, shard: _Shard, method: str, code: Any, seconds: float) -> None:
        entry = shard.rpcs.get((method, code))
        if entry is None:
            entry = shard.rpcs[(method, code)] = [0] * (len(self.rpc_buckets) + 1) + [0.0]
        entry[bisect_left(self.rpc_buckets, seconds)] += 1
        entry[-1] += seconds

    # ------------------------------------------------------------ scrape side

    def evaluation_counts(self) -> dict[tuple[str, str, str, str], int]:
        """{(flag, variant, reason, error code or ""): count}, summed over threads."""
        totals: dict[tuple[str, str, str, str], int] = {}
        for shard in list(self._shards):
            for (flag, variant, reason, error), count in list(shard.evaluations.items()):
                key = (flag, variant, _name(reason), "" if error is None else _name(error))
                totals[key] = totals.get(key, 0) + count
        return totals

    def rpc_histograms(self) -> dict[tuple[str, str], list[float]]:
        """{(method, code name): [non-cumulative bucket counts..., +Inf count, sum]}."""
        totals: dict[tuple[str, str], list[float]] = {}
        for shard in list(self._shards):
            for (method, code), entry in list(shard.rpcs.items()):
                snapshot = list(entry)
                key = (method, _name(code))
                if key in totals:
                    totals[key] = [a + b for a, b in zip(totals[key], snapshot, strict=True)]
                else:
                    totals[key] = snapshot
        return totals

    def stream_counts(self) -> tuple[Counter[str], Counter[tuple[str, str]], Counter[str]]:
        """(open, refused by (method, reason), idle-closed), summed over the gRPC servers."""
        opened: Counter[str] = Counter()
        refused: Counter[tuple[str, str]] = Counter()
        idle: Counter[str] = Counter()
        for source in self._stream_sources:
            stats = source()
            opened.update(stats.open)
            refused.update(stats.refused)
            idle.update(stats.idle_closed)
        return opened, refused, idle

    def exporter_counts(self) -> dict[str, dict[str, int]]:
        totals: dict[str, dict[str, int]] = {}
        for source in self._exporter_sources:
            for exporter, counters in source().items():
                merged = totals.setdefault(exporter, {})
                for name, _help in (*EXPORTER_COUNTERS, *EXPORTER_GAUGES):
                    merged[name] = merged.get(name, 0) + int(counters.get(name, 0))
        return totals


def _count(counts: Counter[EvalKey], key: EvalKey) -> None:
    """Count `key` once; past MAX_EVALUATION_SERIES series a new key counts in the overflow series."""
    count = counts.get(key)
    if count is None:
        if len(counts) >= MAX_EVALUATION_SERIES:
            key = (OVERFLOW_FLAG, "", key[2], key[3])
        count = counts.get(key, 0)
    counts[key] = count + 1


def _name(value: Any) -> str:
    return value.name if isinstance(value, Enum) else str(value)


def _format_bound(bound: float) -> str:
    return repr(float(bound))  # Prometheus' own spelling: 0.001, 1.0


def _source_metrics(status: SourceStatus, remote: bool) -> Iterator[Metric]:
    """The flag source's health (sidecar.store.source_health): up or down for any source; for a
    remote one, how old the served set is and whether it is the last-known-good copy."""
    yield GaugeMetricFamily(
        PREFIX + "source_up",
        "1 while the flag source can be had (a file that exists and reads, a remote source that "
        "answers); 0 while the last good set is served without it",
        value=int(status.up),
    )
    if not remote:
        return
    age = status.age()
    if age is not None:
        yield GaugeMetricFamily(
            PREFIX + "flag_set_age_seconds",
            "Seconds since the served flag set was last known to be the remote source's document "
            "(applied, or revalidated: an HTTP 304)",
            value=age,
        )
    yield GaugeMetricFamily(
        PREFIX + "flag_set_last_known_good",
        "1 while the served flag set is the last-known-good copy from --state-dir, not yet fetched "
        "from the remote source by this process",
        value=int(status.last_known_good),
    )


def _cache_metrics(cache: Any, stats: Mapping[str, int]) -> Iterator[Metric]:
    """The source cache in front of a database source (sidecar.store.source_cache)."""
    yield GaugeMetricFamily(
        PREFIX + "flag_cache_entries",
        "Flags and segments of the database source held in memory (flag:<key>, segment:<key>)",
        value=len(cache.entries),
    )
    if cache.validated_at is not None:
        yield GaugeMetricFamily(
            PREFIX + "flag_cache_validated_age_seconds",
            "Seconds since the database last vouched for the cached entries (a fetch, or a "
            "revalidation past --cache-ttl that found the revision unchanged)",
            value=max(0.0, time.time() - cache.validated_at),
        )
    revalidations = CounterMetricFamily(
        PREFIX + "flag_cache_revalidations",
        "Revalidations of the cached entries (on a push, or past --cache-ttl), by what they found: "
        "unchanged (one revision query), changed (the changed entries fetched), failed (the source "
        "could not be had; the old entries keep serving)",
        labels=["result"],
    )
    for result in ("unchanged", "changed", "failed"):
        revalidations.add_metric([result], stats.get(f"revalidations_{result}", 0))
    yield revalidations


class _SidecarCollector(Collector):
    def __init__(self, metrics: SidecarMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._evaluations()
        yield from self._rpcs()
        yield from self._store()
        yield from self._exporters()
        yield from self._logs()
        yield from self._limits()
        yield from self._streams()

    def _limits(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            PREFIX + "limit_rejections",
            "Requests refused for going over a limit, by the limit's option name",
            labels=("limit",),
        )
        for limit, count in sorted(self._metrics.limit_rejections().items()):
            family.add_metric((limit,), count)
        yield family

    def _logs(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            PREFIX + "log_lines_suppressed",
            "Log lines not written because the same message repeated too often, by logger",
            labels=("logger",),
        )
        for name, count in sorted(suppressed_counts().items()):
            family.add_metric((name,), count)
        yield family

    def _evaluations(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            PREFIX + "evaluations",
            "Flag evaluations by flag, variant, reason and error code (unknown flags share one flag label)",
            labels=("flag", "variant", "reason", "error_code"),
        )
        for labels, count in sorted(self._metrics.evaluation_counts().items()):
            family.add_metric(labels, count)
        yield family

    def _rpcs(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            PREFIX + "rpc_duration_seconds",
            "Time spent in the sidecar's gRPC handlers, by method and status code",
            labels=("method", "code"),
        )
        bounds = [*(_format_bound(b) for b in self._metrics.rpc_buckets), "+Inf"]
        for labels, entry in sorted(self._metrics.rpc_histograms().items()):
            cumulative, running = [], 0.0
            for bound, count in zip(bounds, entry[:-1], strict=True):
                running += count
                cumulative.append((bound, running))
            family.add_metric(labels, cumulative, sum_value=entry[-1])
        yield family

    def _store(self) -> Iterator[Metric]:
        store = self._metrics.store
        if store is None:
            return
        stats = dict(store.stats)
        for stat, help_text in (
            ("reloads", "Flag sets loaded and applied (including the first)"),
            ("rejected_reloads", "Flag sets rejected on validation or read errors (the last good set stays)"),
            (
                "source_lost",
                "Times the flag source could not be had (a deleted or unreadable file, a remote source"
                " that is down); the last good set stays",
            ),
            # The evaluation cache is off by default, and these then stay 0: the HELP says why.
            (
                "cache_hits",
                "Evaluations answered from the evaluation cache (off, so 0, unless --eval-cache-size)",
            ),
            (
                "cache_misses",
                "Evaluations computed because the evaluation cache had no answer (off, so 0, unless "
                "--eval-cache-size)",
            ),
        ):
            name = {
                "reloads": "flag_set_reloads",
                "rejected_reloads": "flag_set_rejected_reloads",
                "source_lost": "flag_source_lost",
            }.get(stat, stat)
            yield CounterMetricFamily(PREFIX + name, help_text, value=stats.get(stat, 0))
        yield GaugeMetricFamily(
            PREFIX + "flag_set_loaded", "1 once a flag set is loaded and applied", value=int(store.ready)
        )
        flag_set = getattr(store, "flag_set", None)
        if flag_set is not None:
            yield GaugeMetricFamily(
                PREFIX + "flags", "Flags in the applied flag set", value=len(flag_set.flags)
            )
        status = getattr(store, "source_status", None)
        if status is not None:
            yield from _source_metrics(status, remote=bool(getattr(store, "remote", False)))
        cache = getattr(store, "cache", None)
        if cache is not None:
            yield from _cache_metrics(cache, stats)

    def _exporters(self) -> Iterator[Metric]:
        counts = self._metrics.exporter_counts()
        for name, help_text in EXPORTER_COUNTERS:
            family = CounterMetricFamily(PREFIX + "events_" + name, help_text, labels=("exporter",))
            for exporter, counters in sorted(counts.items()):
                family.add_metric((exporter,), counters[name])
            yield family
        for name, help_text in EXPORTER_GAUGES:
            gauge = GaugeMetricFamily(PREFIX + "events_" + name, help_text, labels=("exporter",))
            for exporter, counters in sorted(counts.items()):
                gauge.add_metric((exporter,), counters[name])
            yield gauge
        rejected = CounterMetricFamily(
            PREFIX + "events_rejected",
            "Track events refused before any exporter got them (INVALID_ARGUMENT, RESOURCE_EXHAUSTED)",
            labels=("reason",),
        )
        for reason, count in sorted(self._metrics.event_rejections().items()):
            rejected.add_metric((reason,), count)
        yield rejected
        errors = CounterMetricFamily(
            PREFIX + "events_export_errors",
            "Failed export attempts, per exporter and reason (unknown_topic, authentication, "
            "message_too_large, broker_unreachable...); each is also logged",
            labels=("exporter", "reason"),
        )
        for (exporter, reason), count in sorted(self._metrics.export_errors().items()):
            errors.add_metric((exporter, reason), count)
        yield errors

    def _streams(self) -> Iterator[Metric]:
        opened, refused, idle = self._metrics.stream_counts()
        gauge = GaugeMetricFamily(
            PREFIX + "streams_open", "Streaming calls open now, by method", labels=("method",)
        )
        for method, count in sorted(opened.items()):
            gauge.add_metric((method,), count)
        yield gauge
        family = CounterMetricFamily(
            PREFIX + "streams_refused",
            "Streams refused with RESOURCE_EXHAUSTED, by method and the limit reached "
            "(max_streams or max_streams_per_connection)",
            labels=("method", "reason"),
        )
        for labels, count in sorted(refused.items()):
            family.add_metric(labels, count)
        yield family
        family = CounterMetricFamily(
            PREFIX + "streams_idle_closed",
            "Streams ended after --stream-idle-timeout without a message, by method",
            labels=("method",),
        )
        for method, count in sorted(idle.items()):
            family.add_metric((method,), count)
        yield family
        probes = self._metrics.liveness_probes
        if probes:
            yield GaugeMetricFamily(
                PREFIX + "grpc_alive",
                "1 while the gRPC server answers its own loopback health check (liveness)",
                value=int(all(probe.problem() is None for probe in probes)),
            )
            yield CounterMetricFamily(
                PREFIX + "liveness_probe_failures",
                "Loopback health checks of the gRPC server that failed",
                value=sum(probe.failures for probe in probes),
            )


class NullMetrics:
    """Stands in for SidecarMetrics when a server is built without metrics (tests, embedding)."""

    def record_evaluation(self, evaluation: Evaluation) -> None:
        pass

    def record_evaluations(self, evaluations: Iterable[Evaluation]) -> None:
        pass

    def count_evaluations(self, keys: Sequence[EvalKey]) -> None:
        pass

    def observe_rpc(self, method: str, seconds: float, code: Any = "OK") -> None:
        pass

    def count_limit(self, limit: str) -> None:
        pass

    def observe_evaluation_rpc(self, method: str, key: EvalKey, seconds: float) -> None:
        pass


NULL_METRICS = NullMetrics()

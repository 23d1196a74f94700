"""FlagStore: TTL caches (cachetools) in front of a repository, and the evaluation entry point.

The last good flag set is held in memory and swapped atomically on a valid reload; a rejected
reload is logged with every problem and changes nothing. Cached entries are keyed by
flag_cache_key / segment_cache_key / eval_cache_key; evaluation keys carry the flag version and
the segments revision, so a changed flag or segment can never be answered from an old entry.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cachetools import TTLCache

from ..engine import (
    Evaluation,
    Flag,
    FlagSet,
    FlagSetError,
    Segment,
    evaluate,
    evaluate_plan,
    evaluation_plan,
    flag_not_found,
)
from ..engine.compiler import VersionOf
from ..engine.evaluator import PlanStep
from .cache_keys import eval_cache_key, flag_cache_key, request_hash, segment_cache_key

log = logging.getLogger(__name__)


class Repository(Protocol):
    """A source of truth for flag sets."""

    @property
    def source(self) -> str: ...

    def load(self, version_of: VersionOf | None = None) -> FlagSet: ...

    def watch(self, on_change: Callable[[], object]) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FlagSetChange:
    """What a reload changed (flag keys), with the new set."""

    added: frozenset[str]
    updated: frozenset[str]
    removed: frozenset[str]
    segments_changed: bool
    flag_set: FlagSet

    @property
    def changed_flags(self) -> frozenset[str]:
        return self.added | self.updated | self.removed


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The applied flag set and what is derived from it, replaced as a whole on every reload."""

    flag_set: FlagSet
    segments_revision: int
    generation: int
    plan: tuple[PlanStep, ...] = ()  # evaluate_all's steps, one per flag in key order
    steps: Mapping[str, PlanStep] = field(default_factory=dict)  # the same steps by flag key


_MISSING = object()
_EMPTY = Snapshot(FlagSet(flags={}, segments={}), 0, 0)


class FlagStore:
    def __init__(
        self,
        repository: Repository,
        cache_ttl: float = 30.0,
        cache_size: int = 100_000,
        eval_cache_size: int = 0,
    ) -> None:
        """`eval_cache_size` > 0 caches evaluation results too. Off by default: hashing the context for
        the cache key costs more than evaluating a compiled flag (BENCHMARKS.md), so the cache pays
        off only for flags whose rules are much more expensive than these."""
        self.repository = repository
        self._lock = threading.Lock()  # guards the caches only; never held during I/O or evaluation
        self._flags: TTLCache[str, Any] = TTLCache(cache_size, cache_ttl)
        self._segments: TTLCache[str, Any] = TTLCache(cache_size, cache_ttl)
        self._evaluations: TTLCache[str, Evaluation] | None = (
            TTLCache(eval_cache_size, cache_ttl) if eval_cache_size > 0 else None
        )
        # Immutable, replaced in one assignment: a reader gets the old set or the new one, never a
        # mix. Public for the servers' Evaluate fast path, which looks a flag's step up in it.
        self.snapshot = _EMPTY
        self._versions: dict[str, tuple[str, int]] = {}  # flag key -> (fingerprint, version)
        self._listeners: list[Callable[[FlagSetChange], None]] = []
        self._reload_lock = threading.Lock()
        self.loaded = threading.Event()
        self.stats = {"reloads": 0, "rejected_reloads": 0, "cache_hits": 0, "cache_misses": 0}

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Load the first flag set (raising FlagSetError or OSError) and watch for changes."""
        self._reload(initial=True)
        self.repository.watch(self.reload)

    def close(self) -> None:
        self.repository.close()

    @property
    def ready(self) -> bool:
        return self.loaded.is_set()

    @property
    def caches_evaluations(self) -> bool:
        """False: every evaluation is evaluate_plan's over the snapshot's steps, which the servers'
        fast paths rely on; True: evaluations go through the cache, so only evaluate* may be used."""
        return self._evaluations is not None

    @property
    def flag_set(self) -> FlagSet:
        return self.snapshot.flag_set

    def subscribe(self, listener: Callable[[FlagSetChange], None]) -> Callable[[], None]:
        """Call `listener` after every reload that really changed the set. Returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def reload(self) -> bool:
        """Re-read the repository; keep the last good set if the new one is broken. True if applied."""
        try:
            self._reload(initial=False)
            return True
        except (FlagSetError, OSError) as error:
            self.stats["rejected_reloads"] += 1
            problems = error.problems if isinstance(error, FlagSetError) else [error]
            log.error(
                "rejected flag set from %s, still serving the last good one (%d flags): %s",
                self.repository.source,
                len(self.snapshot.flag_set.flags),
                "; ".join(str(p) for p in problems),
                extra={"event": "flags_rejected", "problems": [str(p) for p in problems]},
            )
            return False

    def _reload(self, initial: bool) -> None:
        with self._reload_lock:
            pending: dict[str, tuple[str, int]] = {}
            flag_set = self.repository.load(self._version_tracker(pending))
            for warning in flag_set.warnings:
                log.warning("%s", warning)
            change = self._apply(flag_set, pending)
        self.stats["reloads"] += 1
        log.info(
            "loaded %d flags and %d segments from %s (added %d, updated %d, removed %d)",
            len(flag_set.flags),
            len(flag_set.segments),
            flag_set.source,
            len(change.added),
            len(change.updated),
            len(change.removed),
            extra={"event": "flags_loaded"},
        )
        self.loaded.set()
        if change.changed_flags or change.segments_changed:
            for listener in list(self._listeners):
                try:
                    listener(change)
                except Exception:
                    log.exception("flag set listener failed")

    def _version_tracker(self, pending: dict[str, tuple[str, int]]) -> VersionOf:
        """Version numbers that increase whenever a flag's definition changes (kept across removals)."""

        def version_of(key: str, fingerprint: str) -> int:
            known = self._versions.get(key)
            if known is None:
                version = 1
            elif known[0] == fingerprint:
                version = known[1]
            else:
                version = known[1] + 1
            pending[key] = (fingerprint, version)
            return version

        return version_of

    def _apply(self, flag_set: FlagSet, pending: dict[str, tuple[str, int]]) -> FlagSetChange:
        old = self.snapshot
        old_flags, new_flags = old.flag_set.flags, flag_set.flags
        added = frozenset(new_flags.keys() - old_flags.keys())
        removed = frozenset(old_flags.keys() - new_flags.keys())
        updated = frozenset(
            key
            for key in new_flags.keys() & old_flags.keys()
            if new_flags[key].fingerprint != old_flags[key].fingerprint
            or new_flags[key].version != old_flags[key].version
        )
        segments_changed = _fingerprints(old.flag_set.segments) != _fingerprints(flag_set.segments)
        revision = old.segments_revision + 1 if segments_changed or old is _EMPTY else old.segments_revision
        self._versions.update(pending)
        plan = evaluation_plan(flag_set.flags.values())
        steps = dict(zip(flag_set.flags, plan, strict=True))
        with self._lock:
            self.snapshot = Snapshot(flag_set, revision, old.generation + 1, plan, steps)
            self._flags.clear()
            self._segments.clear()
            if self._evaluations is not None:
                self._evaluations.clear()
        return FlagSetChange(added, updated, removed, segments_changed, flag_set)

    # ------------------------------------------------------------ lookups

    def _cached(self, cache: TTLCache[str, Any], key: str, fetch: Callable[[Snapshot], Any]) -> Any:
        with self._lock:
            entry = cache.get(key, _MISSING)
            snapshot = self.snapshot
        if entry is not _MISSING:
            return entry
        value = fetch(snapshot)
        with self._lock:
            # A reload between the read and this write must not let an old entry back in.
            if self.snapshot.generation == snapshot.generation:
                cache[key] = value
        return value

    def _flag_entry(self, key: str) -> tuple[Flag, int] | None:
        def fetch(snapshot: Snapshot) -> tuple[Flag, int] | None:
            flag = snapshot.flag_set.flags.get(key)
            return None if flag is None else (flag, snapshot.segments_revision)

        entry: tuple[Flag, int] | None = self._cached(self._flags, flag_cache_key(key), fetch)
        return entry

    def get_flag(self, key: str) -> Flag | None:
        entry = self._flag_entry(key)
        return None if entry is None else entry[0]

    def get_segment(self, key: str) -> Segment | None:
        segment: Segment | None = self._cached(
            self._segments, segment_cache_key(key), lambda snapshot: snapshot.flag_set.segments.get(key)
        )
        return segment

    def flag_keys(self) -> list[str]:
        return list(self.snapshot.flag_set.flags)

    # ------------------------------------------------------------ evaluation

    # The evaluation path reads the current snapshot, not the flag caches: the snapshot is an
    # immutable in-memory mapping swapped in one assignment, so the read is atomic and never stale,
    # while a TTLCache lookup under the lock costs on every call and saves nothing (BENCHMARKS.md).
    # get_flag / get_segment keep flaggio's cached lookups; evaluation results are cached (keyed by
    # flag version and segments revision) only when eval_cache_size > 0.

    def evaluate(self, flag_key: str, context: Mapping[str, Any], debug: bool = False) -> Evaluation:
        """Evaluate one flag; an unknown key gives a FLAG_NOT_FOUND evaluation."""
        snapshot = self.snapshot
        flag = snapshot.flag_set.flags.get(flag_key)
        if flag is None:
            return flag_not_found(flag_key)
        if self._evaluations is None and not debug:
            return evaluate(flag, context)
        return self._evaluate((flag, snapshot.segments_revision), context, debug, None)

    def evaluate_all(
        self, context: Mapping[str, Any], flag_keys: Iterable[str] | None = None, debug: bool = False
    ) -> list[Evaluation]:
        """Evaluate every flag, or the requested ones, sorted by key; unknown keys are FLAG_NOT_FOUND."""
        if self._evaluations is None and not debug:
            return evaluate_plan(self.plan(flag_keys), context)
        snapshot = self.snapshot
        flags, segments_revision = snapshot.flag_set.flags, snapshot.segments_revision
        context_hash = None if debug else request_hash(context)
        results = []
        for key in sorted(set(flag_keys)) if flag_keys else flags:
            flag = flags.get(key)
            if flag is None:
                results.append(flag_not_found(key))
            else:
                results.append(self._evaluate((flag, segments_revision), context, debug, context_hash))
        return results

    def plan(self, flag_keys: Iterable[str] | None = None) -> Sequence[PlanStep]:
        """evaluate_plan's steps for every flag, or for the requested ones sorted by key (an unknown
        key is a step with a fixed FLAG_NOT_FOUND answer). They bypass the evaluation cache."""
        snapshot = self.snapshot
        if not flag_keys:
            return snapshot.plan
        steps = snapshot.steps
        return [steps.get(key) or (None, flag_not_found(key)) for key in sorted(set(flag_keys))]

    def _evaluate(
        self, entry: tuple[Flag, int], context: Mapping[str, Any], debug: bool, context_hash: str | None
    ) -> Evaluation:
        flag, segments_revision = entry
        if debug or self._evaluations is None or not flag.enabled or not flag.rules:
            # These answers do not depend on the context: caching them would only cost a hash.
            return evaluate(flag, context, debug)
        key = eval_cache_key(flag.key, flag.version, segments_revision, context_hash or request_hash(context))
        with self._lock:
            cached = self._evaluations.get(key)
            generation = self.snapshot.generation
        if cached is not None:
            self.stats["cache_hits"] += 1
            return cached
        self.stats["cache_misses"] += 1
        result = evaluate(flag, context)
        with self._lock:
            if self.snapshot.generation == generation:
                self._evaluations[key] = result
        return result


def _fingerprints(segments: Mapping[str, Segment]) -> dict[str, str]:
    return {key: segment.fingerprint for key, segment in segments.items()}

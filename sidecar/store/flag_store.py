"""FlagStore: the applied flag set, its versions, the change feed, and the one way into evaluation.

A source (sidecar.sources) hands over documents; the store parses, validates and compiles them
(loading.py), decides the flags' versions (versions.py) and swaps the compiled set in atomically
on a valid reload. A rejected reload is logged with every problem and changes nothing.

`health` (source_health.py) follows the source: up or down, and how old the served set is. For a
remote source the store keeps a last-known-good copy of every applied document in the state
directory (last_known_good.py) and serves it at start when the source cannot give a set.

Every request reads exactly one snapshot of the applied set: `answer` is the Evaluate hot path
(one call), and a request that reads more than once (a flag and its evaluation, a key check and
EvaluateAll) takes a `view()`, which answers everything from the snapshot current when it was
taken. The snapshot itself is private.

The optional evaluation cache (eval_cache_size > 0) is keyed by eval_cache_key, with the flag
version and the segments revision in the key. flaggio's flag and segment TTL caches
(flag_cache_key / segment_cache_key) stand in front of a source that hands over entries (a
database: source_cache.py), where a lookup is I/O: the snapshot is compiled from them, they are
invalidated by a push and revalidated past --cache-ttl on a thread of their own, and evaluation
never reads them (over the compiled snapshot a cache lookup would cost more than the dict lookup
it stood in for).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from ..engine.evaluator import PlanStep
from ..sources.document import Document, Source
from ..sources.entries import EntrySource
from .cache_keys import eval_cache_key, request_hash
from .entry_loading import LoadedEntries, load_entries
from .last_known_good import LastKnownGood
from .loading import compile_document
from .source_cache import Revalidator, SourceCache
from .source_health import SourceHealth, SourceStatus, when
from .versions import VersionTable

log = logging.getLogger(__name__)


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
class _Snapshot:
    """The applied flag set and what is derived from it, replaced as a whole on every reload."""

    flag_set: FlagSet
    segments_revision: int
    generation: int
    revision: str = ""  # the source's revision of the document it was compiled from
    plan: tuple[PlanStep, ...] = ()  # evaluate_all's steps, one per flag in key order
    steps: Mapping[str, PlanStep] = field(default_factory=dict)  # the same steps by flag key


_EMPTY = _Snapshot(FlagSet(flags={}, segments={}), 0, 0)


class FlagStore:
    def __init__(
        self,
        source: Source,
        cache_ttl: float = 30.0,
        eval_cache_size: int = 0,
        state_dir: Path | None = None,
        remote: bool = False,
    ) -> None:
        """`eval_cache_size` > 0 caches evaluation results (for up to `cache_ttl` seconds). Off by
        default: hashing the context for the cache key costs more than evaluating a compiled flag
        (BENCHMARKS.md), so the cache pays off only for flags whose rules are much more expensive
        than these. `state_dir` keeps the flag versions across restarts (versions.py) and, for a
        `remote` source (not a local file), the last-known-good document (last_known_good.py).
        A source of entries (a database) is held in a SourceCache revalidated past `cache_ttl`."""
        self.source = source
        self.remote = remote
        self.health = SourceHealth()
        self._last_known_good = LastKnownGood(state_dir if remote else None)
        self._lock = threading.Lock()  # guards the evaluation cache; never held during I/O or evaluation
        self._evaluations: TTLCache[str, Evaluation] | None = (
            TTLCache(eval_cache_size, cache_ttl) if eval_cache_size > 0 else None
        )
        # Immutable, replaced in one assignment: a reader gets the old set or the new one, never a
        # mix. Read once per request (answer, view), never by the services themselves.
        self._snapshot = _EMPTY
        self._versions = VersionTable(state_dir)
        self._listeners: list[Callable[[FlagSetChange], None]] = []
        # Held by whatever reads the source or the cache and swaps the set in (never by evaluation).
        self._reload_lock = threading.Lock()
        # The source as an EntrySource, decided once: isinstance on a runtime-checkable protocol
        # walks its members each time, and a push's refresh asked it twice.
        self._entry_source: EntrySource | None = source if isinstance(source, EntrySource) else None
        self.cache = SourceCache(cache_ttl) if self._entry_source is not None else None
        # The served set of a source of entries, with the texts it was read from: the next load
        # reads and compiles only what changed (entry_loading.py). Written under _reload_lock.
        self._loaded_entries: LoadedEntries | None = None
        self._revalidator = Revalidator(self.cache, self._revalidate) if self.cache is not None else None
        self.loaded = threading.Event()
        self.stats = {
            "reloads": 0,
            "rejected_reloads": 0,
            "source_lost": 0,
            "cache_hits": 0,
            "cache_misses": 0,
            # The source cache's revalidations, by what they found (source_cache.py).
            "revalidations_unchanged": 0,
            "revalidations_changed": 0,
            "revalidations_failed": 0,
        }

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Take the state directory (StateDirError), load the first flag set (FlagSetError,
        OSError; a remote source's last-known-good copy when there is one) and follow the
        source's changes."""
        self._versions.open()
        try:
            self._reload(initial=True)
        except (FlagSetError, OSError) as error:
            if not self._start_from_last_known_good(error):
                raise
        self.source.watch(_SourceEvents(self))
        if self._revalidator is not None:
            self._revalidator.start()

    def _start_from_last_known_good(self, error: FlagSetError | OSError) -> bool:
        """Serve the saved copy of a remote source's last applied document, if there is one that
        still compiles; False otherwise (the start fails with `error`)."""
        saved = self._last_known_good.load(self.source.origin)
        if saved is None:
            return False
        document = saved.document
        try:
            flag_set = compile_document(document, self._versions.version_of(document.versions))
        except FlagSetError as problems:
            log.error(
                "the last known good copy of %s no longer loads: %s",
                self.source.origin,
                "; ".join(str(p) for p in problems.problems),
                extra={"event": "last_known_good_rejected"},
            )
            return False
        self._versions.applied(flag_set)
        self._apply(flag_set, document.revision)
        if isinstance(error, FlagSetError):
            why = "; ".join(str(p) for p in error.problems)
            self.health.from_last_known_good(saved.saved_at, down=None)
            self.health.rejected()
            self.stats["rejected_reloads"] += 1
        else:
            why = str(error)
            self.health.from_last_known_good(
                saved.saved_at, down=f"flag source {self.source.origin} cannot be had: {why}"
            )
        self.stats["reloads"] += 1
        log.warning(
            "cannot load the flags from %s (%s): serving the last known good copy (%d flags, "
            "revision %s, saved %s) until the source gives a set",
            self.source.origin,
            why,
            len(flag_set.flags),
            document.revision,
            when(saved.saved_at),
            extra={"event": "flags_from_last_known_good"},
        )
        self.loaded.set()
        return True

    def close(self) -> None:
        if self._revalidator is not None:
            self._revalidator.close()
        self.source.close()
        self._versions.close()

    @property
    def ready(self) -> bool:
        return self.loaded.is_set()

    @property
    def flag_set(self) -> FlagSet:
        """The applied set (for what follows changes, such as the flagd EventStream, and metrics;
        evaluation goes through `answer` and `view`)."""
        return self._snapshot.flag_set

    @property
    def revision(self) -> str:
        """The source's revision of the applied document ("" before the first load)."""
        return self._snapshot.revision

    @property
    def source_status(self) -> SourceStatus:
        """How the source is doing and how old the served set is (source_health.py)."""
        return self.health.status

    def subscribe(self, listener: Callable[[FlagSetChange], None]) -> Callable[[], None]:
        """Call `listener` after every reload that really changed the set. Returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def reload(self, fetch: Callable[[], Document] | None = None) -> bool:
        """Fetch the document again (or take `fetch()`'s); keep the last good set if the new one is
        broken. True if applied."""
        try:
            self._reload(initial=False, fetch=fetch)
            return True
        except (FlagSetError, OSError) as error:
            problems = error.problems if isinstance(error, FlagSetError) else [error]
            log.error(
                "rejected flag set from %s, still serving the last good one (%d flags): %s",
                self.source.origin,
                len(self._snapshot.flag_set.flags),
                "; ".join(str(p) for p in problems),
                extra={"event": "flags_rejected", "problems": [str(p) for p in problems]},
            )
            # Counted once logged: whoever sees the count (a metric, a test) finds the log line.
            self.stats["rejected_reloads"] += 1
            if isinstance(error, FlagSetError):
                self.health.rejected()
            return False

    def _reload(self, initial: bool, fetch: Callable[[], Document] | None = None) -> None:
        with self._reload_lock:
            document = self._fetch() if fetch is None else fetch()
            version_of = self._versions.version_of(document.versions)
            loaded = None
            if self.cache is None:
                flag_set = compile_document(document, version_of)
            else:
                # The document is the cache's (_fetch, _revalidate), as its entries are now: the
                # cache changes only under this lock.
                loaded = load_entries(self.cache.entries, document, version_of, self._loaded_entries)
                flag_set = loaded.flag_set
            for warning in flag_set.warnings:
                log.warning("%s", warning)
            # Saved before they are served: a number handed out is one a restart knows.
            self._versions.applied(flag_set)
            change = self._apply(flag_set, document.revision)
            if loaded is not None:
                self._loaded_entries = loaded
            self.health.applied()
            self._keep(document)
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

    def _fetch(self) -> Document:
        """The source's whole document; a source of entries is read whole into the cache first."""
        if self.cache is None or self._entry_source is None:
            return self.source.fetch()
        self.cache.apply(self._entry_source.entries())
        return self.cache.document(self.source.origin)

    def refresh(self) -> None:
        """A push invalidates the cache: ask the source for what changed now, on the caller's
        thread (the source's watcher: no hand-over to another thread on the way to serving). A
        failure leaves it to the revalidator, at once and then backing off."""
        try:
            self._revalidate()
        except OSError:
            if self._revalidator is not None:
                self._revalidator.invalidate()

    def _revalidate(self) -> None:
        """The revalidator's refresh: ask the source what changed after the cached revision (one
        small query when nothing did) and rebuild the set when something did. OSError: the source
        cannot be had (its own watcher reports that; the last good set keeps serving)."""
        cache, source = self.cache, self._entry_source
        assert cache is not None
        assert source is not None
        with self._reload_lock:
            try:
                changes = source.entries() if cache.revision is None else source.changes_since(cache.revision)
            except OSError as error:
                self.stats["revalidations_failed"] += 1
                log.debug("cannot revalidate the flag cache of %s: %s", source.origin, error)
                raise
            if not cache.apply(changes):
                self.stats["revalidations_unchanged"] += 1
                if cache.revision == self._snapshot.revision:
                    self.health.confirmed()
                return
            self.stats["revalidations_changed"] += 1
        # Outside the lock, as any reload (its listeners run after the swap); the document is
        # built from the cache as it is then, which a reload in between may only have moved on.
        self.reload(lambda: cache.document(source.origin))

    def _keep(self, document: Document) -> None:
        """A remote source's applied document becomes the last-known-good copy (with --state-dir)."""
        if self.remote:
            self._last_known_good.save(document)

    def _apply(self, flag_set: FlagSet, revision: str) -> FlagSetChange:
        old = self._snapshot
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
        revision_of_segments = (
            old.segments_revision + 1 if segments_changed or old is _EMPTY else old.segments_revision
        )
        plan = evaluation_plan(flag_set.flags.values())
        steps = dict(zip(flag_set.flags, plan, strict=True))
        snapshot = _Snapshot(flag_set, revision_of_segments, old.generation + 1, revision, plan, steps)
        with self._lock:
            self._snapshot = snapshot
            if self._evaluations is not None:
                self._evaluations.clear()
        return FlagSetChange(added, updated, removed, segments_changed, flag_set)

    # ------------------------------------------------------------ evaluation: the one way in

    def answer(self, flag_key: str, context: Mapping[str, Any]) -> Evaluation | None:
        """The Evaluate hot path: what a known flag answers `context` (no debug trace), None for an
        unknown key (whose answer is the general path's business: a status, a limit). With the
        evaluation cache off this is one lookup and the flag's own evaluation, nothing else."""
        snapshot = self._snapshot
        step = snapshot.steps.get(flag_key)
        if step is None:
            return None
        compute, fixed = step
        if compute is None:
            return fixed
        if self._evaluations is None:
            return compute(context)
        return self._evaluation(snapshot, snapshot.flag_set.flags[flag_key], context, None)

    def view(self) -> FlagView:
        """The current snapshot, for a request that reads the store more than once."""
        return FlagView(self, self._snapshot)

    def evaluate(self, flag_key: str, context: Mapping[str, Any], debug: bool = False) -> Evaluation:
        """`view().evaluate(...)`: one flag; an unknown key gives a FLAG_NOT_FOUND evaluation."""
        return FlagView(self, self._snapshot).evaluate(flag_key, context, debug)

    def evaluate_all(
        self, context: Mapping[str, Any], flag_keys: Iterable[str] | None = None, debug: bool = False
    ) -> list[Evaluation]:
        """`view().evaluate_all(...)`."""
        return FlagView(self, self._snapshot).evaluate_all(context, flag_keys, debug)

    def flag_keys(self) -> list[str]:
        return list(self._snapshot.flag_set.flags)

    def _evaluation(
        self, snapshot: _Snapshot, flag: Flag, context: Mapping[str, Any], context_hash: str | None
    ) -> Evaluation:
        """`evaluate(flag, context)`, through the evaluation cache when there is one."""
        cache = self._evaluations
        if cache is None or not flag.enabled or not flag.rules:
            # Answers that do not depend on the context: caching them would only cost a hash.
            return evaluate(flag, context)
        key = eval_cache_key(
            flag.key, flag.version, snapshot.segments_revision, context_hash or request_hash(context)
        )
        with self._lock:
            cached = cache.get(key)
        if cached is not None:
            self.stats["cache_hits"] += 1
            return cached
        self.stats["cache_misses"] += 1
        result = evaluate(flag, context)
        with self._lock:
            # Only for the applied set: a reload since the snapshot was read cleared the cache, and
            # an answer of the old set must not come back into it (a `version: N` flag may change
            # without its version changing).
            if self._snapshot.generation == snapshot.generation:
                cache[key] = result
        return result


class FlagView:
    """One snapshot's answers: what a request that reads the store more than once holds, so that
    everything it reads (a flag's type and metadata with its evaluation, a key check with the
    evaluations) comes from the same applied set."""

    __slots__ = ("_snapshot", "_store")

    def __init__(self, store: FlagStore, snapshot: _Snapshot) -> None:
        self._store = store
        self._snapshot = snapshot

    def flag(self, key: str) -> Flag | None:
        return self._snapshot.flag_set.flags.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._snapshot.steps

    def evaluate(self, flag_key: str, context: Mapping[str, Any], debug: bool = False) -> Evaluation:
        """Evaluate one flag; an unknown key gives a FLAG_NOT_FOUND evaluation."""
        flag = self._snapshot.flag_set.flags.get(flag_key)
        if flag is None:
            return flag_not_found(flag_key)
        if debug:
            return evaluate(flag, context, debug=True)
        return self._store._evaluation(self._snapshot, flag, context, None)

    def evaluate_all(
        self, context: Mapping[str, Any], flag_keys: Iterable[str] | None = None, debug: bool = False
    ) -> list[Evaluation]:
        """Evaluate every flag, or the requested ones, sorted by key; unknown keys are FLAG_NOT_FOUND."""
        snapshot = self._snapshot
        if self._store._evaluations is None and not debug:
            return evaluate_plan(self._plan(flag_keys), context)
        flags = snapshot.flag_set.flags
        context_hash = None if debug else request_hash(context)
        results = []
        for key in sorted(set(flag_keys)) if flag_keys else flags:
            flag = flags.get(key)
            if flag is None:
                results.append(flag_not_found(key))
            elif debug:
                results.append(evaluate(flag, context, debug=True))
            else:
                results.append(self._store._evaluation(snapshot, flag, context, context_hash))
        return results

    def _plan(self, flag_keys: Iterable[str] | None) -> Sequence[PlanStep]:
        """evaluate_plan's steps for every flag, or for the requested ones sorted by key (an unknown
        key is a step with a fixed FLAG_NOT_FOUND answer)."""
        snapshot = self._snapshot
        if not flag_keys:
            return snapshot.plan
        steps = snapshot.steps
        return [steps.get(key) or (None, flag_not_found(key)) for key in sorted(set(flag_keys))]


class _SourceEvents:
    """What the source tells the store: a change to fetch, or the document lost and regained."""

    def __init__(self, store: FlagStore) -> None:
        self._store = store

    def changed(self) -> None:
        if self._store.cache is not None:
            self._store.refresh()
        else:
            self._store.reload()

    def lost(self, event: str, message: str) -> None:
        self._store.stats["source_lost"] += 1
        self._store.health.lost(message)
        log.warning(
            "%s, still serving the last good set of %d flags",
            message,
            len(self._store.flag_set.flags),
            extra={"event": event},
        )

    def regained(self, event: str, message: str) -> None:
        self._store.health.regained()
        log.info("%s", message, extra={"event": event})

    def confirmed(self, revision: str) -> None:
        if revision == self._store.revision:
            self._store.health.confirmed()


def _fingerprints(segments: Mapping[str, Segment]) -> dict[str, str]:
    return {key: segment.fingerprint for key, segment in segments.items()}

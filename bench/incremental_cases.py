"""A follower's CPU per admin write, with the set rebuilt from the served one (only the changed
entry read and compiled: sidecar/store/entry_loading.py, sidecar/engine/reuse.py) against the full
rebuild that every write cost before.

    python -m bench.incremental_cases [--flags 100] [--writes 60]

- rebuild: the 100-flag bench set (section 1-2's) held as source-cache entries; each write changes
  one flag's description; the set is built once incrementally and once in full from the same
  entries, in turns, CPU time each (time.process_time).
- follower: a FlagStore following an SQLite file of that set, as `serve --source sqlite://` does
  but with no watcher of its own: each write (another connection, as the admin API's) is followed
  by the store's refresh on this thread, which is what the watcher runs on a push (the changes
  query, the rebuild, the swap, the log line); its thread CPU time, incremental and full in turns
  (full: the store's served entries forgotten before the refresh).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from sidecar.sources import DatabaseSource, open_database
from sidecar.sources.database.database import FlagDatabase
from sidecar.sources.entries import Entry, EntryChanges
from sidecar.store import FlagStore
from sidecar.store.entry_loading import load_entries
from sidecar.store.loading import compile_document
from sidecar.store.source_cache import SourceCache

from . import flagsets

ORIGIN = "sqlite://bench"


@dataclass
class IncrementalResults:
    flags: int = 0
    writes: int = 0
    # CPU ms per write, one value per write
    rebuild_full_ms: list[float] = field(default_factory=list)
    rebuild_incremental_ms: list[float] = field(default_factory=list)
    follower_full_ms: list[float] = field(default_factory=list)
    follower_incremental_ms: list[float] = field(default_factory=list)


def _cpu_ms(work: Callable[[], Any], clock: Callable[[], float] = time.process_time) -> float:
    start = clock()
    work()
    return (clock() - start) * 1000


def rebuild(results: IncrementalResults, document: dict[str, Any]) -> None:
    cache = SourceCache(ttl=30.0)
    entries = [Entry("flag", b["key"], 1, orjson.dumps(b).decode()) for b in document["flags"]]
    entries += [Entry("segment", b["key"], 1, orjson.dumps(b).decode()) for b in document["segments"]]
    cache.apply(EntryChanges("0", tuple(entries), whole=True))
    served = load_entries(cache.entries, cache.document(ORIGIN), None, None)
    flags = document["flags"]
    for write in range(results.writes):
        body = {**flags[write % len(flags)], "description": f"write {write}"}
        cache.apply(
            EntryChanges(
                str(write + 1), (Entry("flag", body["key"], write + 2, orjson.dumps(body).decode()),)
            )
        )
        held = cache.document(ORIGIN)
        began = time.process_time()
        compile_document(held)
        middle = time.process_time()
        served = load_entries(cache.entries, held, None, served)
        results.rebuild_full_ms.append((middle - began) * 1000)
        results.rebuild_incremental_ms.append((time.process_time() - middle) * 1000)


class _Unwatched(DatabaseSource):
    """The database source without its watcher: the bench runs the push's refresh itself."""

    def watch(self, listener: Any) -> None:
        pass


def _write(database: FlagDatabase, body: dict[str, Any]) -> None:
    with database.write("default", "bench") as writer:
        current = writer.content.flag(body["key"])
        writer.put(
            "flag",
            body["key"],
            body,
            writer.last_version("flag", body["key"]) + 1,
            "update",
            current.definition if current else None,
        )


def follower(results: IncrementalResults, document: dict[str, Any], directory: Path) -> None:
    uri = f"sqlite://{directory}/flags.db"
    writer_database = open_database(uri)
    writer_database.migrate()
    with writer_database.write("default", "bench") as writer:
        for kind, bodies in (("segment", document["segments"]), ("flag", document["flags"])):
            for body in bodies:
                writer.put(kind, body["key"], body, 1, "create", None)  # type: ignore[arg-type]
    store = FlagStore(_Unwatched(open_database(uri), "default"), remote=True)
    store.start()
    try:
        flags = document["flags"]
        for write in range(results.writes):
            full = write % 2 == 0
            _write(writer_database, {**flags[write % len(flags)], "description": f"write {write}"})
            if full:
                store._loaded_entries = None  # the bench's switch: the next load goes the full way
            before = store.revision
            cpu = _cpu_ms(store.refresh, time.thread_time)
            assert store.revision != before
            (results.follower_full_ms if full else results.follower_incremental_ms).append(cpu)
    finally:
        store.close()
        writer_database.close()


def run(flags: int, writes: int) -> IncrementalResults:
    results = IncrementalResults(flags=flags, writes=writes)
    document = flagsets.flag_document(flags)
    rebuild(results, document)
    with tempfile.TemporaryDirectory() as tmp:
        follower(results, document, Path(tmp))
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flags", type=int, default=100)
    parser.add_argument("--writes", type=int, default=60)
    args = parser.parse_args()
    results = run(args.flags, args.writes)
    for line in report(results):
        print(line)


def report(results: IncrementalResults) -> list[str]:
    """Medians (and p90) of each measure, and the full / incremental ratios."""
    lines = []
    for name in ("rebuild_full_ms", "rebuild_incremental_ms", "follower_full_ms", "follower_incremental_ms"):
        values = sorted(getattr(results, name))
        median, p90 = statistics.median(values), values[int(len(values) * 0.9)]
        lines.append(f"{name}: median {median:.2f} ms (p90 {p90:.2f}, n {len(values)})")
    rebuild = statistics.median(results.rebuild_full_ms) / statistics.median(results.rebuild_incremental_ms)
    follow = statistics.median(results.follower_full_ms) / statistics.median(results.follower_incremental_ms)
    lines.append(f"full / incremental: rebuild {rebuild:.1f}x, follower {follow:.1f}x")
    return lines


if __name__ == "__main__":
    main()

"""The sqlite:// source's watcher and the admin write path, measured (bench/notes.md, "SQLite source").

    python -m bench.sqlite_source --writes 200

1. one poll: `PRAGMA data_version` on the watcher's connection (what an idle follower pays per
   interval), and the set-revision query it adds when the counter moved;
2. the watcher's idle CPU: the process CPU time of a DatabaseSource watching for N seconds;
3. commit -> changed(): a writer in another process commits (a FlagAdmin write), the follower's
   listener records when it was told, for each poll interval;
4. admin writes per second: single-flag updates through FlagAdmin (validation included), on a set
   of 1 and of 1,000 flags.
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.synchronize
import statistics
import tempfile
import threading
import time
import timeit
from pathlib import Path

from sidecar.sources import open_database
from sidecar.sources.database import DatabaseSource
from sidecar.store import admin_edits
from sidecar.store.admin import FlagAdmin


def _flag(key: str) -> dict:
    return {
        "key": key,
        "enabled": True,
        "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
        "defaultVariantWhenOn": "off",
    }


def _writer(
    uri: str, count: int, stamps: multiprocessing.Queue, go: multiprocessing.synchronize.Event
) -> None:
    admin = FlagAdmin(open_database(uri))
    admin.start()
    go.wait()
    version = admin.get_flag("default", "f").version
    for index in range(count):
        edit = admin_edits.set_fields({"description": f"write {index}"}, admin_edits.FLAG_FIELDS)
        admin.edit_flag("default", "f", version, edit, "bench")
        stamps.put(time.time())  # wall clock: comparable across processes on one machine
        version += 1
        time.sleep(0.02)


class _Listener:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.event = threading.Event()

    def changed(self) -> None:
        self.times.append(time.time())
        self.event.set()

    def lost(self, event: str, message: str) -> None:
        print("lost", message)

    def regained(self, event: str, message: str) -> None:
        pass

    def confirmed(self, revision: str) -> None:
        pass


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-sqlite-"))
    uri = f"sqlite://{directory}/flags.db"
    admin = FlagAdmin(open_database(uri))
    admin.start()
    admin.create_flag("default", _flag("f"), "bench")

    database = open_database(uri)
    database.migrate()
    number = 20000
    poll = min(timeit.repeat(database.change_counter, number=number, repeat=5)) / number
    revision = min(timeit.repeat(lambda: database.set_revision("default"), number=number, repeat=5)) / number
    print(f"one PRAGMA data_version: {poll * 1e6:.2f} us; set revision query: {revision * 1e6:.2f} us")

    for interval in (0.01, 0.025, 0.05):
        source = DatabaseSource(open_database(uri), "default", poll_interval=interval)
        source.fetch()
        listener = _Listener()
        started_cpu, started = time.process_time(), time.monotonic()
        source.watch(listener)
        time.sleep(args.idle_seconds)
        cpu = time.process_time() - started_cpu
        wall = time.monotonic() - started
        print(f"interval {interval * 1000:.0f} ms: idle watcher CPU {cpu / wall * 100:.3f}% of a core")

        stamps: multiprocessing.Queue = multiprocessing.Queue()
        go = multiprocessing.Event()
        writer = multiprocessing.Process(target=_writer, args=(uri, args.writes, stamps, go))
        writer.start()
        go.set()
        writer.join()
        committed = [stamps.get() for _ in range(args.writes)]
        time.sleep(interval * 3)
        source.close()
        # Each commit is matched with the first change notice after it.
        delays = []
        notices = sorted(listener.times)
        for stamp in committed:
            later = [notice for notice in notices if notice >= stamp]
            if later:
                delays.append(later[0] - stamp)
        print(
            f"interval {interval * 1000:.0f} ms: commit -> changed() over {len(delays)} writes: "
            f"p50 {statistics.median(delays) * 1000:.1f} ms, p99 {percentile(delays, 0.99) * 1000:.1f} ms, "
            f"max {max(delays) * 1000:.1f} ms"
        )

    for size in (1, 1000):
        bulk = FlagAdmin(open_database(f"sqlite://{directory}/writes-{size}.db"))
        bulk.start()
        for index in range(size):
            bulk.create_flag("default", _flag(f"flag-{index:05d}"), "bench")
        version = 1
        count = 200 if size == 1 else 40
        began = time.perf_counter()
        for index in range(count):
            edit = admin_edits.set_fields({"description": f"w{index}"}, admin_edits.FLAG_FIELDS)
            version = bulk.edit_flag("default", "flag-00000", version, edit, "bench").version
        seconds = time.perf_counter() - began
        print(f"admin writes, set of {size} flags: {count / seconds:.0f} single-flag updates/s")


if __name__ == "__main__":
    main()

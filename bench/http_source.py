"""What the HTTP(S) source costs the sidecar (bench/notes.md, "The HTTP(S) source").

- CPU of the polling thread per poll (time.thread_time, so the local server's own threads are not
  counted): a 304, a 200 with the same bytes (a server without validators), and a change that the
  store parses, compiles and applies, for a generated flag set;
- idle RSS of a `serve` process on the same flags from a file and from http://.

    python -m bench.http_source --flags 100 --polls 500 --repeats 5
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from bench.flagsets import flag_document
from sidecar.sources.http import HttpSource
from sidecar.store import FlagStore
from tests.sources.flag_server import FlagServer


def per_poll(server: FlagServer, polls: int, change: bool) -> float:
    """Microseconds of this thread's CPU per poll (and, with `change`, per applied reload)."""
    source = HttpSource(urlsplit(server.url), poll_interval=3600, timeout=5)
    store = FlagStore(source)
    store.start()
    documents = [server._body, server._body + b"\n# changed\n"]
    try:
        started = time.thread_time()
        for index in range(polls):
            if change:
                server.serve(documents[(index + 1) % 2])
            if source.poll():
                store.reload()
        spent = time.thread_time() - started
    finally:
        store.close()
    if change:
        assert store.stats["reloads"] == polls + 1, store.stats
    return spent / polls * 1e6


def idle_rss(*args: str) -> float:
    from tests.serve_process import ServeProcess

    process = ServeProcess(None, *args)
    try:
        process.address()
        time.sleep(3)
        status = Path(f"/proc/{process.process.pid}/status").read_text()
        rss = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert rss is not None, status
        return int(rss.group(1)) / 1024
    finally:
        process.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flags", type=int, default=100)
    parser.add_argument("--polls", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    document = flag_document(args.flags)
    rows: dict[str, list[float]] = {"304": [], "200, same bytes": [], "change, applied": []}
    rss: dict[str, list[float]] = {"file": [], "http": []}
    with tempfile.TemporaryDirectory() as directory:
        flag_file = Path(directory) / "flags.yaml"
        flag_file.write_text(yaml.safe_dump(document))
        server = FlagServer(document).start()
        try:
            for _ in range(args.repeats):
                server.etags = server.last_modified = True
                rows["304"].append(per_poll(server, args.polls, change=False))
                server.etags = server.last_modified = False
                rows["200, same bytes"].append(per_poll(server, args.polls, change=False))
                rows["change, applied"].append(per_poll(server, max(1, args.polls // 10), change=True))
                server.etags = server.last_modified = True
            for _ in range(min(3, args.repeats)):
                rss["file"].append(idle_rss("--source", f"file://{flag_file}"))
                rss["http"].append(idle_rss("--source", server.url))
        finally:
            server.stop()
    print(f"{args.flags} flags ({len(server._body)} bytes of YAML), medians of {args.repeats}")
    print("| poll | CPU of the polling thread per poll |")
    print("|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {statistics.median(values):.0f} us |")
    print("| source | idle RSS |")
    print("|---|---|")
    for name, values in rss.items():
        print(f"| {name} | {statistics.median(values):.1f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

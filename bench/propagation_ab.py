"""bench/admin_propagation.py on PostgreSQL with the 100-flag bench set, this checkout against
another (main), in alternating rounds (A B A B ...), each round on a fresh database.

    python -m bench.propagation_ab --base /tmp/base-main [--rounds 3] [--sidecars 20] [--writes 30]

PostgreSQL is a server of the run's own (tests/postgres_server.py). Prints each run's line, then
the medians over rounds of p50 and p99 (all sidecars) and of the slowest sidecar's p99.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from pathlib import Path

from . import flagsets
from .database_cases import FLAGS, _import, _postgresql, propagation
from .rpc import REPO

SLOWEST = re.compile(r"slowest sidecar per write p50 ([\d.]+) ms, p99 ([\d.]+) ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", type=Path, required=True, help="the other checkout (A)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sidecars", type=int, default=20)
    parser.add_argument("--writes", type=int, default=30)
    args = parser.parse_args()
    runs: dict[str, list[tuple[float, float, float]]] = {"base": [], "this": []}
    with tempfile.TemporaryDirectory() as tmp, _postgresql() as server_uri:
        if server_uri is None:
            sys.exit("no pg_ctl: PostgreSQL is needed")
        flags_file = flagsets.write_flag_file(Path(tmp), FLAGS)
        for _ in range(args.rounds):
            for name, repo in (("base", args.base), ("this", REPO)):
                uri = _fresh(server_uri)
                _import(flags_file, uri)
                line, p50, p99 = propagation(uri, args.sidecars, args.writes, repo)
                found = SLOWEST.search(line)
                runs[name].append((p50, p99, float(found.group(2)) if found else float("nan")))
                print(f"{name}: {line}", flush=True)
    for name, results in runs.items():
        p50, p99, slowest = (statistics.median(r[i] for r in results) for i in range(3))
        print(
            f"{name}: median over {len(results)} rounds: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
            f"slowest p99 {slowest:.1f} ms"
        )
    base = [statistics.median(r[i] for r in runs["base"]) for i in range(2)]
    this = [statistics.median(r[i] for r in runs["this"]) for i in range(2)]
    print(f"this / base: p50 {this[0] / base[0]:.2f}x, p99 {this[1] / base[1]:.2f}x")


def _fresh(server_uri: str) -> str:
    """Another empty database on the run's server (its first one is `server_uri`)."""
    import time

    import psycopg

    name = f"flags_{time.monotonic_ns()}"
    with psycopg.connect(server_uri, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return server_uri.rsplit("/", 1)[0] + f"/{name}"


if __name__ == "__main__":
    main()

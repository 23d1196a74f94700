"""Where a call's server CPU goes: grpcio's part and ours, and inside ours, function by function.

    .venv/bin/python -m bench.profile [--flags N]

For one case (method + request) on a fresh `sidecar` bench server:

1. `BENCH_INSTRUMENT=cpu`: the thread CPU of our code on the call path (the handler, which
   parses its own request now, and a request deserializer or response serializer where a
   revision has them) is added up, and the server's total CPU is read as in the RPC
   benchmarks: ours vs everything else (grpcio's C core, its Python glue, thread hand-offs).
2. `BENCH_INSTRUMENT=profile`: the same code under cProfile with a thread-CPU clock (a profiler
   inflates what it measures, so only the shares are reported, not its microseconds).

`root` runs the servers from another tree (an older revision's sidecar/ with this bench/), which
is how BENCHMARKS.md shows the profile before the optimisations next to the current one.
"""

from __future__ import annotations

import argparse
import json
import pstats
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import flagsets
from .rpc import REPO, LoadGenerator, server_process


@dataclass
class ProfileRow:
    function: str
    share: float  # of the profiled time (our code on the call path)
    calls_per_rpc: float


@dataclass
class CaseProfile:
    case: str
    server_cpu_us: float  # per call, whole process
    ours_cpu_us: float  # per call, our code only (thread CPU)
    rows: list[ProfileRow] = field(default_factory=list)

    @property
    def grpc_cpu_us(self) -> float:
        return self.server_cpu_us - self.ours_cpu_us


def _label(filename: str, line: int, name: str) -> str:
    if filename == "~":
        return name  # a built-in: "{method 'get' of 'dict' objects}"
    path = filename
    for marker in ("/site-packages/", "/lib/python3.11/"):
        if marker in filename:
            path = filename.split(marker, 1)[1]
            break
    else:
        for top in ("sidecar/", "bench/", "flagsidecar/", "flagd/"):
            if f"/{top}" in filename:
                path = top + filename.split(f"/{top}", 1)[1]
                break
    return f"{path}:{line}({name})"


def top_functions(stats_file: Path, rpcs: int, limit: int) -> list[ProfileRow]:
    stats = pstats.Stats(str(stats_file))
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in entries.values()) or 1.0
    rows = [
        ProfileRow(_label(*function), tottime / total, calls / rpcs)
        for function, (_primitive, calls, tottime, _cumulative, _callers) in entries.items()
    ]
    rows.sort(key=lambda row: row.share, reverse=True)
    return rows[:limit]


def profile_case(
    case: str,
    flags_file: Path,
    method: str,
    request: bytes,
    calls: int = 3000,
    concurrency: int = 4,
    root: Path = REPO,
    limit: int = 12,
) -> CaseProfile:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cpu.json"
        env = {"BENCH_INSTRUMENT": "cpu", "BENCH_INSTRUMENT_OUT": str(out)}
        warmup = max(calls // 10, 100)
        with server_process("sidecar", flags_file, env, root) as server, LoadGenerator(server) as load:
            measured = load.measure(method, request, calls, concurrency, warmup)
        timing = json.loads(out.read_text())
        ours = timing["cpu_ns"] / timing["calls"] / 1000
        stats_file = Path(tmp) / "profile.pstats"
        env = {"BENCH_INSTRUMENT": "profile", "BENCH_INSTRUMENT_OUT": str(stats_file)}
        with server_process("sidecar", flags_file, env, root) as server, LoadGenerator(server) as load:
            load.measure(method, request, calls, concurrency, warmup)
        rows = top_functions(stats_file, calls + warmup, limit)
    return CaseProfile(case, measured.cpu_us, ours, rows)


def cases(flags_100: Path) -> list[tuple[str, Path, str, bytes]]:
    return [
        ("Evaluate, static flag", flags_100, flagsets.EVALUATE_METHOD, flagsets.evaluate_request("static")),
        (
            "Evaluate, 5 rules x 3 constraints + segment",
            flags_100,
            flagsets.EVALUATE_METHOD,
            flagsets.evaluate_request("rules"),
        ),
        ("EvaluateAll, 100 flags", flags_100, flagsets.EVALUATE_ALL_METHOD, flagsets.evaluate_all_request()),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--root", type=Path, default=REPO, help="tree to run the servers from")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        flags_file = flagsets.write_flag_file(Path(tmp), 100)
        for case, path, method, request in cases(flags_file):
            result = profile_case(case, path, method, request, args.calls, root=args.root)
            print(
                f"{case}: server {result.server_cpu_us:.0f} us/call, ours {result.ours_cpu_us:.1f} us, "
                f"the rest {result.grpc_cpu_us:.0f} us"
            )
            for row in result.rows:
                print(f"  {row.share:6.1%}  {row.calls_per_rpc:7.1f}/call  {row.function}")


if __name__ == "__main__":
    main()

"""`make bench`: the whole benchmark suite in one run, written to BENCHMARKS.md.

    .venv/bin/python -m bench.run [--repeats 5] [--calls 3000] [--before REV] [--output BENCHMARKS.md]

Every figure is measured in this run against baselines measured in the same run, and is the
median over repeats with the min and max beside it. RPC measurements are paired: in each repeat
the empty-RPC server is measured, then ours, back to back, and the ratio of that pair is one
sample. Server CPU is read from the server process's own accounting (bench.rpc), never wall time.

Sections: 1-2 server CPU per call (Evaluate, EvaluateAll; grpcio sync and grpc.aio; before and
after the optimisations), 3 the engine against openfeature-flagd-core, 4 throughput and latency,
5 FeatureEvent cost, 5b the Kafka exporter against a real broker, 6 memory and start-up, 7 profiles,
8 the otlp exporter, 9 the sync stream, 10 in-process evaluation, 11 a database source (Evaluate
on SQLite and PostgreSQL, an admin write's propagation to 20 sidecars), 12 the caller's language (server
CPU per Evaluate under a Go and a Python caller, Go's client-side latency).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import pickle
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import (
    database_cases,
    engine_cases,
    event_cases,
    flagsets,
    go_caller,
    inproc_cases,
    kafka_cases,
    sync_cases,
)
from . import otlp as otlp_cases
from .profile import CaseProfile, profile_case
from .profile import cases as profile_cases
from .rpc import (
    REPO,
    LoadGenerator,
    Measurement,
    Server,
    cpu_seconds,
    memory_mb,
    pin_to_cpus,
    server_process,
    terminate,
)
from .servers import EMPTY_METHOD, parse_request

# The raw results of the last run, to re-render the report (--render-only) after editing notes.md.
RESULTS = Path(tempfile.gettempdir()) / "flag-sidecar-bench-results.pickle"

# ---------------------------------------------------------------- statistics


@dataclass
class Series:
    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def show(self, digits: int = 0, unit: str = "") -> str:
        if not self.values:
            return "n/a"
        low, high = min(self.values), max(self.values)
        return f"**{self.median:,.{digits}f}**{unit} ({low:,.{digits}f} to {high:,.{digits}f})"


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def verdict(met: bool) -> str:
    return "met" if met else "**not met**"


# ---------------------------------------------------------------- setup


@dataclass
class FlagFiles:
    directory: Path
    by_count: dict[int, Path]

    def __getitem__(self, count: int) -> Path:
        return self.by_count[count]


def write_flag_files(directory: Path, counts: Sequence[int]) -> FlagFiles:
    return FlagFiles(directory, {count: flagsets.write_flag_file(directory, count) for count in counts})


def before_tree(revision: str, directory: Path) -> Path:
    """The sidecar/, flagsidecar/ and flagd/ packages of `revision`, with this bench/ beside them."""
    root = directory / f"before-{revision}"
    root.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "sidecar", "flagsidecar", "flagd"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout
    archive_path = directory / "before.tar"
    archive_path.write_bytes(archive)
    with tarfile.open(archive_path) as tar:
        tar.extractall(root, filter="data")
    shutil.copytree(REPO / "bench", root / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    compile_bytecode(root)
    return root


def compile_bytecode(root: Path) -> None:
    """Write .pyc files first, as an installed package has them: a process that compiles its own
    sources at start (PYTHONDONTWRITEBYTECODE, a fresh checkout) starts slower and bigger."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    packages = [str(root / name) for name in ("sidecar", "flagsidecar", "flagd", "bench")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], check=True, env=env)


# ---------------------------------------------------------------- 1-2: server CPU per call


@dataclass
class RpcCase:
    name: str
    method: str
    request: bytes
    flags: int  # which flag set the sidecar serves
    calls: int


@dataclass
class Pair:
    """Paired samples: the empty RPC's CPU per call and ours, and their per-repeat ratio."""

    empty_us: Series = field(default_factory=Series)
    ours_us: Series = field(default_factory=Series)
    ratio: Series = field(default_factory=Series)

    def add(self, empty: Measurement, ours: Measurement) -> None:
        self.empty_us.add(empty.cpu_us)
        self.ours_us.add(ours.cpu_us)
        self.ratio.add(ours.cpu_us / empty.cpu_us)


def rpc_cases(calls: int) -> list[RpcCase]:
    evaluate = flagsets.EVALUATE_METHOD
    evaluate_all = flagsets.EVALUATE_ALL_METHOD
    everything = flagsets.evaluate_all_request()
    return [
        RpcCase("Evaluate, static flag", evaluate, flagsets.evaluate_request("static"), 100, calls),
        RpcCase(
            "Evaluate, 5 rules x 3 constraints + segment",
            evaluate,
            flagsets.evaluate_request("rules"),
            100,
            calls,
        ),
        RpcCase("Evaluate, 3-way percentage split", evaluate, flagsets.evaluate_request("split"), 100, calls),
        RpcCase("EvaluateAll, 10 flags", evaluate_all, everything, 10, calls),
        RpcCase("EvaluateAll, 100 flags", evaluate_all, everything, 100, max(calls // 2, 200)),
        RpcCase("EvaluateAll, 1000 flags", evaluate_all, everything, 1000, max(calls // 10, 50)),
    ]


SPIN_US = (25, 150)  # about what our Evaluate and EvaluateAll(100) handlers take inside the server
TOUCH_DICTS = 80  # about 25 us in a timeit loop on the reference machine, mostly cache misses


@dataclass
class RpcResults:
    spin: dict[int, Pair]  # empty RPC + N us of pure Python, against the empty RPC
    touch: Pair  # empty RPC + reading TOUCH_DICTS dicts spread over a large pool
    touch_us: float  # what that read takes in a timeit loop here
    parse: Pair  # empty RPC + parsing the static flag's EvaluateRequest and reading its context
    parse_us: float  # what that takes in a timeit loop here
    sync: dict[str, Pair]
    aio: dict[str, Pair]  # aio-sidecar against aio-empty
    aio_vs_sync: dict[str, Series]  # aio CPU per call / sync CPU per call, same case
    before: dict[str, Pair]
    concurrency: int
    # --interceptor: the same server with its timing and status mapping in a grpc.ServerInterceptor
    interceptor: dict[str, Pair] = field(default_factory=dict)


AIO_CASES = ("Evaluate, static flag", "EvaluateAll, 100 flags")
BEFORE_CASES = (
    "Evaluate, static flag",
    "Evaluate, 5 rules x 3 constraints + segment",
    "Evaluate, 3-way percentage split",
    "EvaluateAll, 100 flags",
)


def touch_cost_us() -> float:
    """What the BENCH_TOUCH_DICTS handler's work takes in a timeit loop (same pool, same walk)."""
    import random
    import timeit

    pool = [{f"k{field}": field for field in range(8)} for _ in range(200_000)]
    random.Random(42).shuffle(pool)
    cursor = [0]

    def walk() -> int:
        start, total = cursor[0], 0
        for item in pool[start : start + TOUCH_DICTS]:
            total += item.get("k3", 0)
        cursor[0] = (start + TOUCH_DICTS) % (len(pool) - TOUCH_DICTS)
        return total

    return min(timeit.repeat(walk, number=2000, repeat=5)) / 2000 * 1e6


def parse_cost_us() -> float:
    """What the BENCH_PARSE_REQUEST handler's work takes in a timeit loop."""
    import timeit

    request = flagsets.evaluate_request("static")
    return min(timeit.repeat(lambda: parse_request(request), number=20_000, repeat=5)) / 20_000 * 1e6


def measure_rpc(
    files: FlagFiles,
    repeats: int,
    calls: int,
    concurrency: int,
    before: Path | None,
    pin: bool = False,
    interceptor: bool = False,
) -> RpcResults:
    cases = rpc_cases(calls)
    results = RpcResults(
        spin={spin: Pair() for spin in SPIN_US},
        touch=Pair(),
        touch_us=touch_cost_us(),
        parse=Pair(),
        parse_us=parse_cost_us(),
        sync={case.name: Pair() for case in cases},
        aio={name: Pair() for name in AIO_CASES},
        aio_vs_sync={f"{name}, {who}": Series() for name in AIO_CASES for who in ("empty RPC", "ours")},
        before={name: Pair() for name in BEFORE_CASES} if before else {},
        concurrency=concurrency,
        interceptor={name: Pair() for name in BEFORE_CASES} if interceptor else {},
    )
    with contextlib.ExitStack() as stack:

        def start(
            kind: str, flags: int, root: Path = REPO, env: dict[str, str] | None = None
        ) -> LoadGenerator:
            server = stack.enter_context(server_process(kind, files[flags], env, root))
            generator = stack.enter_context(LoadGenerator(server))
            if pin:  # servers on the first CPU, load generators on the second
                pin_to_cpus(server.pid, {0})
                pin_to_cpus(generator.pid, {1})
            return generator

        empty = start("empty", 100)
        spinners = {spin: start("empty", 100, env={"BENCH_SPIN_US": str(spin)}) for spin in SPIN_US}
        toucher = start("empty", 100, env={"BENCH_TOUCH_DICTS": str(TOUCH_DICTS)})
        parser = start("empty", 100, env={"BENCH_PARSE_REQUEST": "1"})
        ours = {count: start("sidecar", count) for count in sorted({case.flags for case in cases})}
        aio_empty, aio_ours = start("aio-empty", 100), start("aio-sidecar", 100)
        old = start("sidecar", 100, before) if before else None
        intercepted = start("sidecar", 100, env={"BENCH_INTERCEPTOR": "1"}) if interceptor else None
        progress(f"RPC servers up: {', '.join(str(count) for count in ours)}-flag sidecars, aio, before")
        for repeat in range(repeats):
            progress(f"RPC CPU per call, repeat {repeat + 1}/{repeats}")
            for spin, spinner in spinners.items():
                floor = empty.measure(EMPTY_METHOD, b"", calls, concurrency)
                results.spin[spin].add(floor, spinner.measure(EMPTY_METHOD, b"", calls, concurrency))
            floor = empty.measure(EMPTY_METHOD, b"", calls, concurrency)
            results.touch.add(floor, toucher.measure(EMPTY_METHOD, b"", calls, concurrency))
            floor = empty.measure(EMPTY_METHOD, b"", calls, concurrency)
            static = flagsets.evaluate_request("static")
            results.parse.add(floor, parser.measure(EMPTY_METHOD, static, calls, concurrency))
            for case in cases:
                floor = empty.measure(EMPTY_METHOD, b"", calls, concurrency)
                mine = ours[case.flags].measure(case.method, case.request, case.calls, concurrency)
                results.sync[case.name].add(floor, mine)
                if case.name in AIO_CASES:
                    aio_floor = aio_empty.measure(EMPTY_METHOD, b"", calls, concurrency)
                    aio_mine = aio_ours.measure(case.method, case.request, case.calls, concurrency)
                    results.aio[case.name].add(aio_floor, aio_mine)
                    results.aio_vs_sync[f"{case.name}, empty RPC"].add(aio_floor.cpu_us / floor.cpu_us)
                    results.aio_vs_sync[f"{case.name}, ours"].add(aio_mine.cpu_us / mine.cpu_us)
                if old is not None and case.name in BEFORE_CASES:
                    floor = empty.measure(EMPTY_METHOD, b"", calls, concurrency)
                    previous = old.measure(case.method, case.request, case.calls, concurrency)
                    results.before[case.name].add(floor, previous)
                if intercepted is not None and case.name in BEFORE_CASES:
                    floor = empty.measure(EMPTY_METHOD, b"", calls, concurrency)
                    other = intercepted.measure(case.method, case.request, case.calls, concurrency)
                    results.interceptor[case.name].add(floor, other)
    return results


# ---------------------------------------------------------------- 4: throughput and latency


@dataclass
class LoadResult:
    throughput: Series = field(default_factory=Series)
    p50_us: Series = field(default_factory=Series)
    p99_us: Series = field(default_factory=Series)
    cpu_us: Series = field(default_factory=Series)


THROUGHPUT_SERVERS = ("empty", "sidecar", "aio-empty", "aio-sidecar")


def measure_throughput(
    files: FlagFiles, repeats: int, calls: int, levels: Sequence[int]
) -> dict[tuple[str, int], LoadResult]:
    results = {(kind, level): LoadResult() for kind in THROUGHPUT_SERVERS for level in levels}
    request = flagsets.evaluate_request("split")
    with contextlib.ExitStack() as stack:
        loads = {}
        for kind in THROUGHPUT_SERVERS:
            server = stack.enter_context(server_process(kind, files[100]))
            loads[kind] = stack.enter_context(LoadGenerator(server))
        for repeat in range(repeats):
            progress(f"throughput and latency, repeat {repeat + 1}/{repeats}")
            for level in levels:
                for kind in THROUGHPUT_SERVERS:
                    method = EMPTY_METHOD if kind.endswith("empty") else flagsets.EVALUATE_METHOD
                    measured = loads[kind].measure(
                        method, b"" if kind.endswith("empty") else request, calls, level
                    )
                    result = results[(kind, level)]
                    result.throughput.add(measured.throughput)
                    result.p50_us.add(measured.p50_us)
                    result.p99_us.add(measured.p99_us)
                    result.cpu_us.add(measured.cpu_us)
    return results


# ---------------------------------------------------------------- 6: memory and start-up


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_serving(target: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    options = [("grpc.initial_reconnect_backoff_ms", 5), ("grpc.max_reconnect_backoff_ms", 20)]
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the sidecar exited with {process.returncode}")
            try:
                answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5)  # type: ignore[attr-defined]
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.003)
    raise TimeoutError(f"{target} not SERVING within {timeout}s")


@contextlib.contextmanager
def real_sidecar(flags_file: Path, root: Path = REPO) -> Iterator[tuple[subprocess.Popen[bytes], str, float]]:
    """`flag-sidecar serve` as a user runs it (metrics listener included), from the `sidecar` package
    in `root` (this tree, or a `before_tree`); yields (process, target, seconds from spawn to SERVING)."""
    port, management = free_port(), free_port()
    target = f"127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "sidecar",
        "serve",
        "--flags",
        str(flags_file),
        "--listen",
        target,
        "--management-listen",
        f"127.0.0.1:{management}",
        "--log-level",
        "warning",
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=root, stderr=subprocess.DEVNULL)
    try:
        wait_serving(target, process)
        yield process, target, time.perf_counter() - started
    finally:
        terminate(process)


@dataclass
class Footprint:
    """Resident memory of one kind of process: all of it (`VmRSS`), and its private part
    (`RssAnon`: heap, stacks, Python objects), without the shared libraries' file-backed pages,
    which every process running the same image on a node shares through the page cache."""

    rss: Series = field(default_factory=Series)
    private: Series = field(default_factory=Series)
    idle_cpu_ms_per_s: Series = field(default_factory=Series)  # CPU while idle, over IDLE_SECONDS

    def idle(self, pid: int) -> None:
        """Leave the process idle for IDLE_SECONDS, then record its CPU over that time and its memory."""
        before = cpu_seconds(pid)
        time.sleep(IDLE_SECONDS)
        self.idle_cpu_ms_per_s.add((cpu_seconds(pid) - before) / IDLE_SECONDS * 1000)
        rss, private = memory_mb(pid)
        self.rss.add(rss)
        self.private.add(private)


@dataclass
class MemoryResults:
    startup_s: dict[str, Series]  # by flag file (STARTS)
    idle: dict[str, Footprint]  # by the process's row label
    # The --before revision's start on the same file, right after ours in each repeat, and the
    # per-repeat ratio of ours to it: what a busy machine slows, it slows for both.
    before_startup_s: dict[str, Series] = field(default_factory=dict)
    startup_ratio: dict[str, Series] = field(default_factory=dict)
    before: str = ""  # that revision
    # What any start pays before our code runs (START_FLOOR) and what reading the YAML file pays
    # before a value is built (EVENTS_FLOOR), in the same repeats: where the start targets lie.
    floors_s: dict[str, Series] = field(default_factory=dict)


IDLE_SECONDS = 3.0  # three polls of the flag file's change check
IDLE_100_YAML = "idle, 100 flags (YAML)"
IDLE_10K_YAML = "idle, 10,000 flags (YAML)"
IDLE_10K_JSON = "idle, 10,000 flags (JSON)"
BARE_FLOOR = "bare grpcio server: interpreter, grpcio, one empty method"
DEPENDENCY_FLOOR = "+ the sidecar's dependencies, none of its code, no flags"
START_100 = "100 flags (YAML)"
START_10K_YAML = "10,000 flags (YAML)"
START_10K_JSON = "10,000 flags (JSON)"
START_10K_DISTINCT = "10,000 distinct flags (JSON)"
TARGET_KB_PER_FLAG = 3.0
START_FLOOR = "a server with the sidecar's dependencies (the second floor above) to SERVING"
EVENTS_FLOOR = "PyYAML's libyaml parser over the 10,000-flag YAML file: its events, no value built"


def measure_memory(
    files: FlagFiles, repeats: int, before: Path | None = None, before_revision: str = ""
) -> MemoryResults:
    json_100 = files.directory / "flags-100.json"
    json_100.write_text(json.dumps(flagsets.flag_document(100)))
    json_10k = files.directory / "flags-10000.json"
    json_10k.write_text(json.dumps(flagsets.flag_document(10_000)))
    # No two flags alike: what a flag set that repeats itself saves at load (shared parts) is not here.
    distinct_10k = files.directory / "flags-10000-distinct.json"
    distinct_10k.write_text(json.dumps(flagsets.flag_document(10_000, distinct=True)))
    sidecars = {
        IDLE_100_YAML: files[100],
        "idle, 100 flags (the same as JSON)": json_100,
        IDLE_10K_YAML: files[10_000],
        IDLE_10K_JSON: json_10k,
        "idle, 10,000 distinct flags (JSON)": distinct_10k,
    }
    starts = {
        START_100: files[100],
        START_10K_YAML: files[10_000],
        START_10K_JSON: json_10k,
        START_10K_DISTINCT: distinct_10k,
    }
    labels = [*sidecars, "after a burst of 5,000 calls, 100 flags (YAML)", BARE_FLOOR, DEPENDENCY_FLOOR]
    results = MemoryResults(
        startup_s={label: Series() for label in starts},
        idle={label: Footprint() for label in labels},
        before_startup_s={label: Series() for label in starts} if before else {},
        startup_ratio={label: Series() for label in starts} if before else {},
        before=before_revision if before else "",
        floors_s={START_FLOOR: Series(), EVENTS_FLOOR: Series()},
    )
    request = flagsets.evaluate_request("rules")
    for repeat in range(repeats):
        progress(f"memory and start-up, repeat {repeat + 1}/{repeats}")
        for label, flags_file in sidecars.items():
            with real_sidecar(flags_file) as (process, target, ready):
                results.idle[label].idle(process.pid)
                if label == IDLE_100_YAML:
                    with LoadGenerator(Server("sidecar", process, target, ready)) as load:
                        load.measure(flagsets.EVALUATE_METHOD, request, 5000, 8, warmup=0)
                    results.idle[labels[len(sidecars)]].idle(process.pid)
            for start_label in (name for name, start_file in starts.items() if start_file == flags_file):
                results.startup_s[start_label].add(ready)
                if before is not None:
                    with real_sidecar(flags_file, root=before) as (_, _, ready_before):
                        results.before_startup_s[start_label].add(ready_before)
                        results.startup_ratio[start_label].add(ready / ready_before)
        for label, dependencies in ((BARE_FLOOR, False), (DEPENDENCY_FLOOR, True)):
            with bare_server(dependencies) as (pid, ready):
                results.idle[label].idle(pid)
                if dependencies:
                    results.floors_s[START_FLOOR].add(ready)
        results.floors_s[EVENTS_FLOOR].add(libyaml_events_s(files[10_000]))
    return results


def libyaml_events_s(path: Path) -> float:
    """Seconds for PyYAML's libyaml parser to hand over every event of the file, building no value:
    the part of the sidecar's YAML read (sidecar/store/yaml_values.py builds its values from these
    events) that no work of its own can take away. libyaml's own loader, CSafeLoader, builds a node
    graph instead, which takes longer still (bench/yaml_loaders.py)."""
    data = path.read_bytes()
    started = time.perf_counter()
    for _ in yaml.parse(data, Loader=yaml.CSafeLoader):
        pass
    return time.perf_counter() - started


def kb_per_flag(memory: MemoryResults, idle_10k: str) -> float:
    """What each flag adds to the idle RSS, from 100 to 10,000 flags (medians)."""
    grown = memory.idle[idle_10k].rss.median - memory.idle[IDLE_100_YAML].rss.median
    return grown * 1000 / 9_900


@contextlib.contextmanager
def bare_server(dependencies: bool) -> Iterator[tuple[int, float]]:
    """A bench/bare_server.py process; yields its pid and the seconds from spawning it to serving:
    with the dependencies (gRPC health among them) to its first health check answering SERVING, as
    real_sidecar measures a start; without, to its listening."""
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        command = [sys.executable, "-m", "bench.bare_server", str(port_file)]
        started = time.perf_counter()
        process = subprocess.Popen([*command, *(["--dependencies"] if dependencies else [])], cwd=REPO)
        try:
            while not port_file.exists() or not port_file.read_text():
                if process.poll() is not None:
                    raise RuntimeError(f"bench/bare_server.py exited with {process.returncode}")
                time.sleep(0.005)
            if dependencies:
                wait_serving(f"127.0.0.1:{port_file.read_text()}", process)
            yield process.pid, time.perf_counter() - started
        finally:
            terminate(process)


# ---------------------------------------------------------------- the report


def machine() -> list[tuple[str, str]]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {name: importlib.metadata.version(name) for name in ("grpcio", "protobuf", "PyYAML")}
    return [
        ("CPU", f"{os.cpu_count()} cores ({model or platform.machine()})"),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("grpcio", versions["grpcio"]),
        ("protobuf", versions["protobuf"]),
        ("PyYAML", f"{versions['PyYAML']} (libyaml {'yes' if _has_libyaml() else 'no'})"),
        ("openfeature-flagd-core", importlib.metadata.version("openfeature-flagd-core")),
    ]


def _has_libyaml() -> bool:

    return hasattr(yaml, "CSafeLoader")


def git_revision() -> str:
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, check=True, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "sidecar", "bench"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return revision + (" (with local changes)" if dirty else "")


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        self.lines.append("| " + " | ".join(header) + " |")
        self.lines.append("|" + "|".join("---" for _ in header) + "|")
        self.lines.extend("| " + " | ".join(row) + " |" for row in rows)
        self.lines.append("")

    def text(self) -> str:
        return "\n".join(self.lines).rstrip() + "\n"


TARGETS = {
    "evaluate": 1.15,
    "evaluate_all_100": 2.0,
    "engine": 3.0,
    "add_event_us": 5.0,
    "events_per_s": 50_000,
    "kafka_events_per_s": 100_000,
    "rss_mb": 40.0,
    "startup_s": 1.0,
    "evaluate_otlp": 1.2,
    "evaluate_database": 1.15,  # as "evaluate": the database must cost nothing per call
    "propagation_p99_ms": 100.0,
    "caller_language": 0.15,  # server CPU per Evaluate, Go caller / Python caller, within 1 ± this
}


def write_report(
    path: Path,
    args: argparse.Namespace,
    started: datetime.datetime,
    elapsed: float,
    rpc: RpcResults | None,
    throughput: dict[tuple[str, int], LoadResult] | None,
    engine: list[engine_cases.EngineResult] | None,
    events: event_cases.EventResult | None,
    memory: MemoryResults | None,
    profiles: dict[str, list[CaseProfile]] | None,
    otlp: otlp_cases.OtlpResults | None = None,
    kafka: kafka_cases.KafkaResult | None = None,
    sync: sync_cases.SyncResult | None = None,
    inproc: inproc_cases.InprocResult | None = None,
    database: database_cases.DatabaseResults | None = None,
    go: go_caller.GoCallerResults | None = None,
) -> None:
    report = Report()
    report.add(
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/run.py`); do not edit by hand. Every figure below was measured "
        "in one run, against baselines measured in the same run: **median** over the repeats, "
        "(min to max) beside it. Ratios are the median of per-repeat ratios, each repeat measuring the "
        "baseline and ours back to back. The machine is shared and noisy, so read medians and "
        "ratios, not single values.",
        "",
        "## Machine and run",
        "",
    )
    report.table(
        ("", ""),
        [
            *machine(),
            ("revision", getattr(args, "revision", "") or git_revision()),
            ("date", started.strftime("%Y-%m-%d %H:%M UTC")),
            (
                "command",
                f"`{args.command}`",
            ),
            ("duration", f"{elapsed / 60:.1f} min"),
            (
                "repeats",
                f"{args.repeats} (RPC CPU), {args.load_repeats} (throughput), {args.memory_repeats} (memory)",
            ),
        ],
    )
    summary: list[tuple[str, str, str, str]] = []
    if rpc is not None:
        write_rpc(report, rpc, args, summary)
    if engine is not None:
        write_engine(report, engine, summary)
    if throughput is not None:
        write_throughput(report, throughput, args)
    if events is not None:
        write_events(report, events, summary)
    if kafka is not None:
        write_kafka(report, kafka, summary)
    if memory is not None:
        write_memory(report, memory, summary)
    if profiles is not None:
        write_profiles(report, profiles, args)
    if otlp is not None:
        write_otlp(report, otlp, summary)
    if sync is not None:
        write_sync(report, sync, summary)
    if inproc is not None:
        write_inproc(report, inproc, summary)
    if database is not None:
        write_database(report, database, summary)
    if go is not None:
        write_go_caller(report, go, summary)
    notes = Path(__file__).with_name("notes.md")
    if notes.exists():
        report.add(notes.read_text().rstrip(), "")
    header_end = report.lines.index("## Machine and run")
    headline = Report()
    headline.add("## Targets", "")
    headline.table(("target", "measured", "", "section"), summary)
    report.lines[header_end:header_end] = headline.lines
    path.write_text(report.text())


def write_rpc(
    report: Report, rpc: RpcResults, args: argparse.Namespace, summary: list[tuple[str, str, str, str]]
) -> None:
    report.add(
        "## 1-2. Server CPU per call, against an empty RPC",
        "",
        f"Server CPU time per call (utime+stime of the server process, from the kernel's per-thread "
        f"`schedstat` in ns), {args.calls} calls per measurement (fewer for the big EvaluateAll), "
        f"{rpc.concurrency} concurrent clients in a separate load-generator process, one channel. "
        "The floor is an *empty unary RPC* on the same `SidecarServer` (same executor, options, "
        "health, reflection, store and file watcher) whose only method returns an empty message "
        "without parsing its request. Flag sets: 100 flags cycling through static / 5 rules x 3 "
        "constraints (the last testing a segment; the user fails rules 0-3 on their third "
        "constraint and matches rule 4) / 3-way split, one segment; EvaluateAll over 10, 100 and "
        "1000 such flags. The user has an id and 4 attributes. Production metrics are on; no event "
        "exporter is configured (see section 5 for the events' own cost)."
        + (
            " Pinned (`--pin-cpus`): every server runs on CPU 0 and every load generator on CPU 1."
            if getattr(args, "pin_cpus", False)
            else ""
        ),
        "",
    )
    rows: list[tuple[str, ...]] = []
    # A ratio to the empty RPC moves with the machine (how cheap its grpcio call is), so each target
    # row also names what the same run measured under it: the request's own receipt and parse, which
    # no handler can skip, and the --before revision's ratio.
    request_floor = f"the request's receipt and parse alone {rpc.parse.ratio.median:.2f}x"
    for name, pair in rpc.sync.items():
        target = TARGETS["evaluate"] if name.startswith("Evaluate,") else None
        if name == "EvaluateAll, 100 flags":
            target = TARGETS["evaluate_all_100"]
        met = "" if target is None else f"≤ {target}x: {verdict(pair.ratio.median <= target)}"
        rows.append(
            (name, pair.empty_us.show(0, " µs"), pair.ours_us.show(0, " µs"), pair.ratio.show(3, "x"), met)
        )
        if target is not None:
            before = rpc.before.get(name)
            # The calibration parses the static flag's EvaluateRequest: a floor for Evaluate only.
            under = [request_floor] if name.startswith("Evaluate,") else []
            if before is not None and before.ratio.values:
                under.append(f"`{args.before}` {before.ratio.median:.3f}x")
            summary.append(
                (
                    f"{name}: ≤ {target}x the empty RPC's CPU",
                    pair.ratio.show(3, "x"),
                    verdict(pair.ratio.median <= target) + (f" ({'; '.join(under)})" if under else ""),
                    "1-2",
                )
            )
    report.table(("case", "empty RPC", "ours", "ratio", "target"), rows)
    report.add(
        "Calibration: the empty RPC whose handler first does some Python work and nothing else: "
        "spins for N µs (a tight loop, no memory traffic), or reads a few dozen dicts spread over a "
        "large pool (cache misses, as a real handler's objects). *Charged* is the server CPU per "
        "call above the empty RPC, divided by the time that work takes on its own: what the sync "
        "server charges per µs of handler. The last row is the part of an Evaluate call that no "
        "handler of this API can skip.",
        "",
    )
    calibrations = [
        (f"empty RPC + {spin} µs of Python", pair, float(spin)) for spin, pair in rpc.spin.items()
    ]
    calibrations.append(
        (
            f"empty RPC + reading {TOUCH_DICTS} dicts spread over 70 MB "
            f"({rpc.touch_us:.1f} µs in a timeit loop)",
            rpc.touch,
            rpc.touch_us,
        )
    )
    calibrations.append(
        (
            "empty RPC + receiving the static flag's EvaluateRequest, parsing it and reading the user's "
            f"4 attributes, as the sidecar does ({rpc.parse_us:.1f} µs in a timeit loop)",
            rpc.parse,
            rpc.parse_us,
        )
    )
    rows = []
    for label, pair, work_us in calibrations:
        extra = zip(pair.empty_us.values, pair.ours_us.values, strict=True)
        charged = Series([(ours - empty) / work_us for empty, ours in extra])
        rows.append(
            (
                label,
                pair.empty_us.show(0, " µs"),
                pair.ours_us.show(0, " µs"),
                pair.ratio.show(2, "x"),
                charged.show(2, " µs per µs"),
            )
        )
    report.table(("calibration", "empty RPC", "with the extra work", "ratio", "charged"), rows)
    if rpc.before:
        report.add(
            "### Before and after the optimisations (same run)",
            "",
            f"`before` is the sidecar code of revision `{args.before}` (this bench harness, that "
            "revision's `sidecar/`), served next to the current one and paired with the same "
            "empty-RPC server.",
            "",
        )
        rows = []
        for name, pair in rpc.before.items():
            now = rpc.sync[name]
            rows.append(
                (
                    name,
                    pair.ours_us.show(0, " µs"),
                    pair.ratio.show(2, "x"),
                    now.ours_us.show(0, " µs"),
                    now.ratio.show(2, "x"),
                )
            )
        report.table(("case", "before", "before ratio", "now", "now ratio"), rows)
    if rpc.interceptor:
        report.add(
            "### Timing and status mapping in a grpc.ServerInterceptor (same run)",
            "",
            "`interceptor` is the current sidecar with the RPC histogram and the status mapping done "
            "by a `grpc.ServerInterceptor` (bench/servers.py, BENCH_INTERCEPTOR=1) instead of in the "
            "handler; `now` as above.",
            "",
        )
        rows = []
        for name, pair in rpc.interceptor.items():
            now = rpc.sync[name]
            rows.append((name, pair.ours_us.show(0, " µs"), pair.ratio.show(2, "x"), now.ratio.show(2, "x")))
        report.table(("case", "interceptor", "interceptor ratio", "now ratio"), rows)
    report.add(
        "### grpcio sync server against grpc.aio",
        "",
        "The same measurement on a `grpc.aio` server (`bench/servers.py`, kinds `aio-empty` and "
        "`aio-sidecar`: same store, health and reflection; the EvaluationService's methods called "
        "inline from thin async wrappers). Left: each server against its own empty RPC. Right: "
        "aio's CPU per call divided by the sync server's, same case, same repeat (below 1 means "
        "aio is cheaper).",
        "",
    )
    rows = []
    for name, pair in rpc.aio.items():
        rows.append(
            (
                name,
                pair.empty_us.show(0, " µs"),
                pair.ours_us.show(0, " µs"),
                pair.ratio.show(2, "x"),
                rpc.aio_vs_sync[f"{name}, empty RPC"].show(2, "x"),
                rpc.aio_vs_sync[f"{name}, ours"].show(2, "x"),
            )
        )
    report.table(
        ("case", "aio empty RPC", "aio ours", "aio ratio", "aio/sync, empty", "aio/sync, ours"), rows
    )


def write_engine(
    report: Report, engine: list[engine_cases.EngineResult], summary: list[tuple[str, str, str, str]]
) -> None:
    report.add(
        "## 3. The engine alone, against openfeature-flagd-core",
        "",
        "µs per evaluation (`bench/engine_cases.py`, timeit, 7 repeats), on equivalent flags: our "
        "flag model on one side, flagd's JSON Logic (`in`, `ends_with`, `>=`; `fractional`) on the "
        "other, same user and attributes. *End to end* builds each engine's context from the raw "
        "attributes on every call (`build_context` / `EvaluationContext`); *prebuilt* reuses one.",
        "",
    )
    rows = []
    for result in engine:
        ours, flagd = Series(result.ours_us), Series(result.flagd_us)
        ours_pre, flagd_pre = Series(result.ours_prebuilt_us), Series(result.flagd_prebuilt_us)
        # The engine alone is the prebuilt column; end to end adds building the context per call
        # (ours validates it: scalar values, reserved keys), which flagd's EvaluationContext does not.
        alone = verdict(result.prebuilt_ratio >= TARGETS["engine"])
        if result.ratio < TARGETS["engine"]:
            alone += f" (end to end {result.ratio:.1f}x: **not met**)"
        rows.append(
            (
                result.case,
                ours.show(2, " µs"),
                flagd.show(2, " µs"),
                f"**{result.ratio:.1f}x**",
                ours_pre.show(2, " µs"),
                flagd_pre.show(2, " µs"),
                f"**{result.prebuilt_ratio:.1f}x**",
                alone,
            )
        )
        summary.append(
            (
                f"engine ≥ 3x faster than flagd-core: {result.case}",
                f"{result.prebuilt_ratio:.1f}x (end to end {result.ratio:.1f}x)",
                alone,
                "3",
            )
        )
    report.table(
        (
            "case",
            "ours",
            "flagd-core",
            "speed-up",
            "ours, prebuilt",
            "flagd-core, prebuilt",
            "speed-up",
            "≥ 3x",
        ),
        rows,
    )


def write_throughput(
    report: Report, results: dict[tuple[str, int], LoadResult], args: argparse.Namespace
) -> None:
    report.add(
        "## 4. Throughput and latency",
        "",
        f"A fixed load of {args.load_calls} calls from N concurrent client threads (one channel) in a "
        "separate load-generator process; Evaluate on the 3-way split flag of the 100-flag set, or "
        "the empty RPC. Both processes share the 2 cores, so the client's own CPU caps throughput: "
        "compare rows, not absolute numbers.",
        "",
    )
    rows = []
    for (kind, level), result in results.items():
        server = {
            "empty": "sync, empty RPC",
            "sidecar": "sync, Evaluate",
            "aio-empty": "aio, empty RPC",
            "aio-sidecar": "aio, Evaluate",
        }[kind]
        rows.append(
            (
                server,
                str(level),
                result.throughput.show(0, "/s"),
                result.p50_us.show(0, " µs"),
                result.p99_us.show(0, " µs"),
                result.cpu_us.show(0, " µs"),
            )
        )
    rows.sort(key=lambda row: (int(row[1]), row[0]))
    report.table(("server", "clients", "calls/s", "p50", "p99", "server CPU per call"), rows)


def write_events(
    report: Report, events: event_cases.EventResult, summary: list[tuple[str, str, str, str]]
) -> None:
    add_event, add_evaluation = Series(events.add_event_us), Series(events.add_evaluation_us)
    fsync, no_fsync = Series(events.sustained_fsync), Series(events.sustained_no_fsync)
    report.add(
        "## 5. FeatureEvent cost",
        "",
        "`bench/event_cases.py`: a DataExporterScheduler with the file exporter (JSON lines), its "
        "batching and export threads running. `add_event` queues a prebuilt FeatureEvent; "
        "`add_evaluation` is what an Evaluate call pays (EventPipeline builds the FeatureEvent from "
        "the answer, then add_event). Sustained: events/s from the first add_evaluation until the "
        "exporter has written all of them (100,000 events, batches of 10,000).",
        "",
    )
    report.table(
        ("measure", "value", "target"),
        [
            (
                "add_event",
                add_event.show(2, " µs"),
                f"≤ 5 µs: {verdict(add_event.median <= TARGETS['add_event_us'])}",
            ),
            ("add_evaluation (FeatureEvent + add_event)", add_evaluation.show(2, " µs"), ""),
            (
                "sustained into the file exporter, fsync on (default)",
                fsync.show(0, " events/s"),
                f"≥ 50k/s: {verdict(fsync.median >= TARGETS['events_per_s'])}",
            ),
            ("sustained into the file exporter, fsync off", no_fsync.show(0, " events/s"), ""),
        ],
    )
    summary.append(
        (
            "add_event ≤ 5 µs",
            add_event.show(2, " µs"),
            verdict(add_event.median <= TARGETS["add_event_us"]),
            "5",
        )
    )
    summary.append(
        (
            "≥ 50k events/s into the file exporter",
            fsync.show(0, "/s"),
            verdict(fsync.median >= TARGETS["events_per_s"]),
            "5",
        )
    )


def write_sync(report: Report, sync: sync_cases.SyncResult, summary: list[tuple[str, str, str, str]]) -> None:
    report.add(
        "## 9. The sync stream",
        "",
        "`bench/sync_cases.py`: a control-plane process (`serve --flags` a 100-flag file "
        "`--sync-listen`); the flag file rewritten, one flag changed, each time. Watch subscribers: "
        f"{sync_cases.SUBSCRIBERS} grpc.aio streams in the bench process (10 per connection); from the "
        "write (end to end: the file watcher's settle time and the reload included) and from the "
        "control plane's applying the set (the fan-out alone: a revision is the microsecond wall "
        f"clock when it was stamped). Downstream sidecars: {sync_cases.DOWNSTREAMS} `--source "
        "grpc://` processes, from the write to their log line saying they applied it. Idle: "
        f"{sync.idle_streams:,} Watch streams held open, nothing changing.",
        "",
    )
    rows = []
    for what, values in sync.propagation_ms.items():
        p50, p99 = statistics.median(values), sync_cases.percentile(values, 0.99)
        rows.append(
            (f"propagation, {what}", f"p50 **{p50:.1f}** ms, p99 **{p99:.1f}** ms", f"{len(values)} samples")
        )
    rows += [
        ("memory per idle stream", f"**{sync.kib_per_stream:.1f}** KiB", "control plane RSS after / before"),
        ("control-plane threads", f"{sync.threads_before} before, {sync.threads_after} with the streams", ""),
        (
            f"control-plane CPU, {sync.idle_streams:,} idle streams",
            f"**{sync.cpu_idle_streams * 100:.2f}**% of a core (none: {sync.cpu_idle_none * 100:.2f}%)",
            "",
        ),
    ]
    report.table(("measure", "value", "note"), rows)
    for what, target in (
        ("fan-out", "propagation to 100 Watch subscribers p99 ≤ 100 ms (from the control plane's apply)"),
        ("end to end", "propagation, flag file write → 100 Watch subscribers, p99 ≤ 100 ms"),
    ):
        if sync.propagation_ms.get(what):
            p99 = sync_cases.percentile(sync.propagation_ms[what], 0.99)
            summary.append((target, f"{p99:.1f} ms", verdict(p99 <= 100), "9"))


def write_inproc(
    report: Report, inproc: inproc_cases.InprocResult, summary: list[tuple[str, str, str, str]]
) -> None:
    report.add(
        "## 10. In-process evaluation",
        "",
        "`bench/inproc_cases.py`: the client package (clients/python) following a control-plane process "
        "(`serve --flags --sync-listen`), in a fresh Python process of its own; the three-condition "
        "targeting flag of section 3, from raw input (user id + attribute dict) to answer, timeit, "
        f"{len(next(iter(inproc.us.values())))} repeats; flagd-core on the same flag in the same run.",
        "",
    )
    report.table(
        ("way in", "µs per evaluation"),
        [(what, Series(values).show(2)) for what, values in inproc.us.items()],
    )
    client = inproc.median("client")
    summary.append(
        (
            "in-process evaluation through the client, rules flag ≤ 1 µs",
            f"{client:.2f} µs",
            verdict(client <= 1),
            "10",
        )
    )
    summary.append(
        (
            "in-process ≥ 10x faster than flagd-core, same flag",
            f"{inproc.ratio:.1f}x",
            verdict(inproc.ratio >= 10),
            "10",
        )
    )
    provider = inproc.median("provider resolve")
    summary.append(
        (
            "through the OpenFeature provider ≤ 5 µs (its resolve)",
            f"{provider:.2f} µs",
            verdict(provider <= 5),
            "10",
        )
    )


def _kafka_format_rows(kafka: kafka_cases.KafkaResult) -> list[tuple[str, str, str]]:
    """JSON against protobuf (`format=protobuf`), measured in turns: encoding and rate into Kafka."""
    rows: list[tuple[str, str, str]] = []
    for name, values in (kafka.encode_us or {}).items():
        rows.append((f"encode a batch, {name}, per event", Series(values).show(2, " µs"), "as measured"))
    for name, values in (kafka.sustained_by_format or {}).items():
        rate = Series(values)
        target = f"≥ 100k/s: {verdict(rate.median >= TARGETS['kafka_events_per_s'])}"
        rows.append((f"sustained into Kafka, {name} (in turns)", rate.show(0, " events/s"), target))
    return rows


def write_kafka(
    report: Report, kafka: kafka_cases.KafkaResult, summary: list[tuple[str, str, str, str]]
) -> None:
    sustained, add_event = Series(kafka.sustained), Series(kafka.add_event_us)
    drain = Series(kafka.drain_seconds)
    report.add(
        "## 5b. The Kafka exporter",
        "",
        "`bench/kafka_cases.py`: a real single-node Kafka broker (KRaft, tests/kafka/broker.py, 1 GB "
        "heap) on the same 2 cores, a topic of 3 partitions, the exporter's defaults (idempotent, "
        "acks=all, lz4, key = user) and the serve defaults (batches of 10,000). Sustained: events/s "
        "from the first add_evaluation until the broker has acknowledged all of them (200,000 "
        "events, 1,000 users). add_event: with the Kafka exporter behind it, sending. Drain: "
        f"{kafka.drain_events:,} events in the spool (records of 10,000, as an outage leaves them), "
        "from the start until the broker has acknowledged all of them.",
        "",
    )
    report.table(
        ("measure", "value", "target"),
        [
            (
                "sustained into Kafka",
                sustained.show(0, " events/s"),
                f"≥ 100k/s: {verdict(sustained.median >= TARGETS['kafka_events_per_s'])}",
            ),
            (
                "add_event, Kafka exporter",
                add_event.show(2, " µs"),
                f"≤ 5 µs: {verdict(add_event.median <= TARGETS['add_event_us'])}",
            ),
            (f"drain {kafka.drain_events:,} spooled events into Kafka", drain.show(1, " s"), "as measured"),
            *_kafka_format_rows(kafka),
        ],
    )
    summary.append(
        (
            "≥ 100k events/s into Kafka",
            sustained.show(0, "/s"),
            verdict(sustained.median >= TARGETS["kafka_events_per_s"]),
            "5b",
        )
    )
    summary.append(
        (
            "add_event ≤ 5 µs, Kafka exporter",
            add_event.show(2, " µs"),
            verdict(add_event.median <= TARGETS["add_event_us"]),
            "5b",
        )
    )


def write_memory(report: Report, memory: MemoryResults, summary: list[tuple[str, str, str, str]]) -> None:
    report.add(
        "## 6. Memory and start-up",
        "",
        "`flag-sidecar serve` as a user runs it (metrics listener on, no exporter), left idle for "
        f"{IDLE_SECONDS:g} s after it reports SERVING: *RSS* is `VmRSS`, *private* is `RssAnon` "
        "(RSS without the shared libraries' file-backed pages, which processes running the same "
        "image on a node share), *idle CPU* the process's CPU over those seconds (its threads' "
        "timers and polls, the flag file's change check included). Start-up is from spawning the "
        "process to the first gRPC health check answering SERVING. The two floors are "
        "`bench/bare_server.py`: the smallest grpcio server, and the same with the third-party "
        "libraries `serve` cannot do without, used as the sidecar uses them (protobuf, gRPC health "
        "and reflection, prometheus_client behind an HTTP listener, PyYAML, a watchdog observer, "
        "cachetools, mmh3) but none of its code.",
        "",
    )
    rows: list[tuple[str, ...]] = [
        (
            label,
            footprint.rss.show(1, " MB"),
            footprint.private.show(1, " MB"),
            footprint.idle_cpu_ms_per_s.show(2, " ms/s"),
        )
        for label, footprint in memory.idle.items()
    ]
    report.table(("process", "RSS", "private", "idle CPU"), rows)
    if memory.before:
        report.add(
            f"Each start of ours is followed by one of `{memory.before}`'s code (the --before "
            "revision) on the same file; the ratio is the median of the per-repeat ratios.",
            "",
        )
        rows = [
            (
                label,
                series.show(2, " s"),
                memory.before_startup_s[label].show(2, " s"),
                memory.startup_ratio[label].show(2, "x"),
            )
            for label, series in memory.startup_s.items()
        ]
        report.table(("flag file", "start to SERVING", f"before ({memory.before})", "now / before"), rows)
    else:
        rows = [(label, series.show(2, " s")) for label, series in memory.startup_s.items()]
        report.table(("flag file", "start to SERVING"), rows)
    floors = memory.floors_s
    report.add(
        "Two floors under a start, measured in the same repeats: the server with the dependencies "
        "and none of our code, from spawning it to its first health check answering SERVING; and "
        "libyaml through PyYAML handing over the YAML file's events (in the harness's process), "
        "before any reader builds a value from them. The sidecar builds its values from those events "
        "(libyaml's own CSafeLoader takes longer: `bench/yaml_loaders.py`; the faster parsers "
        "measured read YAML 1.2, or cost more once their result is read from Python: "
        "bench/notes.md), so a start from YAML cannot take less than the two together.",
        "",
    )
    report.table(("floor", "seconds"), [(label, series.show(2, " s")) for label, series in floors.items()])
    yaml_floor = floors[START_FLOOR].median + floors[EVENTS_FLOOR].median
    idle, floor = memory.idle[IDLE_100_YAML].rss, memory.idle[DEPENDENCY_FLOOR].rss
    summary.append(
        (
            "idle RSS with 100 flags ≤ 40 MB",
            idle.show(1, " MB"),
            verdict(idle.median <= TARGETS["rss_mb"]) + f" (dependency floor {floor.median:.1f} MB)",
            "6",
        )
    )
    for label, series in memory.startup_s.items():
        ratio = memory.startup_ratio.get(label) if memory.before else None
        against = f" ({ratio.median:.2f}x `{memory.before}`'s)" if ratio is not None and ratio.values else ""
        below = f" (floor {yaml_floor:.2f} s)" if label == START_10K_YAML else ""
        summary.append(
            (
                f"start to SERVING ≤ 1 s ({label})",
                series.show(2, " s"),
                verdict(series.median <= TARGETS["startup_s"]) + below + against,
                "6",
            )
        )
    for label in (IDLE_10K_YAML, IDLE_10K_JSON):
        per_flag = kb_per_flag(memory, label)
        what = label.removeprefix("idle, 10,000 flags ")
        summary.append(
            (
                f"memory per flag ≤ {TARGET_KB_PER_FLAG:g} KB {what} (idle RSS, 100 to 10,000 flags)",
                f"**{per_flag:.2f}** KB",
                verdict(per_flag <= TARGET_KB_PER_FLAG),
                "6",
            )
        )


def write_profiles(report: Report, profiles: dict[str, list[CaseProfile]], args: argparse.Namespace) -> None:
    report.add(
        "## 7. Profiles of the hot path",
        "",
        "`bench/profile.py`, on a fresh `sidecar` bench server per case. *Ours* is the thread CPU "
        "of our code on the call path (the handler, which parses its own request now; the request "
        "deserializer as well where a revision has one), "
        "summed inside the server; *the rest* is the server's total CPU per call minus ours: "
        "grpcio's C core, its Python glue in `grpc/_server.py`, the thread pool and the "
        "hand-offs between the polling thread and the workers. The tables list the functions "
        "where our code spends its time (cProfile with a thread-CPU clock; shares of our time, "
        "self time only).",
        "",
    )
    for label, cases in profiles.items():
        report.add(f"### {label}", "")
        for profile in cases:
            report.add(
                f"**{profile.case}**: server {profile.server_cpu_us:.0f} µs per call, of which ours "
                f"{profile.ours_cpu_us:.1f} µs and the rest {profile.grpc_cpu_us:.0f} µs.",
                "",
            )
            report.table(
                ("share of ours", "calls per RPC", "function"),
                [
                    (f"{row.share:.1%}", f"{row.calls_per_rpc:.1f}", f"`{row.function}`")
                    for row in profile.rows
                ],
            )


# ---------------------------------------------------------------- main


def write_otlp(
    report: Report, otlp: otlp_cases.OtlpResults, summary: list[tuple[str, str, str, str]]
) -> None:
    report.add(
        "## 8. Evaluate with the otlp exporter",
        "",
        "`bench/otlp.py`: server CPU per Evaluate call (as in section 1-2, 100 flags, "
        f"{otlp.calls} calls per measurement, {otlp.concurrency} clients) of a sidecar with "
        "`--exporter otlp:endpoint=...,flush_interval=0.1` sending to a local OTLP/gRPC receiver, "
        "against the empty RPC and the same sidecar without an exporter, measured back to back. "
        "The short flush interval keeps each measurement's encoding and sending inside it. The file "
        "exporter (same flush interval, fsync off) is the same measure for another exporter. "
        f"Delivered to the receiver: {otlp.delivered:,} events of at least {otlp.sent:,} sent.",
        "",
    )
    rows = []
    target = TARGETS["evaluate_otlp"]
    for case in otlp_cases.CASES:
        on_vs_empty = Series(otlp.on_vs_empty[case])
        met = verdict(on_vs_empty.median <= target)
        rows.append(
            (
                f"Evaluate, {case} flag",
                Series(otlp.empty_us[case]).show(0, " µs"),
                Series(otlp.off_us[case]).show(0, " µs"),
                Series(otlp.on_us[case]).show(0, " µs"),
                on_vs_empty.show(3, "x"),
                Series(otlp.on_vs_off[case]).show(3, "x"),
                Series(otlp.file_vs_empty[case]).show(3, "x"),
                f"≤ {target}x: {met}",
            )
        )
        name = f"Evaluate ({case}) with otlp on ≤ {target}x empty RPC"
        off = Series(otlp.on_vs_off[case]).median
        summary.append((name, on_vs_empty.show(3, "x"), f"{met} (otlp on / no exporter {off:.3f}x)", "8"))
    report.table(
        (
            "case",
            "empty RPC",
            "no exporter",
            "otlp on",
            "otlp / empty",
            "otlp / no exporter",
            "file on / empty",
            "target",
        ),
        rows,
    )


def write_database(
    report: Report, database: database_cases.DatabaseResults, summary: list[tuple[str, str, str, str]]
) -> None:
    report.add(
        "## 11. A database source: Evaluate, and an admin write's propagation",
        "",
        "`bench/database_cases.py`: server CPU per Evaluate call (as in section 1-2, 100 flags, "
        f"{database.calls} calls per measurement, {database.concurrency} clients) of the sidecar "
        "following the flag file, and following the same flags imported into an SQLite file and a "
        "PostgreSQL database (a server started for the run), against the empty RPC, the servers "
        "measured back to back in each repeat. The set is compiled from the source cache and "
        "evaluation reads the snapshot: the target is the file source's, ≤ "
        f"{TARGETS['evaluate_database']}x the empty RPC.",
        "",
    )
    target = TARGETS["evaluate_database"]
    rows: list[tuple[str, ...]] = []
    for case in database_cases.CASES:
        for name in database.sources:
            vs_empty = Series(database.vs_empty[(name, case)])
            met = verdict(vs_empty.median <= target)
            rows.append(
                (
                    f"Evaluate, {case} flag",
                    f"{name} source",
                    Series(database.empty_us[case]).show(0, " µs"),
                    Series(database.cpu_us[(name, case)]).show(0, " µs"),
                    vs_empty.show(3, "x"),
                    Series(database.vs_file[(name, case)]).show(3, "x"),
                    f"≤ {target}x: {met}",
                )
            )
            if name != "file":
                file_source = Series(database.vs_empty[("file", case)]).median
                summary.append(
                    (
                        f"Evaluate ({case}), {name} source ≤ {target}x empty RPC",
                        vs_empty.show(3, "x"),
                        f"{met} (the file source {file_source:.3f}x)",
                        "11",
                    )
                )
    report.table(("case", "source", "empty RPC", "sidecar", "/ empty", "/ file source", "target"), rows)
    incremental = getattr(database, "incremental", None)  # None in results pickled before it
    if incremental is not None:
        report.add(
            f"A follower's CPU per admin write (`python -m bench.incremental_cases`, {incremental.flags} "
            f"flags, {incremental.writes} writes of one flag each): the set rebuilt from the served one "
            "(only the changed entry read and compiled) against the full rebuild, in turns; the "
            "rebuild alone (process CPU) and the store's whole refresh on a push from an SQLite file "
            "(the changes query, the rebuild, the swap; thread CPU).",
            "",
        )
        rows = []
        for kind, label in (("rebuild", "set rebuilt"), ("follower", "follower's refresh")):
            full, partial = (
                getattr(incremental, f"{kind}_full_ms"),
                getattr(incremental, f"{kind}_incremental_ms"),
            )
            ratio = statistics.median(full) / statistics.median(partial)
            rows.append((label, Series(full).show(2, " ms"), Series(partial).show(2, " ms"), f"{ratio:.1f}x"))
        report.table(("measure", "full", "incremental", "full / incremental"), rows)
    if database.propagation_p99_ms is not None:
        p99_target = TARGETS["propagation_p99_ms"]
        met = verdict(database.propagation_p99_ms <= p99_target)
        report.add(
            f"Propagation (`python -m bench.admin_propagation --sidecars {database.sidecars} --writes "
            f"{database.writes} --postgresql URI`): {database.propagation}. "
            f"Target p99 ≤ {p99_target:.0f} ms: {met}.",
            "",
        )
        summary.append(
            (
                f"admin write → {database.sidecars} sidecars on PostgreSQL, p99 ≤ {p99_target:.0f} ms",
                f"{database.propagation_p99_ms:.1f} ms (p50 {database.propagation_p50_ms:.1f} ms)",
                met,
                "11",
            )
        )


def write_go_caller(
    report: Report, go: go_caller.GoCallerResults, summary: list[tuple[str, str, str, str]]
) -> None:
    report.add(
        "## 12. The caller's language: Go (clients/go) and Python (grpcio)",
        "",
        "`bench/go_caller.py`: server CPU per call (as in section 1-2, 100 flags, "
        f"{go.calls} calls per measurement, {go.concurrency} concurrent clients, one connection) when "
        "the caller is the Go client (`clients/go/cmd/bench`: grpc-go, Evaluate through "
        "`flagsidecar.Client.Evaluate`, the empty RPC through a raw `ClientConn.Invoke`) and when it "
        "is grpcio (`bench/load.py`), same servers, same request. In each repeat the two callers take "
        "turns, each measuring the empty RPC and then Evaluate back to back. The server's cost should "
        "not depend on the caller's language: the Go/Python ratio of Evaluate's CPU should be 1, "
        "within the run's noise (the same ratio of the empty RPC shows that noise, and what the "
        "callers' HTTP/2 stacks alone cost the server).",
        "",
    )
    rows: list[tuple[str, ...]] = []
    for case in go_caller.CASES:
        for caller in go_caller.CALLERS:
            rows.append(
                (
                    f"Evaluate, {case} flag",
                    "Go" if caller == "go" else "Python",
                    Series(go.empty_us[(caller, case)]).show(0, " µs"),
                    Series(go.cpu_us[(caller, case)]).show(0, " µs"),
                    Series(go.vs_empty[(caller, case)]).show(3, "x"),
                )
            )
    report.table(("case", "caller", "empty RPC", "Evaluate", "Evaluate / empty"), rows)
    tolerance = TARGETS["caller_language"]
    rows = []
    for case in go_caller.CASES:
        ratio = Series(go.go_vs_python[case])
        met = verdict(abs(ratio.median - 1) <= tolerance)
        rows.append(
            (
                f"Evaluate, {case} flag",
                ratio.show(3, "x"),
                Series(go.empty_go_vs_python[case]).show(3, "x"),
                f"1 ± {tolerance}: {met}",
            )
        )
        summary.append(
            (
                f"Evaluate ({case}): server CPU, Go caller / Python caller, 1 ± {tolerance}",
                ratio.show(3, "x"),
                met,
                "12",
            )
        )
    report.table(("case", "Go / Python, Evaluate", "Go / Python, empty RPC", "target"), rows)
    report.add(
        "Client-side latency (each call's wall time in the caller, µs) of the same measurements, and "
        "of measurements with a single client: Go's Evaluate next to grpcio's empty RPC called from Go "
        "(the floor), grpcio's own caller below for comparison. Medians over the measurements, "
        "(min to max).",
        "",
    )
    calls = ["empty RPC", *(f"Evaluate, {case}" for case in go_caller.CASES)]
    rows = []
    for caller in reversed(go_caller.CALLERS):  # Go first
        for clients in sorted({key[2] for key in go.p50_us}):
            for what in calls:
                if (caller, what, clients) in go.p50_us:
                    rows.append(
                        (
                            "Go" if caller == "go" else "Python",
                            what,
                            str(clients),
                            Series(go.p50_us[(caller, what, clients)]).show(0, " µs"),
                            Series(go.p99_us[(caller, what, clients)]).show(0, " µs"),
                        )
                    )
    report.table(("caller", "call", "clients", "p50", "p99"), rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benchmark suite and write BENCHMARKS.md.")
    parser.add_argument("--repeats", type=int, default=7, help="repeats of the RPC CPU measurements")
    parser.add_argument("--calls", type=int, default=3000, help="calls per RPC CPU measurement")
    parser.add_argument("--concurrency", type=int, default=4, help="clients for the RPC CPU measurements")
    parser.add_argument("--load-calls", type=int, default=6000, help="calls per throughput measurement")
    parser.add_argument("--load-levels", default="8,32", help="client counts for throughput")
    parser.add_argument("--load-repeats", type=int, default=3)
    parser.add_argument("--memory-repeats", type=int, default=3)
    parser.add_argument("--before", default="", help="revision whose sidecar/ is measured as 'before'")
    parser.add_argument(
        "--pin-cpus",
        action="store_true",
        help="RPC CPU: run every server on CPU 0 and every load generator on CPU 1 (less noise, "
        "and grpcio's threads never cross cores: a lower floor)",
    )
    parser.add_argument(
        "--interceptor",
        action="store_true",
        help="also measure the sidecar with its timing and status mapping in a grpc.ServerInterceptor",
    )
    parser.add_argument(
        "--only", default="rpc,engine,throughput,events,kafka,memory,profile,otlp,sync,inproc,database,go"
    )
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="where the raw results are kept (pickle)"
    )
    parser.add_argument(
        "--render-only", action="store_true", help="write the report from --results without measuring"
    )
    args = parser.parse_args(argv)
    if args.render_only:
        saved = pickle.loads(args.results.read_bytes())
        write_report(args.output, saved["args"], *saved["results"])
        progress(f"wrote {args.output} from {args.results}")
        return 0
    args.command = " ".join([".venv/bin/python", "-m", "bench.run", *sys.argv[1:]])
    args.revision = git_revision()  # what is measured, whatever changes before a --render-only
    only = set(args.only.split(","))
    started = datetime.datetime.now(datetime.UTC)
    clock = time.perf_counter()
    compile_bytecode(REPO)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        counts = (10, 100, 1000, 10_000)
        progress("writing flag files")
        files = write_flag_files(directory, counts)
        before = before_tree(args.before, directory) if args.before else None
        rpc = throughput = engine = events = memory = otlp = kafka = sync = inproc = None
        profiles: dict[str, list[CaseProfile]] | None = None
        database = go = None
        steps: list[tuple[str, Callable[[], None]]] = []

        def run_rpc() -> None:
            nonlocal rpc
            rpc = measure_rpc(
                files, args.repeats, args.calls, args.concurrency, before, args.pin_cpus, args.interceptor
            )

        def run_engine() -> None:
            nonlocal engine
            progress("engine against openfeature-flagd-core")
            engine = engine_cases.run()

        def run_throughput() -> None:
            nonlocal throughput
            levels = [int(level) for level in args.load_levels.split(",")]
            throughput = measure_throughput(files, args.load_repeats, args.load_calls, levels)

        def run_events() -> None:
            nonlocal events
            progress("events")
            events = event_cases.run()

        def run_kafka() -> None:
            nonlocal kafka
            progress("the Kafka exporter against a real broker")
            kafka = kafka_cases.run()

        def run_memory() -> None:
            nonlocal memory
            memory = measure_memory(files, args.memory_repeats, before, args.before)

        def run_profiles() -> None:
            nonlocal profiles
            profiles = {}
            trees = [("Now", REPO)] + ([(f"Before (revision {args.before})", before)] if before else [])
            for label, root in trees:
                progress(f"profiles: {label}")
                profiles[label] = [
                    profile_case(case, path, method, request, args.calls, root=root)
                    for case, path, method, request in profile_cases(files[100])
                ]

        def run_otlp() -> None:
            nonlocal otlp
            progress("Evaluate with the otlp exporter")
            otlp = otlp_cases.run(files[100], args.repeats, args.calls, args.concurrency, args.pin_cpus)

        def run_sync() -> None:
            nonlocal sync
            progress("the sync stream: propagation and idle streams")
            sync = sync_cases.run()

        def run_inproc() -> None:
            nonlocal inproc
            progress("in-process evaluation through the client package")
            inproc = inproc_cases.run_isolated()

        def run_database() -> None:
            nonlocal database
            progress("a database source: Evaluate, and propagation to 20 sidecars")
            database = database_cases.run(
                files[100], args.repeats, args.calls, args.concurrency, pin=args.pin_cpus
            )

        def run_go() -> None:
            nonlocal go
            progress("the caller's language: Go and Python callers")
            go = go_caller.run(files[100], args.repeats, args.calls, args.concurrency, pin=args.pin_cpus)

        steps = [
            ("rpc", run_rpc),
            ("engine", run_engine),
            ("throughput", run_throughput),
            ("events", run_events),
            ("kafka", run_kafka),
            ("memory", run_memory),
            ("profile", run_profiles),
            ("otlp", run_otlp),
            ("sync", run_sync),
            ("inproc", run_inproc),
            ("database", run_database),
            ("go", run_go),
        ]
        for name, step in steps:
            if name in only:
                step()
    elapsed = time.perf_counter() - clock
    results = (
        started,
        elapsed,
        rpc,
        throughput,
        engine,
        events,
        memory,
        profiles,
        otlp,
        kafka,
        sync,
        inproc,
        database,
        go,
    )
    args.results.write_bytes(pickle.dumps({"args": args, "results": results}))
    write_report(args.output, args, *results)
    progress(f"wrote {args.output} in {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())

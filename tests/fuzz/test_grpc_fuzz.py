"""A bounded, seeded fuzz run over every gRPC method the real `flag-sidecar serve` lists by reflection.

No call may end INTERNAL or UNKNOWN (or hang, or see the server gone), and after every batch of cases
the process must be alive, answer a normal Evaluate promptly, stay within a memory bound and have
logged no Python traceback. FUZZ_CASES sets the number of cases of the whole module (`make fuzz`
raises it), FUZZ_SEED the seed; the cases are the same on every run with the same two.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import yaml

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc
from tests.fuzz import grpc_fuzz
from tests.fuzz.grpc_fuzz import Case, CaseFactory, Method, Report
from tests.serve_process import REPO, ServeProcess

CASES = int(os.environ.get("FUZZ_CASES", "3000"))
SEED = int(os.environ.get("FUZZ_SEED", "0"))
# Each test's share of CASES.
SHARES = {"malformed": 0.4, "hostile": 0.3, "abandoned": 0.15, "metadata": 0.15}
BATCH = 100  # cases between two checks of the process
FINDING_BATCH = 8  # a known finding stops at its first failing batch: before it can wedge the server
PARALLEL = 4  # calls in flight at once: concurrency is part of what is fuzzed, and it is faster
RSS_GROWTH_LIMIT = 100 * 1024 * 1024  # bytes over the RSS measured once the server answers
CHECK_DEADLINE = 5.0  # seconds for the probe Evaluate after each batch
EXAMPLE_FLAGS = REPO / "examples" / "flags.yaml"


@dataclass(frozen=True)
class Finding:
    """A known fault, found by this suite and not fixed yet. Its cases are left out of the strict runs
    and run on their own, in a process of their own, as a strict xfail: the fix makes that test pass,
    which fails the run until the finding is deleted here. `scope` is a service or a method path."""

    scope: str
    kinds: tuple[str, ...]  # the kinds of case (SHARES) that show it
    reason: str

    def covers(self, method: Method) -> bool:
        return self.scope in (method.service, method.path)


def _finding_of(method: Method, kind: str) -> Finding | None:
    """The finding whose cases of `kind` include `method`'s: a method's own, else its service's."""
    covering = [f for f in FINDINGS if kind in f.kinds and f.covers(method)]
    return max(covering, key=lambda f: f.scope == method.path, default=None)


FINDINGS = (
    # Health and reflection answered a malformed request with grpcio's INTERNAL and a traceback, and
    # malformed Watch calls four at a time once left the server answering nothing (the non-blocking
    # health servicer's deadlock): both fixed by the stream admission and decoding of every service
    # (sidecar/server/streams.py, decoding.py), so their cases run with the others again. And
    # Health/List, which reflection lists, answered UNIMPLEMENTED with a traceback: grpcio's health
    # servicer lacks it (sidecar/server/health_service.py has it).
)
EXPECTED_SERVICES = {
    "flagd.evaluation.v1.Service",
    "flagd.evaluation.v2.Service",
    "flagsidecar.v1.EvaluationService",
    "flagsidecar.v1.EventService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
}  # every service the sidecar is known to serve; reflection may list more (they are fuzzed too)
FACTORIES: dict[str, CaseFactory] = {
    "malformed": grpc_fuzz.malformed_case,
    "hostile": grpc_fuzz.hostile_case,
    "abandoned": grpc_fuzz.abandoned_case,
    "metadata": grpc_fuzz.metadata_case,
}


# A generous wall-clock bound for pytest-timeout, which grows with the number of cases.
pytestmark = pytest.mark.timeout(120 + CASES // 20)


class FuzzedServer:
    """`flag-sidecar serve` on a copy of the example flags, every service and listener on, events
    exported to files (so hostile Track details and contexts reach an exporter's encoder)."""

    def __init__(self, directory: Path) -> None:
        flags = directory / "flags.yaml"
        shutil.copyfile(EXAMPLE_FLAGS, flags)
        self.process = ServeProcess(
            flags,
            "--flagd-listen", "127.0.0.1:0",
            "--health-listen", "127.0.0.1:0",
            "--context-value", "region=eu",
            "--context-from-header", "x-tenant=tenant",
            "--exporter", f"file:dir={directory / 'events'}",
            "--flush-interval", "1",
        )  # fmt: skip
        self.channel = grpc.insecure_channel(self.process.address())
        self._evaluation = evaluation_pb2_grpc.EvaluationServiceStub(self.channel)
        self.methods = grpc_fuzz.reflected_methods(self.channel)
        document = yaml.safe_load(EXAMPLE_FLAGS.read_text())
        self.words = grpc_fuzz.vocabulary(self.methods, _words(document))
        self._checked_lines = 0
        self.start_rss: int | None = None
        self.check("at start")
        self.start_rss = self.rss()  # after a first Evaluate: imports done, threads started

    @property
    def pid(self) -> int:
        return self.process.process.pid

    def rss(self) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB$", status, re.MULTILINE)
        assert match, status
        return int(match.group(1)) * 1024

    def check(self, after: str) -> None:
        """The process is alive, answers a normal Evaluate, and has logged no traceback since the
        last check; its RSS is within the bound (from the second check on)."""
        returncode = self.process.process.poll()
        assert returncode is None, f"serve exited with {returncode} after {after}:\n{self.log_tail()}"
        request = evaluation_pb2.EvaluateRequest(flag_key="new-checkout")
        request.user.id = "probe"
        request.user.context.update({"email": "probe@example.com"})
        try:
            answer = self._evaluation.Evaluate(request, timeout=CHECK_DEADLINE).evaluation
        except grpc.RpcError as error:
            pytest.fail(f"the probe Evaluate failed after {after}: {error.code()} {error.details()}")
        assert (answer.variant, answer.value.bool_value) == ("on", True), answer
        lines = self.process.lines[self._checked_lines :]
        self._checked_lines += len(lines)
        tracebacks = [line for line in lines if "Traceback" in line]
        assert not tracebacks, f"serve logged a traceback after {after}:\n" + "\n".join(tracebacks[:3])
        if self.start_rss is not None:
            grown = self.rss() - self.start_rss
            assert grown < RSS_GROWTH_LIMIT, f"RSS grew by {grown / 2**20:.0f} MiB after {after}"

    def log_tail(self) -> str:
        return "\n".join(self.process.lines[-30:])

    def fuzz(self, cases: Iterable[Case], batch: int = BATCH) -> Report:
        """Run `cases`, PARALLEL at a time, checking the process after every `batch` of them; stop
        after the first batch with a problem (what went wrong then is the report)."""
        report = Report()
        pending: list[Case] = []
        with futures.ThreadPoolExecutor(PARALLEL) as pool:
            for case in cases:
                pending.append(case)
                if len(pending) == batch:
                    self._batch(pool, pending, report)
                    pending = []
                    if report.problems:
                        return report
            if pending:
                self._batch(pool, pending, report)
        return report

    def _batch(self, pool: futures.ThreadPoolExecutor, batch: list[Case], report: Report) -> None:
        outcomes = pool.map(lambda case: grpc_fuzz.run(self.channel, case), batch)
        for case, outcome in zip(batch, outcomes, strict=True):
            report.add(case, outcome)
        self.check(f"cases {batch[0].label} .. {batch[-1].label}")

    def stop(self) -> None:
        self.channel.close()
        self.process.stop()


def _words(document: dict) -> list[str]:
    """Flag, variant and segment keys and the context attributes the rules read."""
    words: set[str] = set()
    for flag in document.get("flags", []):
        words.add(flag["key"])
        words.update(v["key"] for v in flag.get("variants", []))
        for rule in flag.get("rules", []):
            words.update(c.get("property", "") for c in rule.get("constraints", []))
            words.update(str(v) for c in rule.get("constraints", []) for v in c.get("values", []))
    for segment in document.get("segments", []):
        words.add(segment["key"])
    return sorted(words)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzedServer]:
    fuzzed = FuzzedServer(tmp_path_factory.mktemp("fuzz"))
    yield fuzzed
    fuzzed.stop()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[FuzzedServer]:
    """A process of the test's own, for a finding's cases: their failures (tracebacks, a wedged
    server) stay out of `server` and of the other findings."""
    fuzzed = FuzzedServer(tmp_path)
    yield fuzzed
    fuzzed.stop()


def _fuzz(server: FuzzedServer, kind: str, methods: list[Method], group: str, batch: int = BATCH) -> None:
    """Run `kind`'s share of CASES (for `methods`' part of all the methods) over `methods`."""
    assert methods, f"{kind}[{group}]: no method to fuzz"
    test = f"{kind}[{group}]"
    count = max(len(methods), round(CASES * SHARES[kind] * len(methods) / len(server.methods)))
    report = server.fuzz(grpc_fuzz.cases(test, FACTORIES[kind], methods, count, SEED, server.words), batch)
    done = sum(report.codes.values())
    assert not report.problems, (
        f"{len(report.problems)} of the first {done} of {count} cases went wrong "
        f"(FUZZ_SEED={SEED}, FUZZ_CASES={CASES}):\n" + "\n".join(report.problems[:20])
    )
    # Every method was called and answered (whatever the status): the suite did reach each one.
    assert {path for path, _code in report.codes} == {m.path for m in methods}


def _fuzz_all_but_findings(server: FuzzedServer, kind: str) -> None:
    methods = [m for m in server.methods if _finding_of(m, kind) is None]
    _fuzz(server, kind, methods, "all")


def test_reflection_lists_every_service_and_method(server):
    services = {m.service for m in server.methods}
    assert services >= EXPECTED_SERVICES
    kinds = {(m.path, m.client_streaming, m.server_streaming) for m in server.methods}
    assert {
        ("/grpc.health.v1.Health/Watch", False, True),
        ("/flagsidecar.v1.EventService/Track", True, False),
        ("/flagd.evaluation.v2.Service/EventStream", False, True),
        ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", True, True),
    } <= kinds


@pytest.mark.parametrize("kind", SHARES)
def test_cases_depend_on_the_seed_alone(server, kind):
    """The same seed gives the same cases on every run (`make test` always runs the same ones, and a
    reported case can be regenerated); another seed gives others."""

    def generated(seed: int) -> list[Case]:
        return list(grpc_fuzz.cases(kind, FACTORIES[kind], server.methods, 60, seed, server.words))

    assert generated(SEED) == generated(SEED)
    assert generated(SEED) != generated(SEED + 1)


def test_malformed_requests(server):
    _fuzz_all_but_findings(server, "malformed")


def test_hostile_values_in_well_formed_requests(server):
    _fuzz_all_but_findings(server, "hostile")


def test_abandoned_and_cancelled_calls(server):
    _fuzz_all_but_findings(server, "abandoned")
    # Abandoned streams gave their slots back: a new EventStream still opens and says ready at once.
    for version in ("v1", "v2"):
        stream = server.channel.unary_stream(f"/flagd.evaluation.{version}.Service/EventStream")(
            b"", timeout=CHECK_DEADLINE
        )
        assert next(stream)
        stream.cancel()


def test_odd_metadata(server):
    _fuzz_all_but_findings(server, "metadata")


@pytest.mark.parametrize(
    "finding",
    [pytest.param(f, marks=pytest.mark.xfail(strict=True, reason=f.reason), id=f.scope) for f in FINDINGS],
)
def test_known_finding(own_server, finding):
    """The cases a finding covers, in a process of their own."""
    for kind in finding.kinds:
        methods = [m for m in own_server.methods if _finding_of(m, kind) is finding]
        _fuzz(own_server, kind, methods, finding.scope, FINDING_BATCH)


def test_the_server_survived_the_whole_run(server):
    """Last in the module: the shared process is still alive, bounded and quiet after every case."""
    time.sleep(1.5)  # a flush interval: the events of the run reach the file exporter's encoder
    server.check("the whole run")


BURST = 40  # streams of one method open at once on one connection: more than it may hold
PER_CONNECTION = 16  # --max-streams-per-connection's default


def test_a_burst_of_streams_abandoned_together(server):
    """Every server-streaming method, BURST streams open at once, then all cancelled: a stream over
    a limit is RESOURCE_EXHAUSTED, and the cancelled streams give their slots back at once (the same
    burst again opens as many)."""
    streaming = [m for m in server.methods if m.server_streaming and _finding_of(m, "abandoned") is None]
    assert streaming
    for method in streaming:
        first, again = _burst(server, method), _burst(server, method)
        for outcomes in (first, again):
            assert set(outcomes) <= {"open", grpc.StatusCode.RESOURCE_EXHAUSTED}, (method.path, outcomes)
        assert again.count("open") == first.count("open") == PER_CONNECTION, (method.path, first, again)
        server.check(f"bursts of {method.path}")


def _burst(server: FuzzedServer, method: Method) -> list[object]:
    """Open BURST streams, read each one's first answer, cancel them all: "open" or the error code."""
    channel = server.channel
    gen = grpc_fuzz.Generator(random.Random(f"{SEED}:burst:{method.path}"), server.words)
    request = gen.message(method.input, hostile=False)
    held = []
    calls = []
    for _ in range(BURST):
        if method.client_streaming:
            requests = grpc_fuzz.Requests((request,), hold=True)
            held.append(requests)
            calls.append(channel.stream_stream(method.path)(iter(requests), timeout=grpc_fuzz.CALL_TIMEOUT))
        else:
            calls.append(channel.unary_stream(method.path)(request, timeout=grpc_fuzz.CALL_TIMEOUT))
    outcomes: list[object] = []
    for call in calls:
        try:
            next(call)
            outcomes.append("open")
        except grpc.RpcError as error:
            outcomes.append(error.code())
    for call in calls:
        call.cancel()
    for requests in held:
        requests.release()
    return outcomes

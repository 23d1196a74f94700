"""SIGTERM on a real `flag-sidecar serve` process: readiness off, new calls refused, in-flight
calls finish, exit 0 before the deadline. The slow in-flight calls are real work: EvaluateAll
with debug traces over a few thousand flags, queued behind one another. Also the health-only
listener (--health-listen): readiness and liveness there, before and during the drain."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from flagd.evaluation.v2 import evaluation_pb2 as flagd_v2
from flagd.evaluation.v2 import evaluation_pb2_grpc as flagd_v2_grpc
from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc, event_pb2, event_pb2_grpc
from tests.conftest import eventually

REPO = Path(__file__).resolve().parents[2]
FLAG_COUNT = 3000
# Tests that must still see calls in flight after the signal and the health flip: six debug
# EvaluateAll calls over this many flags take a few seconds (5,000 drained too soon on a faster
# machine, before the health checks were read). Not many more: each answer is about 3.7 MB, under
# the default --max-response-bytes (4 MiB), and answers still being written when the process
# exits can be cut by grpc core's reset.
DRAIN_FLAG_COUNT = 8000
# Long enough for grpcio to take every one of those calls in before the signal: its polling thread
# needs the GIL to hand a call to a worker, and the calls already running hold it most of the time.
# A call still waiting in grpc core when shutdown begins is cancelled (the README says so).
SETTLE_SECONDS = 0.6
# Fewer than the server's 8 workers: each call is taken off the transport at once and starts.
# (grpc core cancels calls it has received but grpcio has not yet picked up when shutdown
# begins, which only happens with a backlog; the README says so.)
SLOW_CALLS = 6


def many_flags(path: Path, count: int = FLAG_COUNT) -> Path:
    rule = {
        "id": "r",
        "constraints": [
            {"property": "email", "operation": "ENDS_WITH", "values": ["@example.com"]},
            {"property": "plan", "operation": "ONE_OF", "values": ["pro", "enterprise"]},
        ],
        "distributions": [{"variant": "a", "percentage": 50}, {"variant": "b", "percentage": 50}],
    }
    flags = [
        {
            "key": f"flag-{i:05d}",
            "enabled": True,
            "variants": [{"key": "a", "value": i}, {"key": "b", "value": -i}],
            "defaultVariantWhenOn": "a",
            "defaultVariantWhenOff": "a",
            "rules": [rule],
        }
        for i in range(count)
    ]
    path.write_text(json.dumps({"flags": flags}))  # JSON: loads in a fraction of YAML's time
    return path


LISTEN = ("--listen", "127.0.0.1:0", "--management-listen", "127.0.0.1:0")


class Sidecar:
    def __init__(self, flag_file: Path, *extra: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLAG_SIDECAR_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sidecar.cli", "serve", "--flags", str(flag_file), *LISTEN, *extra],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.records: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.records.append(json.loads(line))  # every line is one JSON object

    def message_matching(self, prefix: str) -> str | None:
        return next((r["message"] for r in list(self.records) if r["message"].startswith(prefix)), None)

    def events(self) -> list[str]:
        return [r["event"] for r in list(self.records) if "event" in r]

    def wait_ready(self) -> tuple[str, str]:
        def addresses() -> tuple[str, str] | None:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited early with {self.process.returncode}: {self.records}")
            grpc_line = self.message_matching("listening on ")
            http_line = self.message_matching("management endpoints on ")
            if grpc_line is None or http_line is None:
                return None
            return grpc_line.split()[2], http_line.split()[3]

        grpc_address, http_base = eventually(addresses, timeout=20)
        eventually(lambda: readyz(http_base)[0] == 200, timeout=10)
        return grpc_address, http_base

    def health_address(self) -> str:
        """The --health-listen address, with the bound port, from its log line."""
        line = eventually(lambda: self.message_matching("gRPC health checks on "), timeout=20)
        return line.split()[4]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)
        self._reader.join(5)


def readyz(base: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, "unreachable"


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    started: list[Sidecar] = []

    def run(*extra: str, flags: int = FLAG_COUNT) -> Sidecar:
        started.append(Sidecar(many_flags(tmp_path / f"flags-{flags}.json", flags), *extra))
        return started[-1]

    yield run
    for sidecar in started:
        sidecar.stop()


SLOW_REQUEST = evaluation_pb2.EvaluateAllRequest(
    user=evaluation_pb2.User(id="u1"),
    debug=True,  # a stack trace for each of the flags
)
SLOW_REQUEST.user.context.update({"email": "a@example.com", "plan": "pro"})
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]


def fresh_call_code(address: str) -> grpc.StatusCode:
    """The status of an EvaluateAll on a new connection (OK, or its error code). A call the server
    accepts runs into its short deadline: the caller can soon ask again."""
    with grpc.insecure_channel(address) as fresh:
        try:
            evaluation_pb2_grpc.EvaluationServiceStub(fresh).EvaluateAll(SLOW_REQUEST, timeout=0.25)
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def test_sigterm_drains_in_flight_calls_refuses_new_ones_and_exits_0(start) -> None:
    sidecar = start("--shutdown-grace", "20", "--shutdown-timeout", "25", flags=DRAIN_FLAG_COUNT)
    address, http_base = sidecar.wait_ready()
    channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
    stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
    in_flight = [stub.EvaluateAll.future(SLOW_REQUEST, timeout=60) for _ in range(SLOW_CALLS)]
    time.sleep(SETTLE_SECONDS)  # every call is running

    began = time.monotonic()
    sidecar.process.send_signal(signal.SIGTERM)
    # Readiness goes first, while the management listener still answers.
    eventually(lambda: readyz(http_base) == (503, "not ready: shutting down\n"), timeout=5)

    # A new call, on a new connection, is refused while the old ones drain. Readiness flips a
    # moment before the gRPC server stops accepting calls, and with the workers busy that moment
    # can be long on a loaded machine: a call that slips in before is simply answered, so ask again.
    # Whether a call still runs is read after the refusal, so that it says the refusal came during
    # the drain, not after the server had stopped.
    def refused_while_draining() -> tuple[bool] | None:
        if fresh_call_code(address) != grpc.StatusCode.UNAVAILABLE:
            return None
        return (not all(call.done() for call in in_flight),)

    (draining,) = eventually(refused_while_draining, timeout=10)
    assert draining, "the calls finished too early to prove anything"

    # Every in-flight call completes with its full answer.
    for call in in_flight:
        assert call.result().total == DRAIN_FLAG_COUNT
    assert sidecar.process.wait(timeout=25) == 0
    assert time.monotonic() - began < 25
    channel.close()
    sidecar.stop()
    events = sidecar.events()
    assert events.index("shutdown_started") < events.index("shutdown_complete")
    assert sidecar.records[-1]["event"] == "shutdown_complete"


def test_exits_0_by_the_deadline_when_calls_outlive_the_grace(start) -> None:
    # The deadline leaves room for a loaded machine (two cores shared with other test processes):
    # what is tested is that calls past the grace are cancelled and the exit is clean and bounded.
    sidecar = start("--shutdown-grace", "0.2", "--shutdown-timeout", "6")
    address, _ = sidecar.wait_ready()
    channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
    stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
    in_flight = [stub.EvaluateAll.future(SLOW_REQUEST, timeout=60) for _ in range(SLOW_CALLS * 3)]
    time.sleep(0.3)
    began = time.monotonic()
    sidecar.process.send_signal(signal.SIGTERM)
    assert sidecar.process.wait(timeout=15) == 0
    assert time.monotonic() - began < 6.5
    # Calls still queued when the grace ran out were cancelled, not left hanging.
    codes = {call.exception().code() if call.exception() else grpc.StatusCode.OK for call in in_flight}
    assert codes - {grpc.StatusCode.OK} <= {grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE}
    assert codes != {grpc.StatusCode.OK}
    channel.close()


def test_an_early_sigint_exits_cleanly(start) -> None:
    sidecar = start()
    eventually(lambda: sidecar.message_matching("management endpoints on ") is not None, timeout=20)
    sidecar.process.send_signal(signal.SIGINT)
    assert sidecar.process.wait(timeout=20) == 0


def test_sigterm_flushes_the_events_of_the_last_calls(start, tmp_path: Path) -> None:
    events_dir = tmp_path / "events"
    # A long flush interval: nothing is written before the signal, everything at shutdown.
    sidecar = start("--exporter", f"file:dir={events_dir}", "--flush-interval", "600")
    address, http_base = sidecar.wait_ready()
    with grpc.insecure_channel(address) as channel:
        stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        for i in range(25):
            request = evaluation_pb2.EvaluateRequest(
                flag_key="flag-00007", user=evaluation_pb2.User(id=f"u{i}")
            )
            stub.Evaluate(request, timeout=5)
    with urllib.request.urlopen(http_base + "/metrics", timeout=2) as response:
        exposition = response.read().decode()
    assert 'flag_sidecar_events_enqueued_total{exporter="file"} 25.0' in exposition
    assert not list(events_dir.glob("*.jsonl"))

    sidecar.process.send_signal(signal.SIGTERM)
    assert sidecar.process.wait(timeout=20) == 0
    lines = [
        json.loads(line) for file in events_dir.glob("*.jsonl") for line in file.read_text().splitlines()
    ]
    assert sorted(event["userKey"] for event in lines) == sorted(f"u{i}" for i in range(25))
    assert {event["key"] for event in lines} == {"flag-00007"}


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
LIVENESS = "liveness"


def health_status(channel: grpc.Channel, service: str = "") -> int:
    request = health_pb2.HealthCheckRequest(service=service)
    return health_pb2_grpc.HealthStub(channel).Check(request, timeout=5).status


def list_services(channel: grpc.Channel) -> list[str]:
    """Server reflection's list_services (what `grpcurl list` asks)."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    response = next(stub.ServerReflectionInfo(requests, timeout=5))
    return [service.name for service in response.list_services_response.service]


def test_health_listener_serves_readiness_and_liveness_and_nothing_else(start) -> None:
    sidecar = start(
        "--health-listen",
        "127.0.0.1:0",
        "--shutdown-grace",
        "20",
        "--shutdown-timeout",
        "25",
        flags=DRAIN_FLAG_COUNT,
    )
    address, _ = sidecar.wait_ready()
    health_address = sidecar.health_address()
    assert health_address != address
    health_channel = grpc.insecure_channel(health_address)
    channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)

    eventually(lambda: health_status(health_channel) == SERVING, timeout=5)
    assert health_status(health_channel, LIVENESS) == SERVING
    assert health_status(health_channel, "flagsidecar.v1.EvaluationService") == SERVING
    # The evaluation API and reflection are served on --listen only.
    request = evaluation_pb2.EvaluateRequest(flag_key="flag-00001", user=evaluation_pb2.User(id="u1"))
    assert evaluation_pb2_grpc.EvaluationServiceStub(channel).Evaluate(request, timeout=5).evaluation.variant
    with pytest.raises(grpc.RpcError) as caught:
        evaluation_pb2_grpc.EvaluationServiceStub(health_channel).Evaluate(request, timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "grpc.health.v1.Health" in list_services(channel)
    with pytest.raises(grpc.RpcError) as caught:
        list_services(health_channel)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED

    # During the drain: not ready, but alive (a liveness failure now would kill the container).
    stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
    in_flight = [stub.EvaluateAll.future(SLOW_REQUEST, timeout=60) for _ in range(SLOW_CALLS)]
    time.sleep(SETTLE_SECONDS)  # every call is running
    sidecar.process.send_signal(signal.SIGTERM)
    eventually(lambda: health_status(health_channel) == NOT_SERVING, timeout=5)
    assert health_status(health_channel, LIVENESS) == SERVING
    assert health_status(health_channel, "flagsidecar.v1.EvaluationService") == NOT_SERVING
    # Checked after the statuses: a call still running now means each of them was read during the
    # drain (once the last call ends, the server stops and the health listener after it).
    assert not all(call.done() for call in in_flight), "the calls finished too early to prove anything"

    for call in in_flight:
        assert call.result().total == DRAIN_FLAG_COUNT
    assert sidecar.process.wait(timeout=25) == 0
    channel.close()
    health_channel.close()
    sidecar.stop()
    messages = [record["message"] for record in sidecar.records]
    # The health listener stops after the main server, as the last step before the exit.
    assert messages.index("server stopped") < messages.index("health listener stopped")
    assert sidecar.records[-1]["event"] == "shutdown_complete"


def test_sigterm_ends_within_the_timeout_whatever_streams_are_open(start, tmp_path: Path) -> None:
    """Streams of every kind open (idle Track with events accepted, health Watch, flagd EventStream,
    reflection), and malformed reflection calls before the signal (which once kept grpcio from ever
    stopping): exit 0 within --shutdown-timeout, with every accepted event flushed."""
    events_dir = tmp_path / "events"
    sidecar = start(
        "--exporter",
        f"file:dir={events_dir}",
        "--flush-interval",
        "600",
        "--shutdown-grace",
        "2",
        "--shutdown-timeout",
        "8",
        flags=10,
    )
    address, _ = sidecar.wait_ready()
    channel = grpc.insecure_channel(address)
    stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
    for i in range(5):
        stub.Evaluate(
            evaluation_pb2.EvaluateRequest(flag_key="flag-00001", user=evaluation_pb2.User(id=f"u{i}"))
        )
    release = threading.Event()

    def track() -> Iterator[event_pb2.TrackRequest]:
        for i in range(3):
            yield event_pb2.TrackRequest(name=f"t{i}", user=evaluation_pb2.User(id="tracker"))
        release.wait(30)

    tracking = event_pb2_grpc.EventServiceStub(channel).Track.future(track(), timeout=30)
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=30)
    assert next(watch).status == SERVING
    event_stream = flagd_v2_grpc.ServiceStub(channel).EventStream(flagd_v2.EventStreamRequest(), timeout=30)
    assert next(event_stream).type == "provider_ready"

    def reflection_requests() -> Iterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        release.wait(30)

    reflecting = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
        reflection_requests(), timeout=30
    )
    assert next(reflecting).list_services_response.service
    malformed = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    for _ in range(2):
        with pytest.raises(grpc.RpcError) as caught:
            list(malformed(iter([b"\xff\xff\xff"]), timeout=5))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    started = time.monotonic()
    sidecar.process.send_signal(signal.SIGTERM)
    assert sidecar.process.wait(timeout=15) == 0
    assert time.monotonic() - started < 8
    assert "shutdown_complete" in sidecar.events()
    assert "shutdown_deadline_exceeded" not in sidecar.events()
    # Every handler ended: none was left stuck (a malformed reflection call's once was, for good).
    assert "shutdown_handlers_abandoned" not in sidecar.events()
    release.set()
    channel.close()
    with pytest.raises(grpc.RpcError):
        tracking.result(timeout=5)
    lines = [
        json.loads(line) for file in events_dir.glob("*.jsonl") for line in file.read_text().splitlines()
    ]
    assert sorted(e["userKey"] for e in lines if e["kind"] == "feature") == [f"u{i}" for i in range(5)]
    assert sorted(e["key"] for e in lines if e["kind"] == "tracking") == ["t0", "t1", "t2"]


def test_malformed_reflection_calls_do_not_keep_the_server_from_stopping(start) -> None:
    # They once left grpcio unable to stop at all: exit 1 at the --shutdown-timeout deadline.
    sidecar = start(flags=10)
    address, _ = sidecar.wait_ready()
    with grpc.insecure_channel(address) as channel:
        malformed = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        for _ in range(2):
            with pytest.raises(grpc.RpcError) as caught:
                list(malformed(iter([b"\xff\xff\xff"]), timeout=5))
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    started = time.monotonic()
    sidecar.process.send_signal(signal.SIGTERM)
    assert sidecar.process.wait(timeout=20) == 0
    assert time.monotonic() - started < 5  # nothing is in flight: no grace to wait out
    assert "shutdown_complete" in sidecar.events()

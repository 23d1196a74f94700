"""`flag-sidecar serve` with exporters, as a real process: events out, SIGTERM flush, replay."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc, event_pb2, event_pb2_grpc
from tests.conftest import eventually
from tests.serve_process import run_cli

from .helpers import Receiver


class Switch:
    def __init__(self) -> None:
        self.failing = False

    def __call__(self, _n: int) -> tuple[int, dict[str, str]]:
        return (503, {}) if self.failing else (200, {})


@pytest.fixture
def switch() -> Switch:
    return Switch()


@pytest.fixture
def receiver(switch: Switch) -> Iterator[Receiver]:
    r = Receiver(respond=switch)
    yield r
    r.close()


def call(address: str, evaluations: int) -> int:
    """Make `evaluations` Evaluate calls, one EvaluateAll and two Track events; return the event count."""
    with grpc.insecure_channel(address) as channel:
        stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        request = evaluation_pb2.EvaluateRequest(flag_key="banner-color", user=evaluation_pb2.User(id="ada"))
        for _ in range(evaluations):
            stub.Evaluate(request, timeout=5)
        total = stub.EvaluateAll(evaluation_pb2.EvaluateAllRequest(user=evaluation_pb2.User(id="ada"))).total
        requests = [event_pb2.TrackRequest(name=n, user=evaluation_pb2.User(id="ada")) for n in ("a", "b")]
        assert event_pb2_grpc.EventServiceStub(channel).Track(iter(requests), timeout=5).accepted == 2
    return evaluations + total + 2


def file_events(directory: Path) -> list[dict]:
    paths = sorted(directory.glob("*.jsonl"))
    return [json.loads(line) for path in paths for line in path.read_text().splitlines()]


def test_serve_exports_to_file_and_webhook_and_flushes_on_sigterm(
    serve, receiver: Receiver, tmp_path: Path
) -> None:
    sidecar = serve(
        *("--exporter", f"file:dir={tmp_path}/events,format=jsonl"),
        *("--exporter", f"webhook:url={receiver.url},secret=s3cret"),
        *("--spool-dir", str(tmp_path / "spool"), "--flush-interval", "3600"),
    )
    expected = call(sidecar.address(), 10)
    assert file_events(tmp_path / "events") == []  # a long flush interval: only shutdown flushes
    sidecar.process.send_signal(signal.SIGTERM)
    assert sidecar.process.wait(timeout=20) == 0, sidecar.log
    written = file_events(tmp_path / "events")
    assert len(written) == expected
    assert sorted(e["eventId"] for e in written) == sorted(receiver.delivered_ids())
    assert {e["kind"] for e in written} == {"feature", "tracking"}
    assert "X-Hub-Signature-256" in receiver.requests[0].headers


def test_events_spooled_at_shutdown_are_delivered_by_the_next_run(
    serve, receiver: Receiver, switch: Switch, tmp_path: Path
) -> None:
    options = (
        *("--exporter", f"webhook:url={receiver.url}"),
        *("--spool-dir", str(tmp_path / "spool"), "--flush-interval", "0.05"),
        *("--events-flush-timeout", "0.5"),
    )
    switch.failing = True
    first = serve(*options)
    expected = call(first.address(), 20)
    eventually(lambda: receiver.requests)
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=20) == 0, first.log
    assert receiver.delivered_ids() == []

    switch.failing = False
    second = serve(*options)
    second.address()
    eventually(lambda: len(set(receiver.delivered_ids())) == expected, timeout=15)


def test_bad_exporters_stop_the_start(sample_flag_file: Path, tmp_path: Path) -> None:
    result = run_cli("serve", "--flags", str(sample_flag_file), "--exporter", ":nope")
    assert result.returncode == 2
    assert "invalid exporter" in result.stderr
    flags = ("--flags", str(sample_flag_file), "--listen", "127.0.0.1:0")
    # An unknown kind is an option error at parse time (exit 2), naming the exporters there are.
    result = run_cli("serve", *flags, "--exporter", "s3:x=1")
    assert result.returncode == 2, result.stderr
    assert (
        "unknown exporter kind 's3'; the exporters are file, kafka, log, otlp, users, webhook"
        in result.stderr
    )
    assert "--exporter" in result.stderr
    # The kind's own options are checked when the pipeline is built: exit 1.
    result = run_cli("serve", *flags, "--exporter", "file:nope=1")
    assert result.returncode == 1
    result = run_cli("serve", *flags, "--exporter", "kafka:brokers=127.0.0.1:9")
    assert result.returncode == 1
    assert "option 'topic' is required" in result.stderr


def test_sighup_reloads_the_flags_and_loses_no_event(serve, tmp_path: Path) -> None:
    """SIGHUP's default action kills a process on the spot; serve takes it as "reload the flags"."""
    sidecar = serve(
        *("--exporter", f"file:dir={tmp_path}/events,format=jsonl"),
        *("--flush-interval", "3600"),  # nothing is written before the SIGTERM: all of it is in memory
    )
    address = sidecar.address()
    expected = call(address, 10)
    loads = sidecar.log.count("loaded ")
    for _ in range(2):
        sidecar.process.send_signal(signal.SIGHUP)
        eventually(lambda n=loads: sidecar.log.count("loaded ") > n, timeout=10)
        loads = sidecar.log.count("loaded ")
    assert sidecar.log.count("received SIGHUP: reloading the flag file") == 2
    assert sidecar.process.poll() is None
    expected += call(address, 5)  # still serving, and still recording
    sidecar.process.send_signal(signal.SIGTERM)
    assert sidecar.process.wait(timeout=20) == 0, sidecar.log
    assert len(file_events(tmp_path / "events")) == expected

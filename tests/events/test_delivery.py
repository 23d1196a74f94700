"""At-least-once delivery end to end: a real HTTP receiver, real processes, SIGKILL and SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.events import PipelineConfig, RetryPolicy, build_pipeline
from tests.conftest import eventually

from .helpers import Receiver, evaluation

DRIVER = Path(__file__).with_name("driver.py")
REPO = Path(__file__).resolve().parents[2]


class Switch:
    """A receiver answer that can be flipped between an outage (503), a flaky receiver (three
    requests in four fail) and health (200)."""

    def __init__(self, failing: bool) -> None:
        self.failing = failing
        self.flaky = False

    def __call__(self, n: int) -> tuple[int, dict[str, str]]:
        if self.failing or (self.flaky and n % 4 != 3):
            return (503, {"Retry-After": "0"})
        return (200, {})


@pytest.fixture
def switch() -> Switch:
    return Switch(failing=False)


@pytest.fixture
def receiver(switch: Switch) -> Iterator[Receiver]:
    r = Receiver(respond=switch)
    yield r
    r.close()


def assert_one_id_per_event(receiver: Receiver) -> None:
    """A duplicate delivery is allowed, but only ever with the event's own eventId."""
    ids_by_event: dict[str, set[str]] = defaultdict(set)
    for event in receiver.delivered():
        ids_by_event[event["userKey"]].add(event["eventId"])
    assert all(len(ids) == 1 for ids in ids_by_event.values())


def test_outage_then_recovery_delivers_every_event(
    tmp_path: Path, receiver: Receiver, switch: Switch
) -> None:
    switch.failing = True
    pipeline = build_pipeline(
        PipelineConfig(
            exporters=[f"webhook:url={receiver.url},timeout=2"],
            flush_interval=0.02,
            max_events_in_memory=20,
            spool_dir=tmp_path / "spool",
            retry=RetryPolicy(initial=0.01, maximum=0.1),
        )
    )
    pipeline.start()
    for i in range(300):
        pipeline.add_evaluation(evaluation(), f"user-{i}")
    eventually(lambda: len(receiver.requests) >= 5)  # several failed attempts
    for i in range(300, 500):
        pipeline.add_evaluation(evaluation(), f"user-{i}")
    eventually(lambda: pipeline.stats()["webhook"]["spool_pending"] == 500)
    switch.failing = False
    eventually(lambda: len(set(receiver.delivered_ids())) == 500, timeout=20)
    assert_one_id_per_event(receiver)
    stats = pipeline.stats()["webhook"]
    assert stats["retried"] >= 5
    assert stats["spooled"] == 500
    assert stats["dropped"] == 0
    eventually(lambda: pipeline.stats()["webhook"]["spool_pending"] == 0)
    pipeline.close(2)


def start_driver(tmp_path: Path, receiver: Receiver, *args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(DRIVER), "--url", receiver.url, "--spool", str(tmp_path / "spool"), *args],
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "driver.log", "a"),  # noqa: SIM115 - closed with the process
        text=True,
        cwd=REPO,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def stop_driver(process: subprocess.Popen[str], timeout: float = 15) -> dict[str, dict[str, int]]:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0
    return json.loads(out.strip().splitlines()[-1])


def segments(spool: Path) -> list[Path]:
    return sorted(spool.glob("*.seg"))


def read_ids(path: Path) -> set[str]:
    return set(path.read_text().split())


def test_sigkill_during_an_outage_loses_nothing_handed_to_the_exporter(
    tmp_path: Path, receiver: Receiver, switch: Switch
) -> None:
    # Three requests in four fail: many batches are handed over (and some delivered) before the kill.
    switch.flaky = True
    first = start_driver(tmp_path, receiver, "--rate", "3000", "--tag", "first")
    try:
        # Kill while some handed-over events are not delivered yet (a batch is being retried).
        eventually(
            lambda: (
                len(receiver.attempted_ids()) >= 1000
                and set(receiver.delivered_ids()) < receiver.attempted_ids()
            ),
            timeout=20,
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    attempted = receiver.attempted_ids()

    switch.flaky = False
    second = start_driver(tmp_path, receiver, "--rate", "0")  # only replays the spool
    try:
        eventually(lambda: attempted <= set(receiver.delivered_ids()), timeout=20)
        eventually(lambda: not segments(tmp_path / "spool" / "webhook"), timeout=20)  # backlog delivered
    finally:
        stats = stop_driver(second)
    assert stats["webhook"]["replayed"] > 0
    assert stats["webhook"]["dropped"] == 0
    assert_one_id_per_event(receiver)


def test_sigkill_while_healthy_then_restart(tmp_path: Path, receiver: Receiver) -> None:
    sent = tmp_path / "sent.txt"
    first = start_driver(tmp_path, receiver, "--rate", "3000", "--sent", str(sent), "--tag", "a")
    eventually(lambda: len(receiver.delivered_ids()) >= 500, timeout=20)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    delivered_before = set(receiver.delivered_ids())
    second = start_driver(tmp_path, receiver, "--count", "100", "--sent", str(sent), "--tag", "b")
    assert second.stdout is not None
    assert second.stdout.readline().strip() == "sent 100"
    stats = stop_driver(second)
    delivered = set(receiver.delivered_ids())
    assert delivered_before <= delivered
    second_ids = [line for line in sent.read_text().split()][-100:]
    assert set(second_ids) <= delivered  # the new process lost nothing
    assert stats["webhook"]["dropped"] == 0
    assert_one_id_per_event(receiver)


def test_sigterm_flushes_everything_within_the_grace_period(tmp_path: Path, receiver: Receiver) -> None:
    sent = tmp_path / "sent.txt"
    # A flush interval far longer than the test: only the shutdown flush can deliver these.
    process = start_driver(
        tmp_path,
        receiver,
        *("--count", "1000", "--rate", "100000", "--sent", str(sent)),
        *("--flush-interval", "3600", "--max-events", "100000"),
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "sent 1000"
    assert receiver.requests == []
    stats = stop_driver(process)
    assert set(receiver.delivered_ids()) == read_ids(sent)
    assert stats["webhook"]["exported"] == 1000


def test_sigterm_during_an_outage_spools_and_the_next_start_delivers(
    tmp_path: Path, receiver: Receiver, switch: Switch
) -> None:
    switch.failing = True
    sent = tmp_path / "sent.txt"
    process = start_driver(
        tmp_path,
        receiver,
        *("--count", "400", "--rate", "100000", "--sent", str(sent), "--grace", "0.5"),
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "sent 400"
    started = time.monotonic()
    stats = stop_driver(process)
    assert time.monotonic() - started < 10  # the grace period bounds the shutdown
    assert stats["webhook"]["spool_pending"] == 400
    assert stats["webhook"]["dropped"] == 0
    assert segments(tmp_path / "spool" / "webhook")

    switch.failing = False
    again = start_driver(tmp_path, receiver, "--rate", "0")
    eventually(lambda: read_ids(sent) <= set(receiver.delivered_ids()), timeout=20)
    eventually(lambda: not segments(tmp_path / "spool" / "webhook"))
    stop_driver(again)
    assert_one_id_per_event(receiver)


def test_rejected_batches_go_to_the_dead_letter_file_and_the_rest_flows(tmp_path: Path) -> None:
    receiver = Receiver(respond=lambda n: (400, {}) if n == 0 else (200, {}))
    try:
        pipeline = build_pipeline(
            PipelineConfig(
                exporters=[f"webhook:url={receiver.url}"],
                flush_interval=0.02,
                spool_dir=tmp_path / "spool",
                retry=RetryPolicy(initial=0.01, maximum=0.1),
            )
        )
        pipeline.start()
        pipeline.add_evaluation(evaluation(), "rejected")
        eventually(lambda: pipeline.stats()["webhook"]["dead_lettered"] == 1)
        pipeline.add_evaluation(evaluation(), "accepted")
        eventually(lambda: len(receiver.delivered_ids()) == 1)
        pipeline.close(1)
    finally:
        receiver.close()
    [line] = (tmp_path / "spool" / "webhook" / "dead-letter.jsonl").read_text().splitlines()
    dead = json.loads(line)
    assert dead["event"]["userKey"] == "rejected"
    assert "HTTP 400" in dead["reason"]
    assert receiver.delivered()[0]["userKey"] == "accepted"
    assert len(receiver.requests) == 2  # the 400 was not retried

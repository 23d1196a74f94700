"""The log, file and webhook exporters against real loggers, directories and an HTTP server."""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.events import PermanentExportError, RetryableExportError, TrackingEvent
from sidecar.events.exporters import FileExporter, LogExporter, WebhookExporter
from sidecar.events.exporters.webhook import parse_retry_after

from .helpers import Receiver, feature_events


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


# ---------------------------------------------------------------- log


def test_log_exporter_writes_one_line_per_event(caplog: pytest.LogCaptureFixture) -> None:
    exporter = LogExporter(logger=logging.getLogger("test.log-exporter"))
    assert exporter.is_bulk is False
    events = feature_events(2)
    with caplog.at_level(logging.INFO, logger="test.log-exporter"):
        exporter.export(events)
    assert len(caplog.records) == 2
    assert (
        caplog.records[0]
        .getMessage()
        .endswith('user="u0", flag="new-checkout", value="true", variation="on"')
    )


def test_log_exporter_format_is_configurable(caplog: pytest.LogCaptureFixture) -> None:
    exporter = LogExporter("{key}={value} ({eventId})", logging.getLogger("test.log-fmt"))
    [event] = feature_events(1)
    with caplog.at_level(logging.INFO, logger="test.log-fmt"):
        exporter.export([event, TrackingEvent("signup", "u9")])
    assert caplog.records[0].getMessage() == f"new-checkout=true ({event.event_id})"
    assert 'event="signup"' in caplog.records[1].getMessage()


def test_log_exporter_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="unknown field"):
        LogExporter("{flag}")


# ---------------------------------------------------------------- file


def files(directory: Path, suffix: str) -> list[Path]:
    return sorted(directory.glob(f"*.{suffix}"))


def test_file_exporter_jsonl(tmp_path: Path) -> None:
    exporter = FileExporter(tmp_path, "jsonl", fsync=False)
    events = feature_events(3)
    exporter.export(events)
    [path] = files(tmp_path, "jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == [e.to_json() for e in events]


def test_file_exporter_never_overwrites_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    exporter = FileExporter(tmp_path, "jsonl", prefix="batch", fsync=False)
    for _ in range(50):  # many batches in the same millisecond
        exporter.export(feature_events(1))
    second = FileExporter(tmp_path, "jsonl", prefix="batch", fsync=False)  # another process, same dir
    second.export(feature_events(1))
    assert len(files(tmp_path, "jsonl")) == 51
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_file_exporter_csv(tmp_path: Path) -> None:
    exporter = FileExporter(tmp_path, "csv", fsync=False)
    events = feature_events(2)
    exporter.export([*events, TrackingEvent("checkout", "u1", {}, {"value": 2})])
    [path] = files(tmp_path, "csv")
    rows = list(csv.DictReader(path.open()))
    assert rows[0]["userKey"] == "u0"
    assert rows[0]["value"] == "true"
    assert rows[0]["default"] == "false"
    assert rows[0]["eventId"] == events[0].event_id
    assert rows[2]["kind"] == "tracking"
    assert json.loads(rows[2]["trackingEventDetails"]) == {"value": 2}


def test_file_exporter_parquet(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")  # installed by `make test` (the parquet extra)
    exporter = FileExporter(tmp_path, "parquet", compression="zstd", fsync=False)
    events = feature_events(3)
    exporter.export(events)
    [path] = files(tmp_path, "parquet")
    rows = pq.read_table(path).to_pylist()
    assert [r["eventId"] for r in rows] == [e.event_id for e in events]
    assert rows[0]["creationDate"] == events[0].to_json()["creationDate"]
    assert rows[0]["default"] is False
    assert json.loads(rows[0]["value"]) is True


def test_file_exporter_reports_write_failures_as_retryable(tmp_path: Path) -> None:
    exporter = FileExporter(tmp_path / "out", "jsonl", fsync=False)
    (tmp_path / "out").rmdir()
    (tmp_path / "out").write_text("not a directory any more")
    with pytest.raises(RetryableExportError):
        exporter.export(feature_events(1))


# ---------------------------------------------------------------- webhook


def test_webhook_posts_meta_and_events_with_signatures(receiver: Receiver) -> None:
    exporter = WebhookExporter(receiver.url, secret="s3cret", meta={"env": "test"})
    events = feature_events(3)
    exporter.export(events)
    exporter.export(events)  # a retry of the same batch
    first, second = receiver.requests
    body = first.json
    assert body["meta"]["env"] == "test"
    assert body["meta"]["hostname"]
    assert [e["eventId"] for e in body["events"]] == [e.event_id for e in events]
    expected = "sha256=" + hmac.new(b"s3cret", first.body, hashlib.sha256).hexdigest()
    assert first.headers["X-Hub-Signature-256"] == expected
    timestamp, v1 = first.headers["X-Flag-Sidecar-Signature"].split(",")
    t = timestamp.removeprefix("t=")
    assert v1 == "v1=" + hmac.new(b"s3cret", f"{t}.".encode() + first.body, hashlib.sha256).hexdigest()
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    exporter.close()


def test_webhook_without_secret_sends_no_signature(receiver: Receiver) -> None:
    WebhookExporter(receiver.url).export(feature_events(1))
    assert "X-Hub-Signature-256" not in receiver.requests[0].headers


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
def test_webhook_retries_server_errors_and_429(status: int) -> None:
    receiver = Receiver(respond=lambda _n: (status, {"Retry-After": "7"}))
    try:
        with pytest.raises(RetryableExportError) as info:
            WebhookExporter(receiver.url).export(feature_events(1))
        assert info.value.retry_after == 7.0
    finally:
        receiver.close()


@pytest.mark.parametrize("status", [400, 401, 404, 413])
def test_webhook_other_4xx_are_permanent(status: int) -> None:
    receiver = Receiver(respond=lambda _n: (status, {}))
    try:
        with pytest.raises(PermanentExportError, match=f"HTTP {status}"):
            WebhookExporter(receiver.url).export(feature_events(1))
    finally:
        receiver.close()


def test_webhook_connection_errors_and_timeouts_are_retryable(receiver: Receiver) -> None:
    port = receiver.server.server_address[1]
    receiver.close()
    with pytest.raises(RetryableExportError, match="POST"):
        WebhookExporter(f"http://127.0.0.1:{port}/events", timeout=1).export(feature_events(1))
    slow = Receiver(delay=0.5)
    try:
        with pytest.raises(RetryableExportError, match="timed out"):
            WebhookExporter(slow.url, timeout=0.1).export(feature_events(1))
    finally:
        slow.close()


def test_webhook_reuses_its_connection(receiver: Receiver) -> None:
    exporter = WebhookExporter(receiver.url)
    seen: set[int] = set()
    for _ in range(3):
        exporter.export(feature_events(1))
        assert exporter._conn is not None
        assert exporter._conn.sock is not None
        seen.add(id(exporter._conn.sock))
    assert len(seen) == 1
    exporter.close()


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10.0


def test_webhook_rejects_non_http_urls() -> None:
    with pytest.raises(ValueError, match="http"):
        WebhookExporter("ftp://example.com/x")

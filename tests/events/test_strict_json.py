"""Every encoder of events writes strict JSON (RFC 8259): no NaN, no Infinity, whatever the events hold.

A receiver that parses strictly (as most non-Python ones do) answers HTTP 400 to `Infinity`, which
would dead-letter every other event of the batch; the dead-letter file must parse as JSON lines.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.events import (
    DataExporterScheduler,
    FeatureEvent,
    PermanentExportError,
    RetryPolicy,
    TrackingEvent,
)
from sidecar.events.exporters import FileExporter, WebhookExporter
from sidecar.events.exporters.file import JSON_COLUMNS, _csv_cell
from sidecar.events.exporters.log import _fields
from sidecar.events.scheduler import decode_batch, encode_batch
from tests.conftest import eventually

from .helpers import RecordingExporter


def strict_loads(text: str | bytes) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


# Any unicode but lone surrogates, which neither protobuf (UTF-8 checked) nor a flag file can carry.
text_chars = st.characters(blacklist_categories=("Cs",))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=text_chars),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(text_chars, max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
feature_events = st.builds(
    FeatureEvent,
    key=st.text(text_chars, min_size=1),
    user_key=st.text(text_chars),
    variation=st.text(text_chars),
    value=values,
    default=st.booleans(),
    version=st.text(text_chars),
)
tracking_events = st.builds(
    TrackingEvent,
    key=st.text(text_chars, min_size=1),
    user_key=st.text(text_chars),
    evaluation_context=st.dictionaries(st.text(text_chars, min_size=1), scalars, max_size=4),
    tracking_event_details=st.dictionaries(st.text(text_chars), values, max_size=4),
)
events = st.lists(st.one_of(feature_events, tracking_events), min_size=1, max_size=5)


def finite(value: Any) -> Any:
    """What the encoders promise for a value: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=events)
def test_every_encoder_writes_strict_json(tmp_path_factory: pytest.TempPathFactory, batch: list) -> None:
    # The spool's records, and what a replay rebuilds from them.
    payload = encode_batch(batch)
    parsed = strict_loads(payload)
    assert parsed == [finite(e.to_json()) for e in batch]
    assert [e.to_json() for e in decode_batch(payload)] == parsed

    # The webhook's body.
    body = WebhookExporter(url="http://127.0.0.1:9/events").body(batch)
    assert strict_loads(body)["events"] == parsed

    # JSON-lines files.
    directory = tmp_path_factory.mktemp("files")
    FileExporter(directory=str(directory), fsync=False).export(batch)
    [jsonl] = directory.glob("*.jsonl")
    lines = jsonl.read_text(encoding="utf-8").split("\n")[:-1]  # not splitlines: U+2028 is no line end
    assert [strict_loads(line) for line in lines] == parsed
    # CSV and Parquet cells that hold JSON.
    for row in parsed:
        for column in JSON_COLUMNS:
            if column in row:
                assert strict_loads(_csv_cell(column, row)) == row[column]

    # The log exporter's non-string fields.
    for event in batch:
        for key, text in _fields(event).items():
            if key not in ("formattedDate",) and not isinstance(event.to_json().get(key), str):
                strict_loads(text)


def test_a_nan_value_becomes_null_and_the_rest_of_the_batch_is_untouched() -> None:
    batch = [
        FeatureEvent("ratio", "ada", "on", float("nan"), False, "1"),
        FeatureEvent("limit", "bob", "on", {"max": float("inf"), "min": 1.5}, False, "1"),
        FeatureEvent("plain", "eve", "on", 2.5, False, "1"),
    ]
    assert [e["value"] for e in strict_loads(encode_batch(batch))] == [None, {"max": None, "min": 1.5}, 2.5]


def test_the_dead_letter_file_is_json_lines(tmp_path: Path) -> None:
    exporter = RecordingExporter(fail=1, error=PermanentExportError("HTTP 400: bad event"))
    dead = tmp_path / "dead-letter.jsonl"
    scheduler = DataExporterScheduler(
        0.01, 10, exporter, dead_letter_path=dead, retry=RetryPolicy(initial=0.01, maximum=0.02)
    )
    scheduler.start_daemon()
    try:
        scheduler.add_event(FeatureEvent("ratio", "ada", "on", float("inf"), False, "1"))
        scheduler.add_event(TrackingEvent("checkout", "bob", {"plan": "pro"}, {"total": float("nan")}))
        eventually(lambda: scheduler.stats()["dead_lettered"] == 2)
    finally:
        scheduler.close(2)
    lines = [strict_loads(line) for line in dead.read_text().splitlines()]
    assert [line["event"]["userKey"] for line in lines] == ["ada", "bob"]
    assert lines[0]["event"]["value"] is None
    assert lines[1]["event"]["trackingEventDetails"] == {"total": None}


def test_no_thread_dies_on_an_unexpected_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = RecordingExporter()
    scheduler = DataExporterScheduler(0.01, 10, exporter, retry=RetryPolicy(initial=0.01, maximum=0.02))
    real = scheduler._delivered
    failed = threading.Event()

    def buggy(*args: Any, **kwargs: Any) -> None:
        if not failed.is_set():
            failed.set()
            raise RuntimeError("a bug after the export")
        real(*args, **kwargs)

    monkeypatch.setattr(scheduler, "_delivered", buggy)
    scheduler.start_daemon()
    try:
        scheduler.add_event(FeatureEvent("a", "ada", "on", True, False, "1"))
        eventually(failed.is_set)
        scheduler.add_event(FeatureEvent("b", "bob", "on", True, False, "1"))
        # The batch the bug hit is sent again (at least once), and delivery goes on.
        eventually(lambda: {e.user_key for e in exporter.events} == {"ada", "bob"})
        assert scheduler._sender.is_alive()
    finally:
        scheduler.close(2)

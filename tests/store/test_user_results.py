"""The `users` exporter against a real SQLite file: the latest evaluation per user and flag from
a batch, tracking events ignored, an unavailable database a retryable export error."""

from __future__ import annotations

import pytest

from sidecar.events import FeatureEvent, TrackingEvent
from sidecar.events.exporter import RetryableExportError
from sidecar.sources import open_database
from sidecar.store.user_results import UserResultsExporter


def _event(user: str, flag: str, variant: str, at: float) -> FeatureEvent:
    return FeatureEvent(flag, user, variant, variant == "on", False, "3", creation_date=at, reason="SPLIT")


def test_a_batch_keeps_the_latest_evaluation_per_user_and_flag(tmp_path):
    exporter = UserResultsExporter(open_database(f"sqlite://{tmp_path}/flags.db"))
    exporter.export(
        [
            _event("u1", "f", "off", 100.0),
            _event("u1", "f", "on", 200.0),
            _event("u2", "f", "off", 150.0),
            TrackingEvent("checkout", "u3"),
        ]
    )
    exporter.export([_event("u1", "g", "on", 300.0)])
    user, evaluations = exporter.database.user("default", "u1")
    assert (user.first_seen, user.last_seen) == ("1970-01-01T00:01:40.000Z", "1970-01-01T00:05:00.000Z")
    assert [(e.flag_key, e.variant, e.value, e.reason) for e in evaluations] == [
        ("f", "on", True, "SPLIT"),
        ("g", "on", True, "SPLIT"),
    ]
    assert [u.user_id for u in exporter.database.users("default", "", 10)] == ["u1", "u2"]


def test_an_unavailable_database_is_a_retryable_export_error(tmp_path):
    exporter = UserResultsExporter(open_database(f"sqlite://{tmp_path}/missing-dir/flags.db"))
    with pytest.raises(RetryableExportError, match="unable to open"):
        exporter.export([_event("u1", "f", "on", 1.0)])

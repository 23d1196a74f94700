from __future__ import annotations

import json

import pytest

from sidecar.engine import Reason, build_context, compile_flag_set, evaluate
from sidecar.events import FeatureEvent, TrackingEvent, event_from_json
from sidecar.events.feature_event import PROCESS_TOKEN

from .helpers import error_evaluation, evaluation

GOFF_FIELDS = [
    "kind",
    "contextKind",
    "userKey",
    "creationDate",
    "key",
    "variation",
    "value",
    "default",
    "version",
    "source",
]


def test_feature_event_has_go_feature_flag_fields_plus_event_id_and_reason() -> None:
    event = FeatureEvent.from_evaluation(evaluation(value={"a": 1}), "user-1", {"plan": "pro"})
    data = event.to_json()
    assert list(data) == [*GOFF_FIELDS, "eventId", "reason"]
    assert data["reason"] == "TARGETING_MATCH"
    assert data["kind"] == "feature"
    assert data["contextKind"] == "user"
    assert data["userKey"] == "user-1"
    assert data["key"] == "new-checkout"
    assert data["variation"] == "on"
    assert data["value"] == {"a": 1}
    assert data["default"] is False
    assert data["version"] == "3"
    assert data["source"] == "SERVER"
    assert data["eventId"].startswith(PROCESS_TOKEN + "-")
    json.dumps(data)  # serialisable as is


def test_creation_date_is_unix_seconds() -> None:
    event = FeatureEvent("f", "u", "on", True, False, "1", creation_date=1_700_000_000.987)
    assert event.to_json()["creationDate"] == 1_700_000_000


def test_error_reports_sdk_default() -> None:
    data = FeatureEvent.from_evaluation(error_evaluation(), "u").to_json()
    assert data["variation"] == "SdkDefault"
    assert data["default"] is True
    assert data["value"] is None
    assert data["version"] == ""
    # OpenFeature's names, for exporters that report them (otlp's error.type).
    assert (data["reason"], data["errorCode"]) == ("ERROR", "FLAG_NOT_FOUND")
    assert data["errorMessage"] == "flag 'missing' not found"


def test_an_answer_without_a_default_reports_sdk_default() -> None:
    """No default set: no value and no variant, so the caller's code default is what it got."""
    flag_set = compile_flag_set(
        {"flags": [{"key": "f", "enabled": True, "variants": [{"key": "a", "value": 1}], "version": 4}]}
    )
    answer = evaluate(flag_set.flags["f"], build_context("u", {}))
    assert (answer.reason, answer.variant) == (Reason.DEFAULT, "")
    data = FeatureEvent.from_evaluation(answer, "u").to_json()
    assert (data["variation"], data["default"], data["value"], data["version"]) == (
        "SdkDefault",
        True,
        None,
        "4",
    )


@pytest.mark.parametrize(
    ("context", "kind"),
    [({"anonymous": True}, "anonymousUser"), ({"anonymous": "true"}, "user"), ({}, "user"), (None, "user")],
)
def test_context_kind(context: dict[str, object] | None, kind: str) -> None:
    assert FeatureEvent.from_evaluation(evaluation(), "u", context).context_kind == kind


def test_event_ids_are_unique() -> None:
    ids = {FeatureEvent.from_evaluation(evaluation(), "u").event_id for _ in range(10_000)}
    assert len(ids) == 10_000


def test_json_round_trip_keeps_the_event_id() -> None:
    feature = FeatureEvent.from_evaluation(evaluation(), "u", {"anonymous": True})
    failed = FeatureEvent.from_evaluation(error_evaluation(), "u")
    tracking = TrackingEvent("checkout", "u", {"plan": "pro"}, {"value": 12.5})
    for event in (feature, failed, tracking):
        again = event_from_json(json.loads(json.dumps(event.to_json())))
        assert again.to_json() == event.to_json()
        assert type(again) is type(event)


def test_tracking_event_fields() -> None:
    data = TrackingEvent("checkout", "u", {"anonymous": True}, {"value": 3}).to_json()
    assert data["kind"] == "tracking"
    assert data["contextKind"] == "anonymousUser"
    assert data["key"] == "checkout"
    assert data["evaluationContext"] == {"targetingKey": "u", "anonymous": True}
    assert data["trackingEventDetails"] == {"value": 3}
    assert data["eventId"]


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        event_from_json({"kind": "index"})

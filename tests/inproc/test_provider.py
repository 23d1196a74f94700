"""FlagSidecarProvider through the real openfeature-sdk, against a real control plane: value,
variant, reason and flag metadata; errors with the codes flagd's providers give; not ready before
the first set; configuration changes as provider events; events reach the sidecar."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from flagsidecar_client import FlagSidecarClient
from flagsidecar_client.provider import FlagSidecarProvider
from tests.conftest import eventually
from tests.inproc.control_plane import Plane, feature_events
from tests.ports import free_port


@pytest.fixture
def openfeature(plane: Plane) -> Iterator[OpenFeatureClient]:
    provider = FlagSidecarProvider(
        target=plane.sync_target, events_target=plane.events_target, backoff_max=0.3, event_flush_interval=0.1
    )
    api.set_provider_and_wait(provider, domain="inproc")
    yield api.get_client("inproc")
    api.clear_providers()


def test_values_variants_reasons_and_metadata(openfeature: OpenFeatureClient):
    staff = EvaluationContext("u1", {"email": "ann@example.com"})
    details = openfeature.get_boolean_details("new-checkout", False, staff)
    assert (details.value, details.variant, details.reason, details.error_code) == (
        True,
        "on",
        "TARGETING_MATCH",
        None,
    )
    banner = openfeature.get_string_details("banner-color", "none", EvaluationContext("u1"))
    assert (banner.value, banner.variant, banner.reason) == ("#1f77b4", "blue", Reason.STATIC)
    assert banner.flag_metadata == {"owner": "growth", "ticket": 42}
    split = openfeature.get_boolean_details(
        "new-checkout", False, EvaluationContext("u1", {"plan": "pro", "accountId": "a"})
    )
    assert split.reason == "SPLIT"
    assert openfeature.get_integer_value("upload-limit", 1, EvaluationContext("u1", {"plan": "pro"})) == 100
    assert openfeature.get_float_value("upload-limit", 1.0, EvaluationContext("u1", {"plan": "pro"})) == 100.0
    config = openfeature.get_object_details("search-config", {}, EvaluationContext("u1", {"ip": "10.0.0.1"}))
    assert (config.variant, config.value["engine"]) == ("semantic", "vector")
    disabled = openfeature.get_boolean_details("maintenance-mode", True)
    assert (disabled.value, disabled.variant, disabled.reason) == (False, "off", "DISABLED")


def test_no_default_set_gives_the_callers_default_with_the_flags_reason(openfeature: OpenFeatureClient):
    details = openfeature.get_integer_details("upload-limit", 7, EvaluationContext("u1", {"plan": "free"}))
    assert (details.value, details.variant, details.reason, details.error_code) == (7, None, "DEFAULT", None)


def test_errors_map_to_openfeature_codes(openfeature: OpenFeatureClient):
    missing = openfeature.get_boolean_details("no-such-flag", True, EvaluationContext("u1"))
    assert (missing.value, missing.reason, missing.error_code) == (
        True,
        Reason.ERROR,
        ErrorCode.FLAG_NOT_FOUND,
    )
    mismatch = openfeature.get_boolean_details("banner-color", False, EvaluationContext("u1"))
    assert (mismatch.value, mismatch.error_code) == (False, ErrorCode.TYPE_MISMATCH)
    assert openfeature.get_string_details(
        "upload-limit", "x", EvaluationContext("u1", {"plan": "pro"})
    ).error_code == (ErrorCode.TYPE_MISMATCH)
    assert (
        openfeature.get_object_details("banner-color", {}, EvaluationContext("u1")).error_code
        == ErrorCode.TYPE_MISMATCH
    )


def test_the_context_is_read_as_the_sidecars_flagd_services_read_it(openfeature: OpenFeatureClient):
    # Objects, lists and "$" keys are dropped (the SDK sends them freely), not refused.
    context = EvaluationContext(
        "u1", {"email": "ann@example.com", "tags": ["a"], "nested": {"a": 1}, "$userId": "x"}
    )
    details = openfeature.get_boolean_details("new-checkout", False, context)
    assert (details.value, details.reason, details.error_code) == (True, "TARGETING_MATCH", None)


def test_a_change_emits_configuration_changed_with_the_changed_flags(
    plane: Plane, openfeature: OpenFeatureClient
):
    changed: list[EventDetails] = []
    openfeature.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, changed.append)
    plane.set_banner("red")
    eventually(lambda: changed, timeout=15)
    assert changed[-1].flags_changed == ["banner-color"]
    assert openfeature.get_string_value("banner-color", "none", EvaluationContext("u1")) == "#d62728"


def test_provider_evaluations_reach_the_sidecars_exporter(plane: Plane, openfeature: OpenFeatureClient):
    openfeature.get_string_value("banner-color", "none", EvaluationContext("u9"))
    provider = openfeature.provider
    assert isinstance(provider, FlagSidecarProvider)
    assert provider.client.flush_events(10)
    events = eventually(lambda: feature_events(plane), timeout=15)
    assert [(e["key"], e["userKey"], e["variation"]) for e in events] == [("banner-color", "u9", "blue")]


def test_not_ready_before_the_first_set():
    client = FlagSidecarClient(f"127.0.0.1:{free_port()}", backoff_max=0.2)
    provider = FlagSidecarProvider(client, timeout=0.3)
    api.set_provider(provider, domain="never")
    try:
        details = api.get_client("never").get_boolean_details("banner-color", True)
        assert (details.value, details.error_code) == (True, ErrorCode.PROVIDER_NOT_READY)
    finally:
        api.clear_providers()

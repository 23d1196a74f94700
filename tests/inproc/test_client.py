"""flagsidecar_client against a real control plane (`serve --flags FILE --sync-listen ...`): a
flag file change reaches it; it keeps serving while the control plane is gone and catches up
when it is back; its evaluation events reach the sidecar's exporters; what it had to drop while
the sidecar was unreachable is counted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import grpc
import pytest

from flagsidecar.v1 import event_pb2, event_pb2_grpc
from flagsidecar_client import ErrorCode, FlagSidecarClient, InvalidContextError, Reason
from tests.conftest import eventually
from tests.inproc.control_plane import Plane, feature_events
from tests.ports import free_port


@pytest.fixture
def client(plane: Plane) -> Iterator[FlagSidecarClient]:
    client = FlagSidecarClient(
        plane.sync_target, events_target=plane.events_target, backoff_max=0.3, event_flush_interval=0.1
    )
    with client:
        yield client


def test_evaluate_answers_with_value_variant_reason_and_flag_metadata(client: FlagSidecarClient):
    banner = client.evaluate("banner-color", "u1")
    assert (banner.value, banner.variant, banner.reason, banner.flag_version) == (
        "#1f77b4",
        "blue",
        Reason.STATIC,
        1,
    )
    assert dict(banner.flag_metadata) == {"owner": "growth", "ticket": 42}
    staff = client.evaluate("new-checkout", "u1", {"email": "ann@example.com"})
    assert (staff.value, staff.variant, staff.reason) == (True, "on", Reason.TARGETING_MATCH)
    assert (
        client.evaluate("new-checkout", "u1", {"plan": "pro", "accountId": "acct-42"}).reason == Reason.SPLIT
    )
    missing = client.evaluate("no-such-flag", "u1")
    assert (missing.reason, missing.error_code, missing.has_value) == (
        Reason.ERROR,
        ErrorCode.FLAG_NOT_FOUND,
        False,
    )
    nested = client.evaluate("banner-color", "u1", {"tags": ["a"]})
    assert nested.error_code == ErrorCode.INVALID_CONTEXT
    assert "tags" in nested.error_message


def test_typed_helpers_give_the_default_on_errors_and_other_types(client: FlagSidecarClient):
    assert client.boolean("new-checkout", False, "u1", {"email": "ann@example.com"}) is True
    assert client.boolean("banner-color", False, "u1") is False  # a string flag
    assert client.boolean("no-such-flag", True, "u1") is True
    assert client.string("banner-color", "none", "u1") == "#1f77b4"
    assert client.number("upload-limit", 1, "u1", {"plan": "pro"}) == 100
    assert client.number("upload-limit", 1, "u1", {"plan": "free"}) == 1  # no default set
    assert client.object("search-config", {}, "u1", {"ip": "10.1.2.3"})["engine"] == "vector"


def test_a_flag_file_change_reaches_the_client(plane: Plane, client: FlagSidecarClient):
    changes: list[int] = []
    client.on_change(lambda snapshot: changes.append(snapshot.revision))
    before = client.revision
    plane.set_banner("red")
    eventually(lambda: client.evaluate("banner-color", "u1").variant == "red", timeout=15)
    assert client.revision > before
    assert changes[-1] == client.revision
    assert client.evaluate("banner-color", "u1").flag_version == 2


def test_a_killed_control_plane_leaves_the_client_serving_and_a_restarted_one_catches_it_up(
    plane: Plane, client: FlagSidecarClient
):
    assert client.connected
    plane.stop()
    eventually(lambda: not client.connected, timeout=15)
    assert client.evaluate("banner-color", "u1").variant == "blue"  # the last set keeps serving
    plane.set_banner("red")  # changed while the control plane is down
    plane.start()
    eventually(lambda: client.evaluate("banner-color", "u1").variant == "red", timeout=20)
    assert client.connected


def test_evaluation_events_reach_the_sidecars_exporter(plane: Plane, client: FlagSidecarClient):
    for user in ("u1", "u2", "u3"):
        client.evaluate("banner-color", user)
    client.evaluate("new-checkout", "anon", {"email": "x@example.com", "anonymous": True})
    client.evaluate("no-such-flag", "u1")
    client.evaluate("banner-color", "u1", {"tags": ["a"]})  # refused context: no evaluation, no event
    assert client.flush_events(10)
    events = eventually(lambda: len(feature_events(plane)) >= 5 and feature_events(plane), timeout=15)
    assert len(events) == 5
    assert client.sent_events == 5
    assert client.dropped_events == 0
    by_user = {(e["key"], e["userKey"]): e for e in events}
    banner = by_user["banner-color", "u2"]
    assert (banner["variation"], banner["value"], banner["default"], banner["version"]) == (
        "blue",
        "#1f77b4",
        False,
        "1",
    )
    assert banner["source"] == "PROVIDER_CACHE"
    assert banner["reason"] == "STATIC"
    assert by_user["new-checkout", "anon"]["contextKind"] == "anonymousUser"
    missing = by_user["no-such-flag", "u1"]
    assert (missing["variation"], missing["default"], missing["errorCode"]) == (
        "SdkDefault",
        True,
        "FLAG_NOT_FOUND",
    )
    assert len({e["eventId"] for e in events}) == 5


def test_evaluate_does_not_wait_for_an_unreachable_sidecar_and_counts_what_it_drops(
    plane: Plane, tmp_path: Path
):
    # The events go to a sidecar that is not running: the buffer fills, the rest is dropped.
    sidecar = Plane(tmp_path / "sidecar")
    sidecar.stop()
    client = FlagSidecarClient(
        plane.sync_target,
        events_target=sidecar.events_target,
        backoff_max=0.3,
        event_flush_interval=0.05,
        max_buffered_events=5,
    )
    with client:
        for index in range(20):
            assert client.evaluate("banner-color", f"u{index}").variant == "blue"
        assert client.dropped_events == 15
        assert client.buffered_events == 5
        assert not client.flush_events(0.5)
        sidecar.start()  # back: the five kept are delivered
        try:
            assert client.flush_events(15)
            assert client.sent_events == 5
            events = eventually(
                lambda: len(feature_events(sidecar)) >= 5 and feature_events(sidecar), timeout=15
            )
            assert sorted(e["userKey"] for e in events) == sorted(f"u{i}" for i in range(5))
        finally:
            sidecar.stop()
    assert client.dropped_events == 15


def test_a_client_that_never_got_a_set_says_so(tmp_path: Path):
    client = FlagSidecarClient(f"127.0.0.1:{free_port()}", backoff_max=0.2)
    try:
        with pytest.raises(TimeoutError, match="no flag set from"):
            client.start(wait=0.3)
        answer = client.evaluate("banner-color", "u1")
        assert answer.error_code == ErrorCode.GENERAL
        assert "no flag set received yet" in answer.error_message
        assert not client.ready
    finally:
        client.close()


def test_report_evaluations_refuses_a_bad_batch_whole(plane: Plane):
    with grpc.insecure_channel(plane.events_target) as channel:
        stub = event_pb2_grpc.EventServiceStub(channel)
        good = event_pb2.FeatureEvent(flag_key="banner-color", user_key="u1", variation="blue")
        request = event_pb2.ReportEvaluationsRequest(
            events=[
                good,
                event_pb2.FeatureEvent(user_key="u2"),
                event_pb2.FeatureEvent(flag_key="x", context_kind="bot"),
                event_pb2.FeatureEvent(flag_key="x", reason=-1),  # type: ignore[arg-type]
            ]
        )
        with pytest.raises(grpc.RpcError) as refused:
            stub.ReportEvaluations(request, timeout=5)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "events[1]: flag_key is required" in refused.value.details()
        assert "events[2]: context_kind 'bot'" in refused.value.details()
        assert "events[3]: reason -1 is not a flagsidecar.v1.Reason" in refused.value.details()
        assert (
            stub.ReportEvaluations(event_pb2.ReportEvaluationsRequest(events=[good]), timeout=5).accepted == 1
        )
    events = eventually(lambda: feature_events(plane), timeout=15)
    assert [e["userKey"] for e in events] == ["u1"]  # nothing of the refused batch


def test_evaluate_is_safe_while_sets_are_swapped(plane: Plane, client: FlagSidecarClient):
    errors: list[Any] = []
    stop = threading.Event()

    def evaluate() -> None:
        while not stop.is_set():
            answer = client.evaluate("banner-color", "u1")
            if answer.variant not in ("blue", "red"):
                errors.append(answer)

    threads = [threading.Thread(target=evaluate) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for variant in ("red", "blue", "red"):
            plane.set_banner(variant)
            eventually(
                lambda variant=variant: client.evaluate("banner-color", "u1").variant == variant, timeout=15
            )
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []


def test_a_prepared_user_answers_as_evaluate_does(plane: Plane, client: FlagSidecarClient):
    context = {"plan": "pro", "accountId": "acct-42", "anonymous": True}
    user = client.user("u1", context)
    assert dict(user.context) == context
    for key in [*client.flag_keys(), "no-such-flag"]:
        assert client.evaluate_user(key, user) == client.evaluate(key, "u1", context)
    with pytest.raises(InvalidContextError, match="reserved"):
        client.user("u1", {"$userId": "other"})
    assert client.flush_events(10)
    events = eventually(lambda: len(feature_events(plane)) >= 12 and feature_events(plane), timeout=15)
    assert {e["contextKind"] for e in events} == {"anonymousUser"}


def test_the_callers_context_is_checked_and_never_changed_whatever_the_flag_reads(client: FlagSidecarClient):
    # banner-color reads no user id (evaluated over the caller's dict); new-checkout splits by
    # accountId and tests the email, maintenance-mode and the rest as the sample has them.
    context = {"plan": "pro", "accountId": "acct-42", "email": "ann@example.com"}
    before = dict(context)
    for key in client.flag_keys():
        assert client.evaluate(key, "u1", context) == client.evaluate(key, "u1", MappingProxyType(context)), (
            key
        )
        assert context == before, key
        refused = client.evaluate(key, "u1", {**context, "$userId": "other"})
        assert (refused.error_code, refused.has_value) == (ErrorCode.INVALID_CONTEXT, False), key
        assert "reserved" in refused.error_message


def test_a_with_block_that_never_gets_a_set_closes_the_client():
    client = FlagSidecarClient(f"127.0.0.1:{free_port()}", backoff_max=0.2, ready_timeout=0.3)
    with pytest.raises(TimeoutError), client:
        pass
    assert not client._follower._thread.is_alive()

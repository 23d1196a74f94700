"""flagsidecar.v1.SyncService at the gRPC client level: a real store on a real flag file, the real
sync listener on a real port, grpc clients."""

from __future__ import annotations

import dataclasses
import threading
import time

import grpc
import pytest

from flagsidecar.v1 import sync_pb2, sync_pb2_grpc
from sidecar.schema import flag_set_from_message
from tests.conftest import eventually

from .helpers import ControlPlane, Watcher, start_control_plane, stop_control_plane


@pytest.fixture
def plane(tmp_path):
    control_plane = start_control_plane(tmp_path, log_size=4)
    yield control_plane
    stop_control_plane(control_plane)


def set_default(key: str, variant: str):
    def mutate(document):
        flag = next(f for f in document["flags"] if f["key"] == key)
        flag["defaultVariantWhenOn"] = variant

    return mutate


def remove_flag(key: str):
    def mutate(document):
        document["flags"] = [f for f in document["flags"] if f["key"] != key]

    return mutate


def add_flag(key: str):
    def mutate(document):
        document["flags"].append(
            {"key": key, "enabled": True, "variants": [{"key": "a", "value": 1}], "defaultVariantWhenOn": "a"}
        )

    return mutate


def keys(messages) -> list[str]:
    return sorted(message.key for message in messages)


def test_watch_sends_the_whole_set_then_each_change_with_its_revision(plane: ControlPlane):
    watcher = Watcher(plane.address)
    try:
        first = watcher.next()
        assert first.WhichOneof("update") == "full_set"
        assert first.full_set_reason == sync_pb2.FULL_SET_REASON_INITIAL
        assert first.flag_set == "default"
        assert keys(first.full_set.flags) == sorted(plane.store.flag_set.flags)
        assert keys(first.full_set.segments) == ["beta"]
        assert first.revision == first.full_set.revision == plane.revision()

        plane.change(set_default("banner-color", "red"))
        update = watcher.next()
        assert update.WhichOneof("update") == "delta"
        assert update.delta.since_revision == first.revision < update.revision
        assert keys(update.delta.flags) == ["banner-color"]
        (banner,) = update.delta.flags
        assert banner.default_variant_when_on == "red"
        assert banner.version == 2  # the store's version: the file gives none
        assert not update.delta.removed_flags
        assert not update.delta.segments

        plane.change(remove_flag("maintenance-mode"))
        removal = watcher.next()
        assert removal.delta.since_revision == update.revision < removal.revision
        assert list(removal.delta.removed_flags) == ["maintenance-mode"]
        assert not removal.delta.flags
    finally:
        watcher.close()


def test_segment_changes_and_removals_travel_in_the_delta(plane: ControlPlane):
    held = plane.revision()

    def change_segment(document):
        document["segments"][0]["rules"][0]["constraints"][0]["values"] = ["pro", "enterprise"]
        document["segments"].append({"key": "staff", "rules": []})

    plane.change(change_segment)
    changed = next(plane.stub().Watch(sync_pb2.WatchRequest(since_revision=held)))
    assert keys(changed.delta.segments) == ["beta", "staff"]
    assert not changed.delta.flags  # the flags that use beta are the same definitions

    def remove_segment(document):
        document["segments"] = [s for s in document["segments"] if s["key"] != "staff"]

    plane.change(remove_segment)
    resumed = next(plane.stub().Watch(sync_pb2.WatchRequest(since_revision=held)))
    assert keys(resumed.delta.segments) == ["beta"]
    assert list(resumed.delta.removed_segments) == ["staff"]


def test_the_full_set_reads_back_as_the_applied_definitions(plane: ControlPlane):
    # One schema (sidecar/schema.py) both ways: what the stream sends is what the store applied.
    response = plane.stub().Fetch(sync_pb2.FetchRequest(selector="flag-set=default"), timeout=5)
    assert response.flag_set_name == "default"
    definitions = flag_set_from_message(response.flag_set)
    applied = plane.store.flag_set
    expected = tuple(
        dataclasses.replace(flag.definition, version=flag.version) for flag in applied.flags.values()
    )
    assert definitions.flags == expected
    assert definitions.segments == tuple(segment.definition for segment in applied.segments.values())


def test_a_resumed_watch_sends_only_what_changed_since_its_revision(plane: ControlPlane):
    held = plane.revision()
    plane.change(set_default("banner-color", "red"))
    plane.change(remove_flag("maintenance-mode"))
    plane.change(add_flag("new-flag"))
    current = plane.revision()

    stub = plane.stub()
    (resumed,) = [next(stub.Watch(sync_pb2.WatchRequest(since_revision=held)))]
    assert resumed.WhichOneof("update") == "delta"
    assert resumed.revision == current
    assert resumed.delta.since_revision == held
    assert keys(resumed.delta.flags) == ["banner-color", "new-flag"]
    assert list(resumed.delta.removed_flags) == ["maintenance-mode"]
    assert not resumed.delta.segments
    assert not resumed.delta.removed_segments

    # Up to date: an empty delta at the current revision, and the stream goes on from there.
    watcher = Watcher(plane.address, since_revision=current)
    try:
        up_to_date = watcher.next()
        assert up_to_date.WhichOneof("update") == "delta"
        assert up_to_date.revision == current
        assert not up_to_date.delta.flags
        assert not up_to_date.delta.removed_flags
        plane.change(set_default("banner-color", "blue"))
        assert keys(watcher.next().delta.flags) == ["banner-color"]
    finally:
        watcher.close()


def test_a_revision_the_server_no_longer_has_gets_the_whole_set_and_says_why(plane: ControlPlane):
    held = plane.revision()
    for variant in ("red", "blue", "red", "blue", "red"):  # the log keeps 4
        plane.change(set_default("banner-color", variant))
    stub = plane.stub()

    too_old = next(stub.Watch(sync_pb2.WatchRequest(since_revision=held)))
    assert too_old.WhichOneof("update") == "full_set"
    assert too_old.full_set_reason == sync_pb2.FULL_SET_REASON_REVISION_TOO_OLD
    assert "older than the changes this server keeps" in too_old.message
    assert keys(too_old.full_set.flags) == sorted(plane.store.flag_set.flags)

    # A revision from another server, or from before a restart (below this one's first).
    unknown = next(stub.Watch(sync_pb2.WatchRequest(since_revision=12345)))
    assert unknown.full_set_reason == sync_pb2.FULL_SET_REASON_UNKNOWN_REVISION
    assert "not sent by this server" in unknown.message
    ahead = next(stub.Watch(sync_pb2.WatchRequest(since_revision=plane.revision() + 1)))
    assert ahead.full_set_reason == sync_pb2.FULL_SET_REASON_UNKNOWN_REVISION


@pytest.mark.parametrize(
    ("selector", "code", "words"),
    [
        ("flag-set=checkout", grpc.StatusCode.NOT_FOUND, "serves flag set 'default', not 'checkout'"),
        ("checkout", grpc.StatusCode.INVALID_ARGUMENT, "expected flag-set=NAME"),
        ("source=x", grpc.StatusCode.INVALID_ARGUMENT, "expected flag-set=NAME"),
        # The name's grammar is --selector's (a database's flag sets), so no such set can exist.
        ("flag-set=two words", grpc.StatusCode.INVALID_ARGUMENT, "is not a flag set name"),
    ],
)
def test_a_selector_that_selects_nothing_here_is_refused_with_the_reason(plane, selector, code, words):
    stub = plane.stub()
    for call in (
        lambda: stub.Fetch(sync_pb2.FetchRequest(selector=selector), timeout=5),
        lambda: next(stub.Watch(sync_pb2.WatchRequest(selector=selector), timeout=5)),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            call()
        assert raised.value.code() == code
        assert words in raised.value.details()


def test_a_request_that_does_not_decode_is_invalid_argument(plane: ControlPlane):
    channel = grpc.insecure_channel(plane.address)
    fetch = channel.unary_unary("/flagsidecar.v1.SyncService/Fetch")
    watch = channel.unary_stream("/flagsidecar.v1.SyncService/Watch")
    for call in (lambda: fetch(b"\x0a\xff", timeout=5), lambda: next(watch(b"\x0a\xff", timeout=5))):
        with pytest.raises(grpc.RpcError) as raised:
            call()
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid" in raised.value.details()


def test_a_heartbeat_comes_while_nothing_changes(tmp_path):
    plane = start_control_plane(tmp_path, heartbeat_interval=0.2)
    watcher = Watcher(plane.address)
    try:
        first = watcher.next()
        beat = watcher.next(timeout=3)
        assert beat.WhichOneof("update") == "heartbeat"
        assert beat.revision == first.revision
    finally:
        watcher.close()
        stop_control_plane(plane)


def big_flags(count: int, description_bytes: int) -> dict:
    return {
        "flags": [
            {
                "key": f"flag-{index}",
                "description": "x" * description_bytes,
                "enabled": True,
                "variants": [{"key": "a", "value": 1}, {"key": "b", "value": 2}],
                "defaultVariantWhenOn": "a",
            }
            for index in range(count)
        ]
    }


def change_big(plane: ControlPlane, round_: int) -> None:
    def mutate(document):
        document["flags"][0]["description"] = f"{round_}:" + "y" * 200_000

    plane.change(mutate)


def test_a_subscriber_that_does_not_read_delays_no_other_and_then_gets_the_whole_set(tmp_path):
    plane = start_control_plane(tmp_path, big_flags(5, 1000), queue_size=2)
    slow_channel = grpc.insecure_channel(plane.address, options=[("grpc.use_local_subchannel_pool", 1)])
    slow = sync_pb2_grpc.SyncServiceStub(slow_channel).Watch(sync_pb2.WatchRequest())  # never read
    fast = Watcher(plane.address)
    try:
        fast.next()
        eventually(lambda: plane.server.streams.open_streams == 2)
        # 60 changes of 200 KB each: far more than the slow client's transport takes unread.
        lags = []
        for round_ in range(60):
            changed = time.monotonic()
            change_big(plane, round_)
            revision = plane.store.revision
            (last,) = fast.until_revision(0)[-1:]  # the delta of this change
            assert last.delta.flags[0].description.startswith(f"{round_}:"), revision
            lags.append(time.monotonic() - changed)
        # Never waiting for the slow one: a send blocked on it would wait until the slow reader's
        # stream idle timeout (300 s here). The bound leaves room for a loaded machine (pytest
        # workers, builds).
        assert max(lags) < 10.0, lags
        assert plane.server.fanout.stats["fell_behind"] >= 1

        # When it reads at last: what its transport held, then the whole current set.
        current = plane.revision()
        seen = []
        for response in slow:
            seen.append(response)
            if response.revision == current:
                break
        assert seen[-1].WhichOneof("update") == "full_set"
        assert seen[-1].full_set_reason == sync_pb2.FULL_SET_REASON_FELL_BEHIND
        assert "fell behind" in seen[-1].message
    finally:
        slow.cancel()
        fast.close()
        stop_control_plane(plane)


def test_a_subscriber_that_takes_nothing_for_the_idle_timeout_is_closed_with_a_clear_status(tmp_path):
    plane = start_control_plane(tmp_path, big_flags(5, 1000), idle_timeout=1.0)
    channel = grpc.insecure_channel(plane.address, options=[("grpc.use_local_subchannel_pool", 1)])
    slow = sync_pb2_grpc.SyncServiceStub(channel).Watch(sync_pb2.WatchRequest())
    try:
        eventually(lambda: plane.server.streams.open_streams == 1)
        for round_ in range(40):
            change_big(plane, round_)
        eventually(lambda: plane.server.service.stats["write_timeouts"] == 1, timeout=10)
        with pytest.raises(grpc.RpcError) as raised:
            for _ in slow:
                pass
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "took no message for 1s" in raised.value.details()
        assert "reconnect with since_revision=" in raised.value.details()
        eventually(lambda: plane.server.streams.open_streams == 0)
    finally:
        slow.cancel()
        stop_control_plane(plane)


def test_200_watch_streams_are_held_without_a_thread_each(plane: ControlPlane):
    # One connection (grpcio's sync client runs a thread per channel; a call that is not
    # iterated costs it none). tests/sync/test_fleet.py counts a control-plane process's threads.
    channels = [grpc.insecure_channel(plane.address, options=[("grpc.use_local_subchannel_pool", 1)])]
    warm_up = sync_pb2_grpc.SyncServiceStub(channels[0]).Watch(sync_pb2.WatchRequest())
    next(warm_up)
    before = threading.active_count()
    calls = [sync_pb2_grpc.SyncServiceStub(channels[0]).Watch(sync_pb2.WatchRequest()) for _ in range(200)]
    try:
        firsts = [next(call) for call in calls]
        assert {first.WhichOneof("update") for first in firsts} == {"full_set"}
        assert plane.server.streams.open_streams == 201
        assert plane.server.fanout.subscribers == 201
        assert threading.active_count() == before, threading.enumerate()

        plane.change(set_default("banner-color", "red"))
        for call in calls:
            assert keys(next(call).delta.flags) == ["banner-color"]
        assert threading.active_count() == before
    finally:
        for call in (warm_up, *calls):
            call.cancel()
        for channel in channels:
            channel.close()
    eventually(lambda: plane.server.streams.open_streams == 0, timeout=15)
    assert plane.server.fanout.subscribers == 0


def test_shutdown_ends_every_watch_with_unavailable_and_the_revision_to_resume_from(tmp_path):
    plane = start_control_plane(tmp_path)
    watcher = Watcher(plane.address)
    try:
        first = watcher.next()
        plane.server.begin_shutdown()
        ended = watcher.received.get(timeout=5)
        assert isinstance(ended, grpc.RpcError)
        assert ended.code() == grpc.StatusCode.UNAVAILABLE
        assert f"reconnect with since_revision={first.revision}" in ended.details()
    finally:
        watcher.close()
        stop_control_plane(plane)


def test_the_sync_listener_refuses_streams_over_its_limit(tmp_path):
    from sidecar.server.streams import StreamLimits
    from sidecar.server.sync import SyncServer

    plane = start_control_plane(tmp_path)
    limited = SyncServer(
        plane.store,
        ["127.0.0.1:0"],
        stream_limits=StreamLimits(2, 16, 300.0, max_streams_option="--sync-max-streams"),
    )
    limited.start()
    watchers = [Watcher(limited.addresses[0]) for _ in range(2)]
    try:
        for watcher in watchers:
            watcher.next()
        stub = sync_pb2_grpc.SyncServiceStub(grpc.insecure_channel(limited.addresses[0]))
        with pytest.raises(grpc.RpcError) as raised:
            next(stub.Watch(sync_pb2.WatchRequest(), timeout=5))
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "all 2 allowed (--sync-max-streams) are in use" in raised.value.details()
    finally:
        for watcher in watchers:
            watcher.close()
        limited.stop()
        stop_control_plane(plane)

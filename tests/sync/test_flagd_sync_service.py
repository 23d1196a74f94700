"""flagd.sync.v1.FlagSyncService at the gRPC client level: a real store on a real flag file, the real
sync listener on a real port, grpc clients with the sidecar's own copy of flagd's messages."""

from __future__ import annotations

import json
import logging
import queue
import threading

import grpc
import pytest
from google.protobuf.json_format import MessageToDict

from flagd.sync.v1 import sync_pb2, sync_pb2_grpc
from tests.conftest import eventually

from .helpers import ControlPlane, start_control_plane, stop_control_plane


@pytest.fixture
def plane(tmp_path):
    control_plane = start_control_plane(tmp_path, static_context={"region": "eu"})
    yield control_plane
    stop_control_plane(control_plane)


def stub(plane: ControlPlane) -> sync_pb2_grpc.FlagSyncServiceStub:
    return sync_pb2_grpc.FlagSyncServiceStub(grpc.insecure_channel(plane.address))


def flags_of(configuration: str) -> dict:
    return json.loads(configuration)["flags"]


def test_sync_flags_sends_the_whole_translated_set_then_every_change(plane):
    call = stub(plane).SyncFlags(sync_pb2.SyncFlagsRequest(), timeout=10)
    received: queue.Queue = queue.Queue()

    def read() -> None:
        try:
            for response in call:
                received.put(response)
        except grpc.RpcError:
            pass  # cancelled at the end

    threading.Thread(target=read, daemon=True).start()
    first = received.get(timeout=5)
    flags = flags_of(first.flag_configuration)
    context = MessageToDict(first.sync_context)
    assert context["region"] == "eu"  # --context-value, as flagd's -X
    left_out = context["$flagSidecar"]["leftOut"]
    assert set(flags) | set(left_out) == {f["key"] for f in plane.document["flags"]}
    assert not set(flags) & set(left_out)
    assert (
        flags["banner-color"]
        == {
            "state": "ENABLED",
            "variants": {"blue": "#1f77b4", "red": "#d62728"},
            "defaultVariant": "blue",
        }
        or "targeting" in flags["banner-color"]
    )

    assert "new-checkout" in left_out  # a percentage split

    def set_default(key: str, variant: str):
        def mutate(document):
            next(f for f in document["flags"] if f["key"] == key)["defaultVariantWhenOn"] = variant

        return mutate

    # A change to a left-out flag changes nothing served: no message; the next one is the next
    # change that does.
    plane.change(set_default("new-checkout", "on"))
    plane.change(set_default("banner-color", "red"))
    second = received.get(timeout=5)
    assert flags_of(second.flag_configuration)["banner-color"]["defaultVariant"] == "red"
    assert received.empty()
    call.cancel()


def test_fetch_all_flags_and_get_metadata(plane):
    client = stub(plane)
    fetched = flags_of(client.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(), timeout=5).flag_configuration)
    assert "banner-color" in fetched
    metadata = MessageToDict(client.GetMetadata(sync_pb2.GetMetadataRequest(), timeout=5))["metadata"]
    assert metadata["region"] == "eu"
    assert metadata["$flagSidecar"]["flagSet"] == "default"


def test_get_metadata_is_never_empty(tmp_path):
    """The Python provider reads GetMetadata's metadata when sync_context is empty, and fails on an
    empty one: with no --context-value there is still the reserved key."""
    plane = start_control_plane(tmp_path)
    try:
        response = stub(plane).GetMetadata(sync_pb2.GetMetadataRequest(), timeout=5)
        assert "$flagSidecar" in MessageToDict(response)["metadata"]
    finally:
        stop_control_plane(plane)


@pytest.mark.parametrize(
    ("field", "header", "code"),
    [
        ("flag-set=default", None, None),
        ("flagSetId=default", None, None),
        ("", "flag-set=default", None),
        ("flag-set=other", None, grpc.StatusCode.NOT_FOUND),
        # The header wins over the (deprecated) field.
        ("flag-set=default", "flag-set=other", grpc.StatusCode.NOT_FOUND),
        ("flag-set=other", "flagSetId=default", None),
        ("source=flags.json", None, grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_the_selector_header_and_field(plane, field, header, code):
    metadata = (("flagd-selector", header),) if header is not None else None
    request = sync_pb2.FetchAllFlagsRequest(selector=field)
    if code is None:
        assert stub(plane).FetchAllFlags(request, metadata=metadata, timeout=5).flag_configuration
        stream = stub(plane).SyncFlags(
            sync_pb2.SyncFlagsRequest(selector=field), metadata=metadata, timeout=5
        )
        assert next(stream).flag_configuration
        stream.cancel()
        return
    with pytest.raises(grpc.RpcError) as raised:
        stub(plane).FetchAllFlags(request, metadata=metadata, timeout=5)
    assert raised.value.code() == code
    with pytest.raises(grpc.RpcError) as streamed:
        next(stub(plane).SyncFlags(sync_pb2.SyncFlagsRequest(selector=field), metadata=metadata, timeout=5))
    assert streamed.value.code() == code
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        assert "flagSetId=NAME" in (raised.value.details() or "")


def test_a_malformed_request_is_invalid_argument(plane):
    channel = grpc.insecure_channel(plane.address)
    fetch = channel.unary_unary("/flagd.sync.v1.FlagSyncService/FetchAllFlags")
    with pytest.raises(grpc.RpcError) as raised:
        fetch(b"\xff\xff\xff", timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "FetchAllFlagsRequest" in (raised.value.details() or "")


def test_shutdown_ends_sync_flags_with_unavailable(tmp_path):
    plane = start_control_plane(tmp_path)
    stream = stub(plane).SyncFlags(sync_pb2.SyncFlagsRequest(), timeout=10)
    assert next(stream).flag_configuration
    plane.server.begin_shutdown()
    with pytest.raises(grpc.RpcError) as raised:
        next(stream)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    stop_control_plane(plane)


def test_what_is_left_out_is_logged_once_per_change(plane, caplog):
    caplog.set_level(logging.INFO, logger="sidecar.server.sync.flagd_service")
    client = stub(plane)

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if getattr(r, "event", "") == "flagd_sync_left_out"]

    client.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(), timeout=5)
    client.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(), timeout=5)
    assert len(logged()) == 1
    assert "newly: " in logged()[0]
    assert "new-checkout: percentage split" in logged()[0]

    def edit(key: str, **fields):
        def mutate(document):
            next(f for f in document["flags"] if f["key"] == key).update(fields)

        return mutate

    plane.change(edit("banner-color", defaultVariantWhenOn="red"))  # still served: nothing to say
    eventually(
        lambda: '"red"' in client.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(), timeout=5).flag_configuration
    )
    assert len(logged()) == 1
    split = [{"distributions": [{"variant": "blue", "percentage": 50}, {"variant": "red", "percentage": 50}]}]
    plane.change(edit("banner-color", rules=split))

    def fetched_then_logged() -> list[str]:
        client.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(), timeout=5)  # translates the new set
        return logged()

    eventually(lambda: len(fetched_then_logged()) == 2)
    assert "newly: banner-color: percentage split" in logged()[1]


SPLIT_DOCUMENT = {
    "flags": [
        {
            "key": "half",
            "enabled": True,
            "variants": [{"key": "a", "value": "A"}, {"key": "b", "value": "B"}],
            "defaultVariantWhenOn": "a",
            "rules": [
                {"distributions": [{"variant": "a", "percentage": 50}, {"variant": "b", "percentage": 50}]}
            ],
        }
    ]
}


@pytest.mark.parametrize(
    ("provider_id", "served"),
    [("", False), ("checkout", False), ("checkout,fractional=v2", True), (" fractional = v2 ", True)],
)
def test_splits_reach_only_a_provider_id_saying_fractional_v2(tmp_path, provider_id, served):
    plane = start_control_plane(tmp_path, SPLIT_DOCUMENT)
    try:
        client = stub(plane)
        request = sync_pb2.FetchAllFlagsRequest(provider_id=provider_id)
        fetched = flags_of(client.FetchAllFlags(request, timeout=5).flag_configuration)
        stream = client.SyncFlags(sync_pb2.SyncFlagsRequest(provider_id=provider_id), timeout=5)
        first = next(stream)
        stream.cancel()
        left_out = MessageToDict(first.sync_context)["$flagSidecar"]["leftOut"]
        assert ("half" in fetched) is served
        assert ("half" in flags_of(first.flag_configuration)) is served
        assert ("half" in left_out) is not served
        if served:
            assert "fractional" in json.dumps(fetched["half"]["targeting"])
    finally:
        stop_control_plane(plane)


def test_another_fractional_version_is_invalid_argument(plane):
    with pytest.raises(grpc.RpcError) as raised:
        stub(plane).FetchAllFlags(sync_pb2.FetchAllFlagsRequest(provider_id="fractional=v3"), timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "fractional=v2" in (raised.value.details() or "")

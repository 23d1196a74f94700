"""Keepalive on the sync listener: clients that ping an idle Watch get no GOAWAY (flagd issues
#1998 and #2021: grpc's default enforcement sent `too_many_pings` to providers pinging every 30 s).

The real figures are minutes (clients may ping every 10 s; ours pings every 30 s), so the stream
test scales them down: a client pinging every 300 ms against the listener's enforcement scaled
to 100 ms keeps its idle stream, and against grpc's default enforcement it is sent GOAWAY."""

from __future__ import annotations

import grpc
import pytest

from flagsidecar.v1 import sync_pb2, sync_pb2_grpc
from sidecar.server.sync.server import KEEPALIVE_OPTIONS, MIN_CLIENT_PING_INTERVAL_MS
from sidecar.syncset import CLIENT_CHANNEL_OPTIONS

from .helpers import start_control_plane, stop_control_plane

PINGING_CLIENT = (
    ("grpc.keepalive_time_ms", 300),
    ("grpc.keepalive_timeout_ms", 2000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.use_local_subchannel_pool", 1),
)
SCALED = tuple(
    (name, 100 if name == "grpc.http2.min_ping_interval_without_data_ms" else value)
    for name, value in KEEPALIVE_OPTIONS
)


def test_our_client_pings_less_often_than_the_listener_allows_also_without_a_call():
    client, server = dict(CLIENT_CHANNEL_OPTIONS), dict(KEEPALIVE_OPTIONS)
    assert client["grpc.keepalive_time_ms"] >= 2 * MIN_CLIENT_PING_INTERVAL_MS
    assert server["grpc.http2.min_ping_interval_without_data_ms"] == MIN_CLIENT_PING_INTERVAL_MS
    assert server["grpc.keepalive_permit_without_calls"] == 1  # pings between streams too
    assert client["grpc.http2.max_pings_without_data"] == 0  # idle streams keep being checked


def idle_watch_outcome(address: str, seconds: float) -> grpc.StatusCode:
    """Hold an idle Watch (heartbeats far apart) with a client pinging every 300 ms."""
    channel = grpc.insecure_channel(address, options=PINGING_CLIENT)
    call = sync_pb2_grpc.SyncServiceStub(channel).Watch(sync_pb2.WatchRequest(), timeout=seconds)
    try:
        for _ in call:
            pass
    except grpc.RpcError as error:
        return error.code()
    finally:
        channel.close()
    return grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("keepalive", "outcome"),
    [
        (SCALED, grpc.StatusCode.DEADLINE_EXCEEDED),  # held until the client's own deadline
        ((), grpc.StatusCode.UNAVAILABLE),  # grpc's defaults: GOAWAY, too_many_pings
    ],
    ids=["the listener's enforcement", "grpc's default enforcement"],
)
def test_a_pinging_client_keeps_its_idle_watch(tmp_path, keepalive, outcome):
    plane = start_control_plane(tmp_path, keepalive=keepalive)
    try:
        # grpc's default sends its GOAWAY about 3 s in, after the strikes it allows.
        assert idle_watch_outcome(plane.address, 6.0) == outcome
    finally:
        stop_control_plane(plane)

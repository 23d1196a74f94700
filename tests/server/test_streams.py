"""No client can take what others need (sidecar.server.streams): streams of every kind are admitted
up to --max-streams and --max-streams-per-connection, refused beyond with RESOURCE_EXHAUSTED, ended
after --stream-idle-timeout, counted in /metrics; and while they are open, unary calls are answered.
Also the health Watch churn that froze the whole server. Real servers on real ports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client.exposition import generate_latest

from flagd.evaluation.v2 import evaluation_pb2 as flagd_v2
from flagd.evaluation.v2 import evaluation_pb2_grpc as flagd_v2_grpc
from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc, event_pb2, event_pb2_grpc
from sidecar.server.app import SidecarServer
from sidecar.server.metrics import SidecarMetrics
from sidecar.server.streams import StreamLimits
from sidecar.sources import FileSource
from sidecar.store import FlagStore
from tests.conftest import SAMPLE_FLAGS, eventually, write_flag_file

EVALUATE = evaluation_pb2.EvaluateRequest(flag_key="banner-color", user=evaluation_pb2.User(id="u1"))
TRACK = "flagsidecar.v1.EventService/Track"
WATCH = "grpc.health.v1.Health/Watch"
EVENT_STREAM = "flagd.evaluation.v2.Service/EventStream"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


class Running:
    def __init__(self, server: SidecarServer, metrics: SidecarMetrics) -> None:
        self.server = server
        self.metrics = metrics
        self.channels: list[grpc.Channel] = []

    def connection(self) -> grpc.Channel:
        """A channel on a connection of its own (grpcio shares subchannels between channels)."""
        channel = grpc.insecure_channel(self.server.address, options=[("grpc.use_local_subchannel_pool", 1)])
        self.channels.append(channel)
        return channel

    def exposition(self) -> str:
        return generate_latest(self.metrics.registry).decode()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[tuple[Running, FlagStore]] = []

    def run(**kwargs: Any) -> Running:
        store = FlagStore(FileSource(write_flag_file(tmp_path / f"f{len(started)}.yaml", SAMPLE_FLAGS)))
        store.start()
        metrics = SidecarMetrics(store, process_metrics=False)
        server = SidecarServer(store, "127.0.0.1:0", metrics=metrics, **kwargs)
        server.start()
        started.append((Running(server, metrics), store))
        return started[-1][0]

    yield run
    for running, store in started:
        for channel in running.channels:
            channel.close()
        running.server.stop(grace=0)
        store.close()


def evaluate(channel: grpc.Channel) -> str:
    return evaluation_pb2_grpc.EvaluationServiceStub(channel).Evaluate(EVALUATE, timeout=2).evaluation.variant


class IdleTrack:
    """A Track stream that sends `sends` messages and then nothing until released."""

    def __init__(self, channel: grpc.Channel, sends: int = 0) -> None:
        self.release = threading.Event()
        self.future = event_pb2_grpc.EventServiceStub(channel).Track.future(self._requests(sends), timeout=30)

    def _requests(self, sends: int) -> Iterator[event_pb2.TrackRequest]:
        for i in range(sends):
            yield event_pb2.TrackRequest(name=f"e{i}", user=evaluation_pb2.User(id="u"))
        self.release.wait(30)

    def error(self) -> grpc.RpcError:
        try:
            self.future.result(timeout=10)
        except grpc.RpcError as error:
            return error
        raise AssertionError("the stream ended with OK")

    def close(self) -> None:
        self.release.set()
        self.future.cancel()


def open_stream(kind: str, channel: grpc.Channel) -> Any:
    """An open stream of `kind` whose first response (if any) has arrived; call .cancel() on it."""
    if kind == TRACK:
        return IdleTrack(channel)
    if kind == WATCH:
        call = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=30
        )
    elif kind == EVENT_STREAM:
        call = flagd_v2_grpc.ServiceStub(channel).EventStream(flagd_v2.EventStreamRequest(), timeout=30)
    else:
        release = threading.Event()

        def requests() -> Iterator[reflection_pb2.ServerReflectionRequest]:
            yield reflection_pb2.ServerReflectionRequest(list_services="")
            release.wait(30)

        call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(requests(), timeout=30)
        call.add_callback(release.set)
    next(call)
    return call


KINDS = (TRACK, WATCH, EVENT_STREAM, REFLECTION)


def test_streams_of_every_kind_up_to_the_limit_leave_unary_calls_their_workers(start):
    # 64 open streams: more than the 8 + 32 workers the old pool had, which they all held.
    sidecar = start()
    per_connection = sidecar.server.streams.limits.max_per_peer
    assert sidecar.server.streams.limits.max_streams == len(KINDS) * per_connection
    streams = []
    for kind in KINDS:
        channel = sidecar.connection()
        streams += [open_stream(kind, channel) for _ in range(per_connection)]
    eventually(lambda: sidecar.server.streams.open_streams == len(streams), timeout=10)
    try:
        for _ in range(20):
            assert evaluate(sidecar.connection()) == "blue"
        # One more stream, on a connection of its own, is over --max-streams.
        extra = IdleTrack(sidecar.connection())
        error = extra.error()
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "all 64 allowed (--max-streams) are in use" in error.details()
        assert evaluate(sidecar.connection()) == "blue"
        exposition = sidecar.exposition()
        for kind in KINDS:
            assert f'flag_sidecar_streams_open{{method="{kind}"}} {float(per_connection)}' in exposition
        assert (
            f'flag_sidecar_streams_refused_total{{method="{TRACK}",reason="max_streams"}} 1.0' in exposition
        )
    finally:
        for stream in streams:
            stream.cancel() if not isinstance(stream, IdleTrack) else stream.close()
    eventually(lambda: sidecar.server.streams.open_streams == 0, timeout=10)


def test_one_connection_cannot_take_every_stream(start):
    sidecar = start(stream_limits=StreamLimits(max_streams=8, max_per_peer=3))
    greedy = sidecar.connection()
    streams = [IdleTrack(greedy) for _ in range(3)]
    eventually(lambda: sidecar.server.streams.open_streams == 3)
    error = IdleTrack(greedy).error()
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "on this connection: 3 of 3 allowed (--max-streams-per-connection)" in error.details()
    # Another client still gets streams, and everyone unary calls.
    watch = open_stream(WATCH, sidecar.connection())
    assert sidecar.server.streams.open_streams == 4
    assert evaluate(greedy) == "blue"
    refused = (
        f'flag_sidecar_streams_refused_total{{method="{TRACK}",reason="max_streams_per_connection"}} 1.0'
    )
    assert refused in sidecar.exposition()
    watch.cancel()
    for stream in streams:
        stream.close()


def test_idle_streams_are_ended_and_streams_with_traffic_are_not(start):
    sidecar = start(stream_limits=StreamLimits(idle_timeout=0.5))
    channel = sidecar.connection()
    track = IdleTrack(channel, sends=2)
    watch = open_stream(WATCH, channel)
    error = track.error()
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "after 0.5s without a message (--stream-idle-timeout); 2 messages were received" in error.details()
    with pytest.raises(grpc.RpcError) as caught:
        next(watch)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    eventually(lambda: sidecar.server.streams.open_streams == 0)
    assert f'flag_sidecar_streams_idle_closed_total{{method="{TRACK}"}} 1.0' in sidecar.exposition()

    # A Track stream that keeps sending stays open well past the idle timeout.
    def steady() -> Iterator[event_pb2.TrackRequest]:
        for i in range(12):
            time.sleep(0.1)
            yield event_pb2.TrackRequest(name=f"e{i}", user=evaluation_pb2.User(id="u"))

    response = event_pb2_grpc.EventServiceStub(channel).Track(steady(), timeout=10)
    assert response.accepted == 12


def test_health_watch_churn_does_not_freeze_the_server(start):
    # grpcio's non-blocking Watch deadlocked its polling thread against a worker within seconds
    # of this churn: every call on every service then hit its deadline, for good.
    sidecar = start()
    channel = sidecar.connection()
    stub = health_pb2_grpc.HealthStub(channel)
    failures: list[str] = []

    def churn() -> None:
        for _ in range(150):
            call = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=5)
            try:
                next(call)
            except grpc.RpcError as error:
                failures.append(f"{error.code()}: {error.details()}")
                return
            call.cancel()

    threads = [threading.Thread(target=churn) for _ in range(8)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        assert evaluate(channel) == "blue"
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    assert not failures
    assert evaluate(sidecar.connection()) == "blue"
    eventually(lambda: sidecar.server.streams.open_streams == 0)

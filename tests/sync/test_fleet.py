"""A fleet of real processes: a control-plane sidecar reading a flag file, with its sync listener,
and downstream sidecars with `--source grpc://...`, evaluated through their own gRPC API."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import grpc
import pytest

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc, sync_pb2, sync_pb2_grpc
from tests.conftest import SAMPLE_FLAGS, eventually, write_flag_file
from tests.ports import free_port
from tests.serve_process import ServeProcess


class Fleet:
    def __init__(
        self, tmp_path: Path, *control_plane_options: str, scheme: str = "grpc", query: str = ""
    ) -> None:
        self.document = copy.deepcopy(SAMPLE_FLAGS)
        self.flag_file = write_flag_file(tmp_path / "flags.yaml", self.document)
        # Port 0 at first, read back from the log: a port probed free here could be handed to the
        # process's own --listen 127.0.0.1:0 before its sync listener binds it. A restart reuses it.
        self.sync_port = 0
        self.options = control_plane_options
        self.processes: list[ServeProcess] = []
        self.control_plane = self.start_control_plane()
        self.upstream = f"{scheme}://localhost:{self.sync_port}?backoff_max=0.5{query}"

    def start_control_plane(self) -> ServeProcess:
        process = ServeProcess(self.flag_file, "--sync-listen", f"127.0.0.1:{self.sync_port}", *self.options)
        self.processes.append(process)
        eventually(
            lambda: "sync listener on" in process.log or process.process.poll() is not None, timeout=15
        )
        assert process.process.poll() is None, process.log
        bound = re.search(r"sync listener on 127\.0\.0\.1:(\d+)", process.log)
        assert bound, process.log
        self.sync_port = int(bound.group(1))
        return process

    def downstream(self, *extra: str) -> ServeProcess:
        process = ServeProcess(None, "--source", self.upstream, *extra)
        self.processes.append(process)
        process.address()
        return process

    def set_banner(self, variant: str) -> None:
        flag = next(f for f in self.document["flags"] if f["key"] == "banner-color")
        flag["defaultVariantWhenOn"] = variant
        write_flag_file(self.flag_file, self.document)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture
def fleet(tmp_path):
    running = Fleet(tmp_path)
    yield running
    running.stop()


def banner(process: ServeProcess) -> str:
    with grpc.insecure_channel(process.address()) as channel:
        stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        request = evaluation_pb2.EvaluateRequest(flag_key="banner-color", user=evaluation_pb2.User(id="u1"))
        return str(stub.Evaluate(request, timeout=5).evaluation.variant)


def test_a_change_to_the_control_planes_file_reaches_every_downstream_sidecar(fleet: Fleet):
    downstreams = [fleet.downstream(), fleet.downstream()]
    assert [banner(d) for d in downstreams] == ["blue", "blue"]

    fleet.set_banner("red")

    for downstream in downstreams:
        eventually(lambda d=downstream: banner(d) == "red", timeout=10)
        assert "loaded 5 flags and 1 segments from grpc://localhost" in downstream.log


def test_a_downstream_keeps_serving_while_the_control_plane_is_down_and_catches_up(fleet: Fleet):
    downstream = fleet.downstream()
    assert banner(downstream) == "blue"

    fleet.control_plane.stop()  # SIGKILL
    eventually(lambda: "is unreachable" in downstream.log, timeout=10)
    assert '"event": "upstream_lost"' in downstream.log
    assert "still serving the last good set of 5 flags" in downstream.log
    assert banner(downstream) == "blue"  # the last good set

    fleet.set_banner("red")  # changed while the control plane is down
    fleet.control_plane = fleet.start_control_plane()  # same file, same port

    eventually(lambda: banner(downstream) == "red", timeout=15)
    # Logged before the new set is applied, but read from the pipe by another thread: it may lag.
    eventually(lambda: '"event": "upstream_regained"' in downstream.log, timeout=5)
    assert downstream.process.poll() is None


def test_a_downstream_started_without_its_control_plane_says_so_and_exits(tmp_path):
    port = free_port()
    process = ServeProcess(None, "--source", f"grpc://127.0.0.1:{port}?timeout=0.5")
    try:
        assert process.process.wait(20) != 0
        assert f"cannot read grpc://127.0.0.1:{port}: no flag-sidecar answered within 0.5s" in process.log
        assert f"is its --sync-listen on 127.0.0.1:{port}?" in process.log
    finally:
        process.stop()


def test_a_downstream_follows_a_control_plane_over_mutual_tls(tmp_path):
    from tests.ops.certs import make_certificates

    certs = make_certificates(tmp_path)
    tls = ("--tls-cert", str(certs.server.cert), "--tls-key", str(certs.server.key))
    client = f"&ca={certs.ca.cert}&cert={certs.client.cert}&key={certs.client.key}"
    fleet = Fleet(tmp_path, *tls, "--tls-client-ca", str(certs.ca.cert), scheme="grpcs", query=client)
    try:
        assert "sync listener on 127.0.0.1" in fleet.control_plane.log
        services = "flagsidecar.v1.SyncService, flagd.sync.v1.FlagSyncService"
        assert f"(TLS; services: {services})" in fleet.control_plane.log
        downstream = fleet.downstream()
        assert banner(downstream) == "blue"
        fleet.set_banner("red")
        eventually(lambda: banner(downstream) == "red", timeout=10)
        # Without the client certificate the control plane refuses the downstream.
        untrusted = ServeProcess(
            None, "--source", f"grpcs://localhost:{fleet.sync_port}?timeout=2&ca={certs.ca.cert}"
        )
        fleet.processes.append(untrusted)
        assert untrusted.process.wait(20) != 0
        assert "cannot read grpcs://localhost" in untrusted.log
    finally:
        fleet.stop()


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_200_watch_streams_do_not_add_threads_to_the_control_plane(fleet: Fleet):
    pid = fleet.control_plane.process.pid
    target = f"127.0.0.1:{fleet.sync_port}"
    # 20 connections (--max-streams-per-connection is 16) of 10 streams each.
    channels = [
        grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(20)
    ]
    first = sync_pb2_grpc.SyncServiceStub(channels[0]).Watch(sync_pb2.WatchRequest())
    next(first)
    with_one = threads_of(pid)
    calls = [
        sync_pb2_grpc.SyncServiceStub(channel).Watch(sync_pb2.WatchRequest())
        for channel in channels
        for _ in range(10)
    ]
    try:
        assert {next(call).WhichOneof("update") for call in calls} == {"full_set"}
        assert threads_of(pid) == with_one

        fleet.set_banner("red")
        for call in calls:
            update = next(call)
            assert [flag.key for flag in update.delta.flags] == ["banner-color"]
        assert threads_of(pid) == with_one
    finally:
        for call in (first, *calls):
            call.cancel()
        for channel in channels:
            channel.close()


def test_the_control_plane_counts_its_sync_streams_in_metrics(fleet: Fleet):
    import urllib.request

    downstream = fleet.downstream()
    banner(downstream)
    match = re.search(r"management endpoints on (http://\S+) ", fleet.control_plane.log)
    assert match is not None, fleet.control_plane.log

    def watching() -> bool:
        with urllib.request.urlopen(f"{match.group(1)}/metrics", timeout=5) as response:
            text = response.read().decode()
        return 'method="flagsidecar.v1.SyncService/Watch"} 1.0' in text

    eventually(watching, timeout=10)

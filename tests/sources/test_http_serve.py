"""`flag-sidecar serve --source http://...` as a real process against a real local HTTP server:
it serves and follows the document, keeps serving through an outage and says so (/readyz,
/metrics, the gRPC health service), and a restart during the outage serves the last-known-good
copy from --state-dir, then catches up."""

from __future__ import annotations

import re
import signal

import grpc
import pytest

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc
from tests.conftest import eventually
from tests.serve_process import ServeProcess, SidecarProbes
from tests.sources.flag_server import FlagServer


def flags(default: str) -> dict:
    return {
        "flags": [
            {
                "key": "f",
                "enabled": True,
                "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
                "defaultVariantWhenOn": default,
            }
        ]
    }


class Sidecar(SidecarProbes):
    def __init__(self, server: FlagServer, state_dir, *extra: str) -> None:
        self.process = ServeProcess(
            None,
            "--source",
            server.url,
            "--source-poll-interval",
            "0.1",
            "--source-timeout",
            "1",
            "--state-dir",
            str(state_dir),
            "--log-format",
            "text",
            *extra,
        )
        self.address = self.process.address()
        match = eventually(lambda: re.search(r"management endpoints on (http://\S+)", self.process.log))
        self.management = match.group(1)

    def variant(self) -> str:
        with grpc.insecure_channel(self.address) as channel:
            stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
            request = evaluation_pb2.EvaluateRequest(flag_key="f")
            return stub.Evaluate(request, timeout=5).evaluation.variant

    def stop(self) -> None:
        self.process.stop()  # SIGKILL: no goodbye, as a crash


@pytest.fixture
def server():
    server = FlagServer(flags("off")).start()
    yield server
    server.stop()


def test_serve_follows_an_http_source_through_an_outage_and_a_restart(server, tmp_path):
    state = tmp_path / "state"
    sidecar = Sidecar(server, state)
    try:
        assert sidecar.variant() == "off"
        assert sidecar.get("/readyz") == (200, "ready\n")
        assert sidecar.metric("flag_sidecar_source_up") == 1.0
        assert sidecar.metric("flag_sidecar_flag_set_age_seconds") < 5
        assert sidecar.health("flag-source") == "SERVING"

        server.serve(flags("on"))  # a change: applied by the next poll
        eventually(lambda: sidecar.variant() == "on", timeout=10)
        # The first load and the change (counted just after the swap the answer above saw).
        eventually(lambda: sidecar.metric("flag_sidecar_flag_set_reloads_total") == 2.0)
        reloads = 2.0
        polls = server.answered[304]
        eventually(lambda: server.answered[304] >= polls + 5, timeout=10)
        assert sidecar.metric("flag_sidecar_flag_set_reloads_total") == reloads  # 304s reload nothing

        sidecar.process.process.send_signal(signal.SIGHUP)  # a plain GET at once, and a reload
        eventually(lambda: sidecar.metric("flag_sidecar_flag_set_reloads_total") == reloads + 1)
        assert f"received SIGHUP: fetching the flags from {server.url} again" in sidecar.process.log

        server.stop()  # the outage
        eventually(lambda: sidecar.metric("flag_sidecar_source_up") == 0.0, timeout=10)
        assert sidecar.variant() == "on"  # the last good set keeps serving
        status, body = sidecar.get("/readyz")
        assert status == 200
        assert body.startswith(
            f"ready (stale: flag source {server.url} cannot be had: cannot connect (Connection refused) "
            "(since 20"
        )
        assert "; the served set was last current " in body
        assert sidecar.health("") == "SERVING"
        assert sidecar.health("flag-source") == "NOT_SERVING"
        assert sidecar.process.log.count("cannot be had") == 1
    finally:
        sidecar.stop()

    # A restart during the outage: the last-known-good copy, reported stale.
    sidecar = Sidecar(server, state)
    try:
        assert sidecar.variant() == "on"
        assert "serving the last known good copy (1 flags" in sidecar.process.log
        status, body = sidecar.get("/readyz")
        assert status == 200
        assert "serving the last known good copy from --state-dir" in body
        assert sidecar.metric("flag_sidecar_flag_set_last_known_good") == 1.0
        assert sidecar.metric("flag_sidecar_source_up") == 0.0
        assert sidecar.health("flag-source") == "NOT_SERVING"

        server.serve(flags("off"))
        server.start()  # back, with a change made during the outage
        eventually(lambda: sidecar.variant() == "off", timeout=15)
        eventually(lambda: sidecar.get("/readyz") == (200, "ready\n"), timeout=5)
        assert sidecar.metric("flag_sidecar_flag_set_last_known_good") == 0.0
        assert sidecar.metric("flag_sidecar_source_up") == 1.0
        assert sidecar.health("flag-source") == "SERVING"
        assert sidecar.process.log.count("answers again") == 1
    finally:
        sidecar.stop()


def test_serve_without_a_copy_does_not_start_while_the_source_is_down(server, tmp_path):
    server.stop()
    process = ServeProcess(None, "--source", server.url, "--source-timeout", "1")
    try:
        assert process.process.wait(20) == 1
        assert f"not serving: cannot read {server.url}" in process.log
        assert "cannot connect" in process.log
    finally:
        process.stop()

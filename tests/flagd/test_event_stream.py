"""EventStream: provider_ready, configuration_change, keep_alive, provider_shutdown."""

from __future__ import annotations

import queue
import threading
import time

import grpc
import pytest
from google.protobuf.json_format import MessageToDict

from flagd.evaluation.v1 import evaluation_pb2 as v1
from flagd.evaluation.v1 import evaluation_pb2_grpc as v1_grpc
from flagd.evaluation.v2 import evaluation_pb2 as v2
from flagd.evaluation.v2 import evaluation_pb2_grpc as v2_grpc
from tests.conftest import eventually

from . import flags as test_flags


class StreamReader:
    """Reads one EventStream on a thread; `next()` returns (type, data dict) or fails on timeout."""

    def __init__(self, channel: grpc.Channel, version: int = 2) -> None:
        pb, grpc_pb = (v1, v1_grpc) if version == 1 else (v2, v2_grpc)
        self.call = grpc_pb.ServiceStub(channel).EventStream(pb.EventStreamRequest(), timeout=30)
        self.messages: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for message in self.call:
                self.messages.put((message.type, MessageToDict(message.data)))
        except grpc.RpcError as error:
            self.messages.put(("error", error.code()))
        else:
            self.messages.put(("end", None))

    def next(self, timeout: float = 5.0):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no event within {timeout}s")

    def cancel(self) -> None:
        self.call.cancel()
        self.thread.join(timeout=5)


@pytest.mark.parametrize("version", [1, 2])
def test_provider_ready_comes_first_and_at_once(flagd_server, version):
    reader = StreamReader(flagd_server.channel, version)
    assert reader.next(timeout=2) == ("provider_ready", {})
    reader.cancel()


def test_configuration_change_lists_the_changed_flags(flagd_server):
    reader = StreamReader(flagd_server.channel)
    assert reader.next()[0] == "provider_ready"
    flagd_server.rewrite_flags(test_flags.changed())
    assert reader.next() == ("configuration_change", {"flags": {"changing-flag": {"type": "update"}}})

    document = test_flags.changed()
    document["flags"] = [f for f in document["flags"] if f["key"] != "int-flag"]
    document["flags"].append(
        {
            "key": "new-flag",
            "enabled": True,
            "variants": [{"key": "v", "value": 1}],
            "defaultVariantWhenOn": "v",
        }
    )
    flagd_server.rewrite_flags(document)
    assert reader.next() == (
        "configuration_change",
        {"flags": {"int-flag": {"type": "delete"}, "new-flag": {"type": "write"}}},
    )
    reader.cancel()


def test_both_versions_get_every_change(flagd_server):
    readers = [StreamReader(flagd_server.channel, 1), StreamReader(flagd_server.channel, 2)]
    assert [r.next()[0] for r in readers] == ["provider_ready", "provider_ready"]
    flagd_server.rewrite_flags(test_flags.changed())
    for reader in readers:
        assert reader.next()[1] == {"flags": {"changing-flag": {"type": "update"}}}
        reader.cancel()


def test_segment_changes_name_the_flags_that_use_them(start_flagd):
    server = start_flagd(keepalive_interval=0.3)
    reader = StreamReader(server.channel)
    assert reader.next()[0] == "provider_ready"
    document = test_flags.flags()
    document["segments"][0]["rules"][0]["constraints"][0]["values"] = ["beta", "pro"]
    server.rewrite_flags(document)
    assert reader.next() == ("configuration_change", {"flags": {"segment-flag": {"type": "update"}}})
    # A segment no flag uses changes nothing any flag answers: no event (the keep-alive comes next).
    document["segments"][1]["rules"][0]["constraints"][0]["values"] = ["y"]
    server.rewrite_flags(document)
    assert reader.next()[0] == "keep_alive"
    reader.cancel()


def test_keep_alive_after_the_configured_silence(start_flagd):
    server = start_flagd(keepalive_interval=0.2)
    reader = StreamReader(server.channel)
    assert reader.next()[0] == "provider_ready"
    started = time.monotonic()
    assert reader.next(timeout=2)[0] == "keep_alive"
    assert reader.next(timeout=2)[0] == "keep_alive"
    assert time.monotonic() - started >= 0.35
    reader.cancel()


def test_shutdown_says_goodbye_and_ends_every_stream_promptly(flagd_server):
    readers = [StreamReader(flagd_server.channel, 1), StreamReader(flagd_server.channel, 2)]
    assert [r.next()[0] for r in readers] == ["provider_ready", "provider_ready"]
    started = time.monotonic()
    flagd_server.events.shutdown(timeout=2)
    assert time.monotonic() - started < 1
    for reader in readers:
        assert reader.next() == ("provider_shutdown", {})
        assert reader.next()[0] == "end"
    assert flagd_server.events.open_streams == 0
    # A stream opened after shutdown gets the goodbye at once.
    late = StreamReader(flagd_server.channel)
    assert late.next() == ("provider_shutdown", {})


def test_a_cancelled_stream_frees_its_worker(flagd_server):
    reader = StreamReader(flagd_server.channel)
    assert reader.next()[0] == "provider_ready"
    assert flagd_server.events.open_streams == 1
    reader.cancel()
    eventually(lambda: flagd_server.events.open_streams == 0)


def test_streams_beyond_the_limit_are_refused(start_flagd):
    server = start_flagd(max_streams=2)
    readers = [StreamReader(server.channel) for _ in range(2)]
    assert [r.next()[0] for r in readers] == ["provider_ready", "provider_ready"]
    extra = StreamReader(server.channel)
    assert extra.next() == ("error", grpc.StatusCode.RESOURCE_EXHAUSTED)
    # Unary calls still have workers.
    stub = v2_grpc.ServiceStub(server.channel)
    assert stub.ResolveBoolean(v2.ResolveBooleanRequest(flag_key="bool-flag"), timeout=5).value is True
    for reader in readers:
        reader.cancel()


def test_ready_waits_for_the_first_flag_set_and_is_not_a_change(start_flagd):
    server = start_flagd(start_store=False)
    reader = StreamReader(server.channel)
    time.sleep(0.2)
    assert reader.messages.empty()
    server.store.start()
    assert reader.next() == ("provider_ready", {})
    server.rewrite_flags(test_flags.changed())
    assert reader.next()[1] == {"flags": {"changing-flag": {"type": "update"}}}
    reader.cancel()

"""The fuzz suite's cases (tests/fuzz/grpc_fuzz.py: malformed, hostile, abandoned, odd metadata)
against a real control plane's sync listener: every method reflection lists there. No call may end
INTERNAL or UNKNOWN or hang, and the process stays up, logs no traceback and still answers."""

from __future__ import annotations

import copy

import grpc
import pytest

from flagsidecar.v1 import sync_pb2, sync_pb2_grpc
from tests.conftest import SAMPLE_FLAGS, eventually, write_flag_file
from tests.fuzz import grpc_fuzz
from tests.fuzz.test_grpc_fuzz import FACTORIES, SEED, _words
from tests.ports import free_port
from tests.serve_process import ServeProcess

CASES_PER_KIND = 60


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory):
    flags = write_flag_file(tmp_path_factory.mktemp("sync-fuzz") / "flags.yaml", copy.deepcopy(SAMPLE_FLAGS))
    port = free_port()
    process = ServeProcess(flags, "--sync-listen", f"127.0.0.1:{port}", "--stream-idle-timeout", "5")
    eventually(lambda: "sync listener on" in process.log or process.process.poll() is not None, timeout=15)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield process, channel
    channel.close()
    process.stop()


@pytest.mark.parametrize("kind", FACTORIES)
def test_the_sync_listener_survives_fuzzed_calls(control_plane, kind):
    process, channel = control_plane
    methods = grpc_fuzz.reflected_methods(channel)
    assert {m.service for m in methods} == {
        "flagsidecar.v1.SyncService",
        "flagd.sync.v1.FlagSyncService",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    selectors = ["flag-set=default", "flag-set", "flagSetId=default", "flagd-selector"]
    words = grpc_fuzz.vocabulary(methods, [*_words(SAMPLE_FLAGS), *selectors])
    report = grpc_fuzz.Report()
    for case in grpc_fuzz.cases(f"sync-{kind}", FACTORIES[kind], methods, CASES_PER_KIND, SEED, words):
        report.add(case, grpc_fuzz.run(channel, case))
    assert not report.problems, "\n".join(report.problems[:20])
    assert process.process.poll() is None, process.log
    assert "Traceback" not in process.log, process.log
    fetched = sync_pb2_grpc.SyncServiceStub(channel).Fetch(sync_pb2.FetchRequest(), timeout=5)
    assert len(fetched.flag_set.flags) == len(SAMPLE_FLAGS["flags"])

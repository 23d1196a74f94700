"""The benchmark harness still runs and compares like with like (no timings are checked here).

`make bench` is not part of CI; these keep its moving parts from breaking unnoticed: the engine
cases answer the same on both engines, and every bench server kind starts, answers the load
generator and has its CPU read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest
import yaml

from bench import engine_cases, flagsets
from bench import otlp as otlp_cases
from bench.rpc import LoadGenerator, memory_mb, pin_to_cpus, server_process
from bench.run import bare_server, before_tree, libyaml_events_s, real_sidecar
from bench.servers import EMPTY_METHOD, parse_request


def test_the_otlp_bench_delivers_every_evaluation_to_its_receiver(tmp_path: Path):
    results = otlp_cases.run(flagsets.write_flag_file(tmp_path, 10), repeats=1, calls=40, concurrency=2)
    assert results.sent == 40 * len(otlp_cases.CASES)
    assert results.delivered >= results.sent  # the warm-up calls' events too
    assert all(len(ratios) == 1 for ratios in results.on_vs_empty.values())


def test_engine_cases_answer_alike_on_both_engines():
    # run() asserts that ours and flagd-core give the expected answer for every case with one.
    results = engine_cases.run(repeats=1, number=4)
    assert [result.case for result in results] == [case for case, _key, _expected in engine_cases.CASES]


def test_the_parse_calibration_reads_the_request_as_the_sidecar_does():
    assert parse_request(flagsets.evaluate_request("static")) == {
        **flagsets.ATTRIBUTES,
        "$userId": flagsets.USER_ID,
    }


@pytest.mark.parametrize(
    ("kind", "env", "method", "request_kind"),
    [
        ("empty", {}, EMPTY_METHOD, None),
        ("empty", {"BENCH_PARSE_REQUEST": "1"}, EMPTY_METHOD, "static"),
        ("sidecar", {}, flagsets.EVALUATE_METHOD, "split"),
        ("sidecar", {"BENCH_INTERCEPTOR": "1"}, flagsets.EVALUATE_METHOD, "static"),
        ("aio-sidecar", {}, flagsets.EVALUATE_METHOD, "rules"),
    ],
)
def test_bench_servers_answer_the_load_generator(tmp_path: Path, kind, env, method, request_kind):
    request = flagsets.evaluate_request(request_kind) if request_kind else b""
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(server_process(kind, flagsets.write_flag_file(tmp_path, 10), env))
        load = stack.enter_context(LoadGenerator(server))
        measured = load.measure(method, request, calls=40, concurrency=2, warmup=4)
    assert measured.calls == 40
    assert measured.cpu_us > 0


@pytest.mark.parametrize("dependencies", [False, True], ids=["bare", "with-dependencies"])
def test_the_memory_floors_start(dependencies):
    with bare_server(dependencies) as (pid, ready):
        rss, private = memory_mb(pid)
    assert 0 < private < rss
    assert ready > 0


def test_the_yaml_floor_parses_the_whole_file(tmp_path: Path):
    flags = flagsets.write_flag_file(tmp_path, 10)
    assert libyaml_events_s(flags) > 0
    broken = tmp_path / "broken.yaml"
    broken.write_text(flags.read_text() + "flags: [unclosed\n")
    with pytest.raises(yaml.YAMLError):  # an error at the end is met: every event was read
        libyaml_events_s(broken)


@pytest.mark.skipif(not {0, 1} <= os.sched_getaffinity(0), reason="needs CPUs 0 and 1")
def test_pinned_servers_keep_every_thread_on_their_cpu(tmp_path: Path):
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(server_process("sidecar", flagsets.write_flag_file(tmp_path, 10)))
        load = stack.enter_context(LoadGenerator(server))
        pin_to_cpus(server.pid, {0})
        pin_to_cpus(load.pid, {1})
        # Concurrent calls make grpcio start worker threads after the pinning: they inherit it.
        load.measure(flagsets.EVALUATE_METHOD, flagsets.evaluate_request("static"), calls=40, concurrency=4)
        threads = [int(task.name) for task in Path(f"/proc/{server.pid}/task").iterdir()]
        assert {tid: os.sched_getaffinity(tid) for tid in threads} == {tid: {0} for tid in threads}
        assert os.sched_getaffinity(load.pid) == {1}


def test_the_measured_interceptor_times_calls_and_maps_the_edge_errors(tmp_path: Path):
    # What BENCH_INTERCEPTOR=1 measures must do the edge's work: time each call, map a SidecarError.
    from concurrent import futures

    import grpc

    from bench.servers import EdgeInterceptor
    from sidecar.server.edge import NotFound
    from sidecar.server.metrics import SidecarMetrics
    from sidecar.sources import FileSource
    from sidecar.store import FlagStore

    store = FlagStore(FileSource(flagsets.write_flag_file(tmp_path, 10)))
    metrics = SidecarMetrics(store)

    def handler(request: bytes, _context: object) -> bytes:
        if request:
            raise NotFound("flag 'x' not found")
        return b""

    server = grpc.server(futures.ThreadPoolExecutor(2), interceptors=[EdgeInterceptor(metrics)])
    handlers = {"Call": grpc.unary_unary_rpc_method_handler(handler)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.S", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary("/t.S/Call")
            assert call(b"", timeout=5) == b""
            with pytest.raises(grpc.RpcError) as failed:
                call(b"x", timeout=5)
        assert (failed.value.code(), failed.value.details()) == (
            grpc.StatusCode.NOT_FOUND,
            "flag 'x' not found",
        )
        calls = {key: sum(entry[:-1]) for key, entry in metrics.rpc_histograms().items()}
        assert calls == {("Call", "OK"): 1, ("Call", "NOT_FOUND"): 1}
    finally:
        server.stop(0)


def test_the_http_source_bench_polls_and_applies_changes():
    from bench.flagsets import flag_document
    from bench.http_source import per_poll
    from tests.sources.flag_server import FlagServer

    server = FlagServer(flag_document(5)).start()
    try:
        assert per_poll(server, 5, change=False) > 0
        assert server.answered[304] == 5
        assert per_poll(server, 3, change=True) > 0  # asserts every change was applied
    finally:
        server.stop()


def test_the_sync_bench_measures_propagation_and_idle_streams():
    from bench import sync_cases

    result = sync_cases.run(changes=2, idle_seconds=0.2, subscribers=4, idle_streams=20, downstreams=1)
    assert [len(values) for values in result.propagation_ms.values()] == [8, 8, 2]
    assert result.idle_streams == 20
    assert result.threads_after == result.threads_before


def test_the_inproc_bench_evaluates_through_the_client_against_a_control_plane(tmp_path: Path):
    # run() asserts that the client and flagd-core answer the rules flag alike, and that the
    # reporting client dropped nothing; run_isolated (what make bench calls) runs it in a fresh
    # interpreter and reads its results back.
    from bench import inproc_cases
    from bench.run import Report, write_inproc

    results = inproc_cases.run_isolated(repeats=1, number=20)
    assert all(len(values) == 1 and values[0] > 0 for values in results.us.values())
    assert set(results.us) == {
        "client",
        "client, events on",
        "client, prepared user",
        "engine alone",
        "provider resolve",
        "openfeature-sdk get_boolean_value",
        "flagd-core",
    }
    summary: list = []
    write_inproc(Report(), results, summary)
    assert [row[-1] for row in summary] == ["10", "10", "10"]


@pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain (clients/go)")
def test_the_go_caller_bench_measures_the_server_under_both_callers(tmp_path: Path):
    # The Go load generator is built, speaks bench.load's protocol, and both callers' calls are
    # charged to the server; the section renders with a target row per case.
    from bench import go_caller
    from bench.run import Report, write_go_caller

    results = go_caller.run(flagsets.write_flag_file(tmp_path, 10), repeats=1, calls=40, concurrency=2)
    for case in go_caller.CASES:
        for caller in go_caller.CALLERS:
            assert len(results.cpu_us[(caller, case)]) == 1
            assert results.cpu_us[(caller, case)][0] > 0
            assert results.empty_us[(caller, case)][0] > 0
        assert results.go_vs_python[case][0] > 0
    assert {(caller, what, clients) for caller, what, clients in results.p50_us} == {
        (caller, what, clients)
        for caller in go_caller.CALLERS
        for what, clients in [
            ("empty RPC", 2),
            ("empty RPC", 1),
            ("Evaluate, static", 2),
            ("Evaluate, static", 1),
            ("Evaluate, split", 2),
        ]
    }
    assert all(
        0 < p50 <= p99
        for key, p50s in results.p50_us.items()
        for p50, p99 in zip(p50s, results.p99_us[key], strict=True)
    )
    summary: list = []
    report = Report()
    write_go_caller(report, results, summary)
    assert [row[-1] for row in summary] == ["12", "12"]
    assert "| Go | Evaluate, static | 1 |" in report.text()


def test_the_otlp_thread_bench_charges_the_export_thread_and_delivers_everything():
    from bench import otlp_threads

    used, delivered, sent = otlp_threads.measure(rate=2000, seconds=0.2, kind="otlp")
    assert delivered == sent
    assert used["events-otlp-export"] > 0
    assert used["add_evaluation"] > 0


def test_a_before_tree_serves_from_its_own_sidecar_package(tmp_path: Path):
    # The start-up section starts the --before revision's code on the same file as ours.
    root = before_tree("HEAD", tmp_path)
    main = root / "sidecar" / "__main__.py"
    main.write_text('__import__("pathlib").Path(__file__).with_name("ran").touch()\n' + main.read_text())
    with real_sidecar(flagsets.write_flag_file(tmp_path, 10), root=root) as (_process, _target, ready):
        assert ready > 0
    assert (root / "sidecar" / "ran").exists()

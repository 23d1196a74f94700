"""Metrics exposition: hot-path counters surface as Prometheus families at scrape time."""

from __future__ import annotations

import threading
from typing import Any

import grpc
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc
from sidecar.engine import ErrorCode, Evaluation, Reason, flag_not_found
from sidecar.server import metrics as metrics_module
from sidecar.server.app import SidecarServer
from sidecar.server.metrics import SidecarMetrics
from sidecar.sources import FileSource
from sidecar.store import FlagStore

from .test_management import StubStore


def scrape(metrics: SidecarMetrics) -> dict[str, Any]:
    text = generate_latest(metrics.registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family: Any, suffix: str = "") -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for sample in family.samples
        if sample.name == family.name + suffix
    }


def on(flag="new-checkout", variant="on", reason=Reason.TARGETING_MATCH) -> Evaluation:
    return Evaluation(flag_key=flag, value=True, variant=variant, reason=reason)


def test_evaluations_by_flag_variant_reason() -> None:
    metrics = SidecarMetrics(process_metrics=False)
    for _ in range(3):
        metrics.record_evaluation(on())
    metrics.record_evaluations([on(variant="off", reason=Reason.SPLIT), on("banner", "blue", Reason.STATIC)])
    metrics.record_evaluation(
        Evaluation("upload-limit", None, "", Reason.ERROR, error_code=ErrorCode.GENERAL, error_message="x")
    )
    family = scrape(metrics)["flag_sidecar_evaluations"]
    assert family.type == "counter"
    assert samples(family, "_total") == {
        (("error_code", ""), ("flag", "new-checkout"), ("reason", "TARGETING_MATCH"), ("variant", "on")): 3,
        (("error_code", ""), ("flag", "new-checkout"), ("reason", "SPLIT"), ("variant", "off")): 1,
        (("error_code", ""), ("flag", "banner"), ("reason", "STATIC"), ("variant", "blue")): 1,
        (("error_code", "GENERAL"), ("flag", "upload-limit"), ("reason", "ERROR"), ("variant", "")): 1,
    }


def test_unknown_flag_keys_share_one_series() -> None:
    metrics = SidecarMetrics(process_metrics=False)
    for i in range(50):
        metrics.record_evaluation(flag_not_found(f"typo-{i}"))
    values = samples(scrape(metrics)["flag_sidecar_evaluations"], "_total")
    assert values == {
        (("error_code", "FLAG_NOT_FOUND"), ("flag", "(unknown)"), ("reason", "ERROR"), ("variant", "")): 50
    }


def test_series_are_capped(monkeypatch) -> None:
    monkeypatch.setattr(metrics_module, "MAX_EVALUATION_SERIES", 5)
    metrics = SidecarMetrics(process_metrics=False)
    for i in range(20):
        metrics.record_evaluation(on(f"flag-{i}"))
    values = samples(scrape(metrics)["flag_sidecar_evaluations"], "_total")
    assert len(values) == 6
    overflow = (("error_code", ""), ("flag", "(other)"), ("reason", "TARGETING_MATCH"), ("variant", ""))
    assert values[overflow] == 15
    assert sum(values.values()) == 20


def test_counts_from_many_threads_are_exact() -> None:
    metrics = SidecarMetrics(process_metrics=False)
    evaluation = on()

    def work() -> None:
        for _ in range(10_000):
            metrics.record_evaluation(evaluation)
            metrics.observe_rpc("Evaluate", 0.0001, grpc.StatusCode.OK)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    families = scrape(metrics)
    assert sum(samples(families["flag_sidecar_evaluations"], "_total").values()) == 40_000
    assert samples(families["flag_sidecar_rpc_duration_seconds"], "_count") == {
        (("code", "OK"), ("method", "Evaluate")): 40_000
    }


def test_rpc_latency_histogram_is_cumulative() -> None:
    metrics = SidecarMetrics(rpc_buckets=(0.001, 0.01, 0.1), process_metrics=False)
    for seconds in (0.0005, 0.001, 0.005, 0.05, 3.0):
        metrics.observe_rpc("Evaluate", seconds, grpc.StatusCode.OK)
    metrics.observe_rpc("EvaluateAll", 0.002, "INVALID_ARGUMENT")
    family = scrape(metrics)["flag_sidecar_rpc_duration_seconds"]
    assert family.type == "histogram"
    buckets = {
        sample.labels["le"]: sample.value
        for sample in family.samples
        if sample.name.endswith("_bucket") and sample.labels["method"] == "Evaluate"
    }
    # le is inclusive: 0.001 falls into the 0.001 bucket.
    assert buckets == {"0.001": 2, "0.01": 3, "0.1": 4, "+Inf": 5}
    sums = samples(family, "_sum")
    assert sums[(("code", "OK"), ("method", "Evaluate"))] == sum((0.0005, 0.001, 0.005, 0.05, 3.0))
    assert samples(family, "_count")[(("code", "INVALID_ARGUMENT"), ("method", "EvaluateAll"))] == 1


def test_store_stats_are_read_at_scrape_time() -> None:
    store = StubStore()
    metrics = SidecarMetrics(store, process_metrics=False)
    assert scrape(metrics)["flag_sidecar_flag_set_loaded"].samples[0].value == 0
    store.ready = True
    store.stats.update(reloads=2, rejected_reloads=1, cache_hits=7, cache_misses=4)
    families = scrape(metrics)
    assert families["flag_sidecar_flag_set_loaded"].samples[0].value == 1
    for name, value in (
        ("flag_sidecar_flag_set_reloads", 2),
        ("flag_sidecar_flag_set_rejected_reloads", 1),
        ("flag_sidecar_cache_hits", 7),
        ("flag_sidecar_cache_misses", 4),
    ):
        assert families[name].type == "counter"
        assert families[name].samples[0].value == value
    for name in ("flag_sidecar_cache_hits", "flag_sidecar_cache_misses"):
        assert "unless --eval-cache-size" in families[name].documentation  # why they stay 0 by default


def test_exporter_counters_per_exporter() -> None:
    metrics = SidecarMetrics(process_metrics=False)
    live = {"file": {"enqueued": 10, "exported": 8, "retried": 1, "spooled": 2, "dropped": 0}}
    metrics.add_exporter_counters(lambda: live)
    metrics.add_exporter_counters(lambda: {"webhook": {"enqueued": 3, "dropped": 3}})
    families = scrape(metrics)
    assert samples(families["flag_sidecar_events_enqueued"], "_total") == {
        (("exporter", "file"),): 10,
        (("exporter", "webhook"),): 3,
    }
    assert samples(families["flag_sidecar_events_dropped"], "_total")[(("exporter", "webhook"),)] == 3
    assert samples(families["flag_sidecar_events_spooled"], "_total")[(("exporter", "webhook"),)] == 0
    live["file"]["exported"] = 10  # read again on every scrape
    assert samples(scrape(metrics)["flag_sidecar_events_exported"], "_total")[(("exporter", "file"),)] == 10


def test_every_sidecar_metric_has_the_prefix() -> None:
    metrics = SidecarMetrics(StubStore())
    names = set(scrape(metrics))
    assert {name for name in names if not name.startswith(("process_", "python_"))} == {
        name for name in names if name.startswith("flag_sidecar_")
    }


def test_batches_fold_unknown_flags_and_respect_the_cap(monkeypatch) -> None:
    monkeypatch.setattr(metrics_module, "MAX_EVALUATION_SERIES", 3)
    metrics = SidecarMetrics(process_metrics=False)
    metrics.record_evaluations([flag_not_found("a"), flag_not_found("b"), *(on(f"f{i}") for i in range(4))])
    values = samples(scrape(metrics)["flag_sidecar_evaluations"], "_total")
    unknown = (("error_code", "FLAG_NOT_FOUND"), ("flag", "(unknown)"), ("reason", "ERROR"), ("variant", ""))
    overflow = (("error_code", ""), ("flag", "(other)"), ("reason", "TARGETING_MATCH"), ("variant", ""))
    assert values[unknown] == 2
    assert values[overflow] == 2
    assert sum(values.values()) == 6


@pytest.mark.parametrize("cap", [3, 8, 1000])
def test_batches_of_keys_count_as_one_evaluation_at_a_time(monkeypatch, cap) -> None:
    # count_evaluations takes a bulk path while the cap is out of reach: same counts either way.
    monkeypatch.setattr(metrics_module, "MAX_EVALUATION_SERIES", cap)
    batched, one_by_one = SidecarMetrics(process_metrics=False), SidecarMetrics(process_metrics=False)
    answers = [on(f"f{i % 7}", reason=Reason.SPLIT if i % 3 else Reason.STATIC) for i in range(12)]
    answers.append(flag_not_found("typo"))
    for size in (1, 5, 13, 2, 13):
        batch = answers[:size]
        batched.count_evaluations([metrics_module.evaluation_key(a) for a in batch])
        for answer in batch:
            one_by_one.record_evaluation(answer)
    assert batched.evaluation_counts() == one_by_one.evaluation_counts()
    assert sum(batched.evaluation_counts().values()) == 1 + 5 + 13 + 2 + 13


def test_observe_evaluation_rpc_is_one_evaluation_and_one_ok_call(monkeypatch) -> None:
    monkeypatch.setattr(metrics_module, "MAX_EVALUATION_SERIES", 4)
    combined, separate = SidecarMetrics(process_metrics=False), SidecarMetrics(process_metrics=False)
    for i, seconds in enumerate((0.00004, 0.0003, 0.002, 0.7, 9.0, 0.0003)):
        answer = on(f"f{i}")
        combined.observe_evaluation_rpc("Evaluate", metrics_module.evaluation_key(answer), seconds)
        separate.record_evaluation(answer)
        separate.observe_rpc("Evaluate", seconds, "OK")
    assert combined.evaluation_counts() == separate.evaluation_counts()
    assert combined.rpc_histograms() == separate.rpc_histograms()


def test_a_real_server_counts_calls_and_evaluations(sample_flag_file) -> None:
    store = FlagStore(FileSource(sample_flag_file))
    store.start()
    metrics = SidecarMetrics(store, process_metrics=False)
    server = SidecarServer(store, "127.0.0.1:0", metrics=metrics)
    server.start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
            for _ in range(3):
                stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="banner-color"), timeout=5)
            with pytest.raises(grpc.RpcError):
                stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key="nope"), timeout=5)
            total = stub.EvaluateAll(evaluation_pb2.EvaluateAllRequest(), timeout=5).total
    finally:
        server.stop(0)
        store.close()
    families = scrape(metrics)
    evaluations = samples(families["flag_sidecar_evaluations"], "_total")
    assert (
        evaluations[(("error_code", ""), ("flag", "banner-color"), ("reason", "STATIC"), ("variant", "blue"))]
        == 4
    )
    assert sum(evaluations.values()) == 3 + 1 + total
    calls = samples(families["flag_sidecar_rpc_duration_seconds"], "_count")
    assert calls == {
        (("code", "OK"), ("method", "Evaluate")): 3,
        (("code", "NOT_FOUND"), ("method", "Evaluate")): 1,
        (("code", "OK"), ("method", "EvaluateAll")): 1,
    }
    assert families["flag_sidecar_flag_set_reloads"].samples[0].value == 1
    assert families["flag_sidecar_flags"].samples[0].value == total

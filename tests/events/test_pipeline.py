"""EventPipeline: exporter specs, fan-out to independent exporters, evaluate-all, counters."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from sidecar.events import (
    DataExporterScheduler,
    EventPipeline,
    PipelineConfig,
    RetryPolicy,
    Route,
    SpecError,
    SpoolLockedError,
    build_pipeline,
    parse_exporter_spec,
)
from sidecar.events.exporters import FileExporter, WebhookExporter
from sidecar.events.feature_event import event_from_json
from tests.conftest import eventually

from .helpers import RecordingExporter, StuckExporter, error_evaluation, evaluation

FAST = RetryPolicy(initial=0.01, maximum=0.05)


def test_parse_exporter_spec() -> None:
    spec = parse_exporter_spec("file:dir=/var/events,format=jsonl")
    assert spec.kind == "file"
    assert dict(spec.options) == {"dir": "/var/events", "format": "jsonl"}
    assert parse_exporter_spec("log").options == {}
    spec = parse_exporter_spec("webhook:url=http://127.0.0.1:9000/events?a=1,secret=s3cret")
    assert dict(spec.options) == {"url": "http://127.0.0.1:9000/events?a=1", "secret": "s3cret"}


def test_commas_inside_values() -> None:
    # A comma starts a new option only before `key=`; `\,` is always a literal comma.
    spec = parse_exporter_spec("log:format=[{creationDate}] user={userKey}, flag={key},level=debug")
    assert spec.options["format"] == "[{creationDate}] user={userKey}, flag={key}"
    assert spec.options["level"] == "debug"
    assert parse_exporter_spec(r"log:format=a\,b=c").options["format"] == "a,b=c"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected KIND"),
        ("s3:bucket=x", "unknown kind 's3'"),
        ("file", "'dir' is required"),
        ("file:dir=/tmp/x,colour=red", "unknown option"),
        ("file:dir=/tmp/x,format=xml", "format='xml'"),
        ("webhook:url=ftp://x", "http"),
        ("webhook:url=http://x,timeout=soon", "not a number"),
        ("log:format={nope}", "unknown field"),
        ("log:flush_interval=0", "at least"),
        ("log:nokeyvalue", "not key=value"),
    ],
)
def test_bad_specs_are_explained(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        build_pipeline(PipelineConfig(exporters=[text], spool_dir=tmp_path))


def test_build_pipeline_names_and_options(tmp_path: Path) -> None:
    pipeline = build_pipeline(
        PipelineConfig(
            exporters=[
                f"file:dir={tmp_path}/a",
                f"file:dir={tmp_path}/b,format=csv,max_events=5,flush_interval=0.5,events=feature",
                "webhook:url=http://127.0.0.1:1/x,name=audit,dead_letter=/tmp/dl.jsonl,spool_max_mb=1",
            ],
            spool_dir=tmp_path / "spool",
        )
    )
    names = [s.name for s in pipeline.schedulers]
    assert names == ["file", "file-2", "audit"]
    second = pipeline.schedulers[1]
    assert isinstance(second.exporter, FileExporter)
    assert second.max_events_in_memory == 5
    assert second.flush_interval == 0.5
    assert pipeline.routes[1].kinds == frozenset({"feature"})
    audit = pipeline.schedulers[2]
    assert isinstance(audit.exporter, WebhookExporter)
    assert audit.spool is not None
    assert audit.spool.max_bytes == 1024 * 1024
    assert audit.spool.directory == tmp_path / "spool" / "audit"
    assert str(audit.dead_letter_path) == "/tmp/dl.jsonl"
    assert str(pipeline.schedulers[0].dead_letter_path) == str(
        tmp_path / "spool" / "file" / "dead-letter.jsonl"
    )
    with pytest.raises(SpecError, match="named 'x'"):
        build_pipeline(PipelineConfig(exporters=["log:name=x", "log:name=x"]))
    pipeline.close(0.1)


def test_a_spool_directory_has_one_owner(tmp_path: Path) -> None:
    first = build_pipeline(PipelineConfig(exporters=["log"], spool_dir=tmp_path))
    with pytest.raises(SpoolLockedError):
        build_pipeline(PipelineConfig(exporters=["log"], spool_dir=tmp_path))
    first.close(0.1)


def pipeline_of(*exporters: object, buffer_limit: int | None = None, **kwargs: object) -> EventPipeline:
    routes = [
        DataExporterScheduler(
            0.01, 50, e, logging.getLogger("test"), name=f"e{i}", retry=FAST, buffer_limit=buffer_limit
        )
        for i, e in enumerate(exporters)
    ]
    pipeline = EventPipeline(routes, **kwargs)
    pipeline.start()
    return pipeline


def test_add_evaluation_fans_out_to_every_exporter() -> None:
    a, b = RecordingExporter(), RecordingExporter(is_bulk=False)
    pipeline = pipeline_of(a, b)
    pipeline.add_evaluation(evaluation(), "u1", {"anonymous": True})
    pipeline.add_evaluation(error_evaluation(), "u2")
    assert pipeline.wait_idle(5)
    assert a.ids == b.ids
    assert [e.to_json()["variation"] for e in a.events] == ["on", "SdkDefault"]
    assert a.events[0].context_kind == "anonymousUser"
    pipeline.close(1)
    assert pipeline.stats()["e0"]["exported"] == 2


def test_only_an_exporter_that_wants_the_context_gets_it() -> None:
    plain, keeping = RecordingExporter(), RecordingExporter()
    keeping.wants_context = True  # type: ignore[attr-defined]  # as the users exporter says
    pipeline = pipeline_of(plain, keeping)
    context = {"email": "a@example.com", "$userId": "u1"}
    pipeline.add_evaluation(evaluation(), "u1", context)
    pipeline.add_evaluations([evaluation("a"), evaluation("b")], "u1", context)
    context["email"] = "changed@example.com"  # the caller's dict, after the call: not what was seen
    assert pipeline.wait_idle(5)
    pipeline.close(1)
    assert all("context" not in event.to_json() for event in plain.events)
    assert [event.to_json()["context"] for event in keeping.events] == [{"email": "a@example.com"}] * 3
    assert [event.event_id for event in keeping.events] == [event.event_id for event in plain.events]
    # Spooled and read back, the context stays.
    assert event_from_json(keeping.events[0].to_json()).to_json() == keeping.events[0].to_json()
    # Its bytes count in the exporter's budget: the event is larger than a plain one.
    assert keeping.events[0].size > plain.events[0].size


def test_flags_without_track_events_produce_nothing() -> None:
    exporter = RecordingExporter()
    pipeline = pipeline_of(exporter)
    quiet = evaluation()
    object.__setattr__(quiet, "track_events", False)
    pipeline.add_evaluation(quiet, "u1")
    pipeline.close(1)
    assert exporter.events == []


@pytest.mark.parametrize("enabled", [True, False])
def test_evaluate_all_events_can_be_turned_off(enabled: bool) -> None:
    exporter = RecordingExporter()
    pipeline = pipeline_of(exporter, events_on_evaluate_all=enabled)
    pipeline.add_evaluations([evaluation("a"), evaluation("b")], "u1")
    pipeline.close(1)
    assert len(exporter.events) == (2 if enabled else 0)


def test_tracking_events_only_reach_exporters_that_take_them() -> None:
    features, tracking = RecordingExporter(), RecordingExporter()
    routes = [
        Route(DataExporterScheduler(0.01, 50, features, name="f", retry=FAST), frozenset({"feature"})),
        Route(DataExporterScheduler(0.01, 50, tracking, name="t", retry=FAST), frozenset({"tracking"})),
    ]
    pipeline = EventPipeline(routes)
    pipeline.start()
    pipeline.add_evaluation(evaluation(), "u1")
    assert pipeline.track("checkout", "u1", {"plan": "pro"}, {"value": 3})
    pipeline.close(1)
    assert [e.kind for e in features.events] == ["feature"]
    assert [e.kind for e in tracking.events] == ["tracking"]


def test_a_stuck_exporter_does_not_hold_back_the_others_or_the_callers() -> None:
    stuck, healthy = StuckExporter(), RecordingExporter()
    # The healthy exporter's memory buffer holds the whole burst: on a slow machine its export
    # thread may fall behind the callers, and a full buffer would (rightly) drop events.
    pipeline = pipeline_of(stuck, healthy, buffer_limit=25_000)
    pipeline.add_evaluation(evaluation(), "first")
    assert stuck.entered.wait(5)  # the stuck exporter now hangs inside export()
    done = threading.Event()

    def evaluate_many() -> None:
        for i in range(20_000):
            pipeline.add_evaluation(evaluation(), f"u{i}")
        done.set()

    threading.Thread(target=evaluate_many, daemon=True).start()
    assert done.wait(30), "callers were held back by the stuck exporter"
    eventually(lambda: healthy.count == 20_001, timeout=30)
    stats = pipeline.stats()
    assert stats["e1"]["exported"] == 20_001
    assert stats["e0"]["exported"] == 0  # still stuck, and nothing lost without being counted
    assert stats["e0"]["enqueued"] + pipeline.dropped_by_reason()["e0"].get("intake_full", 0) == 20_001
    stuck.release.set()
    pipeline.close(2)


def test_can_accept_reports_saturation(tmp_path: Path) -> None:
    stuck = StuckExporter()
    scheduler = DataExporterScheduler(0.01, 10, stuck, name="s", buffer_limit=20, retry=FAST)
    pipeline = EventPipeline([scheduler])
    pipeline.start()
    assert pipeline.can_accept()
    for i in range(100):
        pipeline.track("e", f"u{i}")
    eventually(lambda: not pipeline.can_accept())
    stuck.release.set()
    eventually(pipeline.can_accept)
    pipeline.close(1)
    assert not pipeline.can_accept()

"""JSON and text log lines, with the store's `extra=` fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from sidecar.logging_setup import JsonFormatter, RepeatLimiter, configure_logging, suppressed_counts
from sidecar.server.metrics import SidecarMetrics


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_standard_and_extra_fields() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    logging.getLogger("sidecar.store").error(
        "rejected flag set from %s", "flags.yaml", extra={"event": "flags_rejected", "problems": ["a", "b"]}
    )
    line = stream.getvalue()
    assert line.count("\n") == 1
    entry = json.loads(line)
    assert entry["level"] == "error"
    assert entry["logger"] == "sidecar.store"
    assert entry["message"] == "rejected flag set from flags.yaml"
    assert entry["event"] == "flags_rejected"
    assert entry["problems"] == ["a", "b"]
    assert entry["timestamp"].endswith("Z")
    assert "T" in entry["timestamp"]


def test_json_exceptions_and_unserializable_extras() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("x").exception("export failed", extra={"path": object()})
    entry = json.loads(stream.getvalue())
    assert "RuntimeError: boom" in entry["exception"]
    assert entry["path"].startswith("<object object")


def test_level_filters_debug() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    logging.getLogger("x").debug("evaluated")
    assert stream.getvalue() == ""
    configure_logging("debug", "json", stream)
    logging.getLogger("x").debug("evaluated")
    assert json.loads(stream.getvalue())["level"] == "debug"


def test_text_format_appends_extras() -> None:
    stream = io.StringIO()
    configure_logging("info", "text", stream)
    logging.getLogger("sidecar.store").info("loaded 3 flags", extra={"event": "flags_loaded"})
    line = stream.getvalue().strip()
    assert line.endswith("INFO sidecar.store: loaded 3 flags event=flags_loaded")


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="json, text"):
        configure_logging("info", "xml")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_repeated_message_is_limited_then_summed_up() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    clock = FakeClock()
    handler.addFilter(RepeatLimiter(handler, limit=3, interval=60.0, clock=clock))
    log = logging.getLogger("test.repeat.limited")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    before = suppressed_counts().get("test.repeat.limited", 0)
    try:
        for number in range(1000):
            log.warning("undecodable request %d", number)
        log.info("another message")  # its own budget
        assert len(stream.getvalue().splitlines()) == 4
        assert suppressed_counts()["test.repeat.limited"] - before == 997
        clock.now += 61
        log.warning("undecodable request %d", 1000)
    finally:
        log.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines[:3]] == [f"undecodable request {n}" for n in range(3)]
    summary = lines[4]
    assert summary["event"] == "log_suppressed"
    assert summary["suppressed"] == 997
    assert summary["template"] == "undecodable request %d"
    assert summary["level"] == "warning"
    assert lines[5]["message"] == "undecodable request 1000"  # a new interval, a new budget
    assert len(lines) == 6


def test_configure_logging_limits_repeats_and_zero_turns_it_off() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream, repeat_limit=5)
    for _ in range(50):
        logging.getLogger("test.repeat.configured").warning("same line")
    assert len(stream.getvalue().splitlines()) == 5
    stream = io.StringIO()
    configure_logging("info", "json", stream, repeat_limit=0)
    for _ in range(50):
        logging.getLogger("test.repeat.configured").warning("same line")
    assert len(stream.getvalue().splitlines()) == 50


def test_suppressed_lines_are_a_prometheus_counter() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream, repeat_limit=1)
    for _ in range(4):
        logging.getLogger("test.repeat.metric").warning("again")
    registry = SidecarMetrics(process_metrics=False).registry
    value = registry.get_sample_value(
        "flag_sidecar_log_lines_suppressed_total", {"logger": "test.repeat.metric"}
    )
    assert value is not None
    assert value >= 3

"""JSON and text log lines, with the store's `extra=` fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from sidecar.logging_setup import configure_logging


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

"""Process-wide logging: JSON lines (the default, for log shippers) or plain text for a terminal.

A JSON line carries timestamp, level, logger and message, plus every `extra=` field the caller
passed (the store adds event="flags_loaded" / "flags_rejected" and problems=[...]), so a log
pipeline can filter on fields instead of parsing messages. Nothing logs per evaluation above
DEBUG: at thousands of calls per second that would cost more than the evaluation itself.

Lines that repeat are rate-limited (RepeatLimiter): a client sending a bad request a thousand times
a second must not fill the disk with the same warning. Per message (logger, level and the message
template before its arguments are filled in), at most `repeat_limit` lines pass per
`repeat_interval` seconds; the rest are counted, and once the interval is over one summary line
says how many were suppressed (event="log_suppressed", with the template and the count). The
summary comes with the next line logged after the interval, whichever message it is, so a burst
that stops is still summed up at the next line. The counts, by logger, are the Prometheus counter
flag_sidecar_log_lines_suppressed_total (suppressed_counts()).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from sidecar.options import option, parse_choice, parse_count, parse_positive_seconds

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "text")
DEFAULT_REPEAT_LIMIT = 10
DEFAULT_REPEAT_INTERVAL = 60.0
# Message templates tracked at once; past it, new ones share one budget (an f-string message
# carrying client input would otherwise make a key per request).
MAX_REPEAT_KEYS = 1024
_OTHER = ("(other)", 0, "(other)")

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", logging.INFO, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra=` fields are added as top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": _iso_utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: an extra field that is not JSON (a Path, an exception) still gets logged.
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines; `extra=` fields are appended as key=value so nothing is lost."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRIBUTES}
        # `problems` is already spelled out in the message; repeating it would double the line.
        extras.pop("problems", None)
        if extras:
            line += " " + " ".join(f"{key}={value}" for key, value in extras.items())
        return line


def _iso_utc(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class RepeatLimiter(logging.Filter):
    """A handler filter: at most `limit` lines per message template per `interval` seconds (0: no
    limit), then a summary line for what was suppressed (see the module docstring)."""

    def __init__(
        self,
        handler: logging.Handler,
        limit: int = DEFAULT_REPEAT_LIMIT,
        interval: float = DEFAULT_REPEAT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._handler = handler
        self.limit = limit
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        # (logger, level, template) -> [window start, lines in the window, suppressed in it]
        self._windows: dict[tuple[str, int, str], list[float]] = {}
        self._next_sweep = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.limit or getattr(record, "event", None) == "log_suppressed":
            return True
        now = self._clock()
        key = (record.name, record.levelno, str(record.msg))
        with self._lock:
            due = self._expired(now) if now >= self._next_sweep else []
            window = self._windows.get(key)
            if window is None:
                if len(self._windows) >= MAX_REPEAT_KEYS:
                    key = _OTHER
                    window = self._windows.get(key)
                if window is None:
                    window = self._windows[key] = [now, 0, 0]
            window[1] += 1
            allowed = window[1] <= self.limit
            if not allowed:
                window[2] += 1
                _count_suppressed(record.name)
        for summary in due:  # outside the lock: handling a summary runs this filter again
            self._handler.handle(summary)
        return allowed

    def _expired(self, now: float) -> list[logging.LogRecord]:
        """Summaries for the windows that are over (and forget those windows); under the lock."""
        self._next_sweep = now + min(self.interval, 1.0)
        summaries = []
        for key, (start, _lines, suppressed) in list(self._windows.items()):
            if now - start >= self.interval:
                del self._windows[key]
                if suppressed:
                    summaries.append(_summary(key, int(suppressed), now - start))
        return summaries


def _summary(key: tuple[str, int, str], suppressed: int, seconds: float) -> logging.LogRecord:
    name, level, template = key
    record = logging.getLogger(name).makeRecord(
        name,
        level or logging.WARNING,
        __file__,
        0,
        "suppressed %d similar log lines in the last %.0fs: %s",
        (suppressed, seconds, template[:200]),
        None,
    )
    record.event = "log_suppressed"
    record.suppressed = suppressed
    record.template = template[:200]
    return record


_suppressed: dict[str, int] = {}


def _count_suppressed(name: str) -> None:
    _suppressed[name] = _suppressed.get(name, 0) + 1


def suppressed_counts() -> dict[str, int]:
    """Log lines suppressed by RepeatLimiter since the process started, by logger name."""
    return dict(_suppressed)


def configure_logging(
    level: str = "info",
    log_format: str = "json",
    stream: TextIO | None = None,
    *,
    repeat_limit: int = DEFAULT_REPEAT_LIMIT,
    repeat_interval: float = DEFAULT_REPEAT_INTERVAL,
) -> None:
    """Replace the root logger's handlers with one writing `log_format` lines to stderr, lines that
    repeat limited to `repeat_limit` per `repeat_interval` seconds (0: no limit)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RepeatLimiter(handler, repeat_limit, repeat_interval))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


@dataclass(frozen=True)
class LoggingOptions:
    """The options of configure_logging (declared as sidecar.options explains)."""

    log_level: str = option(
        parse_choice(LOG_LEVELS), "info", "LEVEL", f"logging level: {', '.join(LOG_LEVELS)}"
    )
    log_format: str = option(
        parse_choice(LOG_FORMATS), "json", "FORMAT", "json (one object per line) or text"
    )
    log_repeat_limit: int = option(
        parse_count,
        DEFAULT_REPEAT_LIMIT,
        "N",
        "at most N lines of one message per --log-repeat-interval, then one summary (0: no limit)",
    )
    log_repeat_interval: float = option(
        parse_positive_seconds, DEFAULT_REPEAT_INTERVAL, "SECONDS", "the interval of --log-repeat-limit"
    )

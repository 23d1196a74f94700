"""The log exporter: one line per event through Python logging (non-bulk)."""

from __future__ import annotations

import logging
import string
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..feature_event import EVENT_FIELDS, Event, dumps
from ..options import Options

DEFAULT_FORMAT = '[{formattedDate}] user="{userKey}", flag="{key}", value="{value}", variation="{variation}"'
DEFAULT_TRACKING_FORMAT = '[{formattedDate}] user="{userKey}", event="{key}", details={trackingEventDetails}'
DEFAULT_LOGGER = "flagsidecar.events"
# Every name a template may use: the JSON fields of both event kinds, plus formattedDate (RFC 3339).
FIELDS = frozenset({*EVENT_FIELDS, "formattedDate"})
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""  # a field the other kind of event has (value for a tracking event, ...)


def _fields(event: Event) -> _Blank:
    """The event's JSON fields, non-strings as JSON text (true, null, {"a":1}), plus formattedDate."""
    fields = _Blank()
    for key, value in event.to_json().items():
        fields[key] = value if isinstance(value, str) else dumps(value, (", ", ": "))
    fields["formattedDate"] = datetime.fromtimestamp(event.creation_date, UTC).isoformat(timespec="seconds")
    return fields


def check_template(template: str) -> None:
    """Reject templates that name unknown fields, or that str.format cannot parse."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"log format {template!r}: {exc}") from None
    for name in names:
        base = name.split(".")[0].split("[")[0]
        if base not in FIELDS:
            raise ValueError(
                f"log format {template!r}: unknown field {{{name}}}; fields: {', '.join(sorted(FIELDS))}"
            )


class LogExporter:
    """Writes each event as one log record, formatted with a str.format template."""

    is_bulk = False

    def __init__(
        self,
        template: str = DEFAULT_FORMAT,
        logger: logging.Logger | None = None,
        level: int = logging.INFO,
        tracking_template: str = DEFAULT_TRACKING_FORMAT,
    ) -> None:
        check_template(template)
        check_template(tracking_template)
        self.template = template
        self.tracking_template = tracking_template
        self.logger = logger or logging.getLogger(DEFAULT_LOGGER)
        self.level = level

    def export(self, events: Sequence[Event]) -> None:
        if not self.logger.isEnabledFor(self.level):
            return
        for event in events:
            template = self.template if event.kind == "feature" else self.tracking_template
            self.logger.log(self.level, template.format_map(_fields(event)))

    @classmethod
    def from_options(cls, options: Options) -> LogExporter:
        template = options.string("format", DEFAULT_FORMAT) or DEFAULT_FORMAT
        tracking = options.string("tracking_format", DEFAULT_TRACKING_FORMAT) or DEFAULT_TRACKING_FORMAT
        level = options.choice("level", LEVELS, "info")
        logger_name = options.string("logger", DEFAULT_LOGGER) or DEFAULT_LOGGER
        try:
            return cls(template, logging.getLogger(logger_name), LEVELS[level], tracking)
        except ValueError as exc:
            raise options.error(str(exc)) from None

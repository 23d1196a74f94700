"""The Exporter protocol (the seed's `Exporter` interface) and the errors an exporter may raise.

An exporter is called from its scheduler's worker thread only, one batch at a time, so it needs
no locking of its own. `export` returns normally on success and raises on failure:

- `RetryableExportError` (or any other exception): the batch is kept (spooled) and retried
  with exponential backoff and jitter; `retry_after` asks for at least that many seconds.
- `PermanentExportError`: retrying cannot help (an HTTP 400, an event the sink rejects); the
  batch goes to the exporter's dead-letter file with the reason and is counted as dead-lettered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .feature_event import Event


class ExportError(Exception):
    """Base class of the errors an exporter raises on purpose. `reason` is a short label for the
    per-exporter error counter (flag_sidecar_events_export_errors_total); default: the class name."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class RetryableExportError(ExportError):
    """A transient failure: try again later (no sooner than retry_after seconds, if given)."""

    def __init__(self, message: str, retry_after: float | None = None, *, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


class PermanentExportError(ExportError):
    """A failure that retrying will not fix: the batch goes to the dead-letter file, or only
    `events` when given (the rest of the batch was delivered)."""

    def __init__(
        self, message: str, *, reason: str | None = None, events: Sequence[Event] | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        self.events = events


@runtime_checkable
class Exporter(Protocol):
    """Where events go. `is_bulk` False: events are exported as they come, without waiting for
    more; True: they are batched by count (max_events_in_memory) and age (flush_interval)."""

    @property
    def is_bulk(self) -> bool: ...

    def export(self, events: Sequence[Event]) -> None: ...


def close_exporter(exporter: object) -> None:
    """Call the exporter's optional `close()`."""
    close = getattr(exporter, "close", None)
    if callable(close):
        close()

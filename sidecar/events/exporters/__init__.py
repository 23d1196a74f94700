"""Exporters by kind, as named in `--exporter KIND[:key=value,...]`.

A kind's module is imported when an exporter of that kind is checked or built, not before: a
sidecar that exports to a file does not pay at start for the Kafka, webhook and OTLP modules."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..exporter import Exporter
from ..options import Options

if TYPE_CHECKING:
    from .file import FileExporter
    from .kafka import KafkaExporter
    from .log import LogExporter
    from .otlp import OtlpExporter
    from .webhook import WebhookExporter

# Each kind's exporter class, as (module, class): it has from_options, and may have check_options.
_CLASSES: dict[str, tuple[str, str]] = {
    "log": ("log", "LogExporter"),
    "file": ("file", "FileExporter"),
    "webhook": ("webhook", "WebhookExporter"),
    "otlp": ("otlp", "OtlpExporter"),
    "kafka": ("kafka", "KafkaExporter"),
}


def _exporter_class(module: str, name: str) -> Any:
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def _factory(module: str, name: str) -> Callable[[Options], Exporter]:
    def build(options: Options) -> Exporter:
        exporter: Exporter = _exporter_class(module, name).from_options(options)
        return exporter

    return build


def _check(module: str, name: str) -> Callable[[Options], None]:
    def check(options: Options) -> None:
        _exporter_class(module, name).check_options(options)

    return check


FACTORIES: dict[str, Callable[[Options], Exporter]] = {
    kind: _factory(module, name) for kind, (module, name) in _CLASSES.items()
}

# Per kind, the option values checked as the options are read (exit 2), before any exporter is built.
CHECKS: dict[str, Callable[[Options], None]] = {"kafka": _check(*_CLASSES["kafka"])}


def __getattr__(name: str) -> Any:
    """The exporter classes by name (`from sidecar.events.exporters import FileExporter`), imported
    on first use."""
    for module, class_name in _CLASSES.values():
        if class_name == name:
            return _exporter_class(module, class_name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CHECKS",
    "FACTORIES",
    "FileExporter",
    "KafkaExporter",
    "LogExporter",
    "OtlpExporter",
    "WebhookExporter",
]

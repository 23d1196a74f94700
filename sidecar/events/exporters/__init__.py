"""Exporters by kind, as named in `--exporter KIND[:key=value,...]`."""

from __future__ import annotations

from collections.abc import Callable

from ..exporter import Exporter
from ..options import Options
from .file import FileExporter
from .kafka import KafkaExporter
from .log import LogExporter
from .otlp import OtlpExporter
from .webhook import WebhookExporter

FACTORIES: dict[str, Callable[[Options], Exporter]] = {
    "log": LogExporter.from_options,
    "file": FileExporter.from_options,
    "webhook": WebhookExporter.from_options,
    "otlp": OtlpExporter.from_options,
    "kafka": KafkaExporter.from_options,
}

# Per kind, the option values checked as the options are read (exit 2), before any exporter is built.
CHECKS: dict[str, Callable[[Options], None]] = {
    "kafka": KafkaExporter.check_options,
}

__all__ = [
    "CHECKS",
    "FACTORIES",
    "FileExporter",
    "KafkaExporter",
    "LogExporter",
    "OtlpExporter",
    "WebhookExporter",
]

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

__all__ = ["FACTORIES", "FileExporter", "KafkaExporter", "LogExporter", "OtlpExporter", "WebhookExporter"]

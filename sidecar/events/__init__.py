"""Evaluation events: FeatureEvent, DataExporterScheduler, exporters, durable spool (DESIGN.md, "Events")."""

from .exporter import Exporter, ExportError, PermanentExportError, RetryableExportError
from .feature_event import Event, FeatureEvent, TrackingEvent, event_from_json, new_event_id
from .options import ExporterSpec, SpecError, parse_exporter_spec
from .pipeline import EventPipeline, PipelineConfig, Route, build_pipeline
from .scheduler import DataExporterScheduler, RetryPolicy
from .spool import Spool, SpoolLockedError

__all__ = [
    "DataExporterScheduler",
    "Event",
    "EventPipeline",
    "ExportError",
    "Exporter",
    "ExporterSpec",
    "FeatureEvent",
    "PermanentExportError",
    "PipelineConfig",
    "RetryPolicy",
    "RetryableExportError",
    "Route",
    "SpecError",
    "Spool",
    "SpoolLockedError",
    "TrackingEvent",
    "build_pipeline",
    "event_from_json",
    "new_event_id",
    "parse_exporter_spec",
]

"""Where flag documents come from, chosen by URI scheme (DESIGN.md, "Layers").

A source returns a Document (bytes, format, revision, origin) and tells its listener when it may
have changed; it does not parse or compile (sidecar.store does) and knows neither the engine, the
store nor the server (the import contract `sources` in pyproject.toml)."""

from .database import DEFAULT_FLAG_SET, DatabaseSource, FlagDatabase
from .document import FORMATS, JSON, YAML, Document, Source, SourceListener, format_of_name
from .file import FileSource, read_document
from .registry import REGISTRY, SourceRegistry, SourceURIError, open_database, open_source

__all__ = [
    "DEFAULT_FLAG_SET",
    "FORMATS",
    "JSON",
    "REGISTRY",
    "YAML",
    "DatabaseSource",
    "Document",
    "FileSource",
    "FlagDatabase",
    "Source",
    "SourceListener",
    "SourceRegistry",
    "SourceURIError",
    "format_of_name",
    "open_database",
    "open_source",
    "read_document",
]

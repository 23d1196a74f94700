"""Where flag documents come from, chosen by URI scheme (DESIGN.md, "Layers").

A source returns a Document (bytes, format, revision, origin) and tells its listener when it may
have changed; it does not parse or compile (sidecar.store does) and knows neither the engine, the
store nor the server (the import contract `sources` in pyproject.toml)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .document import FORMATS, JSON, YAML, Document, Source, SourceListener, format_of_name
from .file import FileSource, read_document
from .registry import REGISTRY, SourceRegistry, SourceURIError, open_database, open_source
from .remote_options import DEFAULT_FLAG_SET

if TYPE_CHECKING:
    from .database import DatabaseSource, FlagDatabase


def __getattr__(name: str) -> Any:
    """The database's classes, imported on first use: a sidecar serving a file does not load them."""
    if name in ("DatabaseSource", "FlagDatabase"):
        from . import database

        return getattr(database, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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

"""From a source's Document to a compiled FlagSet: parse (flag_document), validate and compile."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager

from ..engine import FlagSet, FlagSetError, FlagSetReader, Problem
from ..engine.compiler import VersionOf
from ..sources import FORMATS, JSON, Document, read_document
from .flag_document import parse_flag_document


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a flag set is parsed and compiled.

    Parsing and compiling allocate many objects and free almost none, so the collector keeps
    running and finds nothing, and each full pass walks everything built so far: with the
    collector on, a 10,000-flag file takes twice as long to load (BENCHMARKS.md).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def compile_document(document: Document, version_of: VersionOf | None = None) -> FlagSet:
    """Parse, validate and compile a document. Raises FlagSetError listing every problem."""
    if document.format not in FORMATS:
        problem = Problem(f"unknown document format {document.format!r}", document.origin)
        raise FlagSetError([problem])
    origin = document.origin
    with _gc_paused():
        # Each flag is read as the parser hands it over, so the document is never whole in memory.
        reader = FlagSetReader(origin)
        rest = parse_flag_document(
            document.data, origin, json_format=document.format == JSON, on_flag=reader.flag
        )
        return reader.compile(rest, version_of)


def load_flag_file(path: str | os.PathLike[str], version_of: VersionOf | None = None) -> FlagSet:
    """Read, parse, validate and compile a flag file. Raises FlagSetError or OSError."""
    return compile_document(read_document(path), version_of)

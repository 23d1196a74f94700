"""From a source's Document to a compiled FlagSet: parse (flag_document), validate and compile."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager

from ..engine import FlagSet, FlagSetError, FlagSetReader, Problem
from ..engine.compiler import VersionOf
from ..sources.document import FORMATS, JSON, Document
from ..sources.file import read_document
from .flag_document import parse_flag_document

_frozen_at_start = False  # whether the first load froze what the process had built by then


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a flag set is parsed and compiled.

    Parsing and compiling allocate many objects and free almost none, so the collector keeps
    running and finds nothing, and each full pass walks everything built so far: with the
    collector on, a 10,000-flag file takes twice as long to load (BENCHMARKS.md).

    Re-enabled, the collector would then walk all of it anyway, three passes on the way to its
    oldest generation, still finding nothing, during start-up. So the process's first load freezes
    what exists by then (gc.freeze: the imports and the start-up set, all long-lived) before the
    collector comes back. A later load unfreezes it first: the set it replaces, frozen, would be
    out of the collector's sight for good.
    """
    global _frozen_at_start
    was_enabled = gc.isenabled()
    gc.disable()
    first = not _frozen_at_start
    if not first and gc.get_freeze_count():
        gc.unfreeze()
    try:
        yield
    finally:
        if first:
            _frozen_at_start = True
            gc.freeze()
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

"""A set of entries (source_cache.py) compiled incrementally from the served one: only the entries
whose text changed are parsed and read into definitions; the others keep the definitions the served
set was read from, as the same objects, so that the compiler keeps their compiled flags and segments
too (engine/reuse.py). A change to one flag of a 100-flag set then costs each follower that flag's
parse and compile, not the set's (bench/notes.md).

The result is the set a full load of the cache's document gives (the same flags, segments, versions
and warnings). Whatever the partial read cannot vouch for goes the full way, which also lists the
problems exactly as a full load does: a problem in the changed entries, a segment removed (flags
that the partial read did not look at may test it), a definition whose key is not its entry's.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass

from ..engine import FlagSet, FlagSetError, compile_definitions, read_definitions
from ..engine.compiler import VersionOf
from ..engine.definitions import FlagSetDefinition
from ..sources.document import Document
from ..sources.entries import entries_document
from .flag_document import parse_flag_document
from .loading import compile_document
from .source_cache import CachedEntry


@dataclass(frozen=True, slots=True)
class LoadedEntries:
    """A compiled set and the entries' texts it was read from (cache key -> text)."""

    flag_set: FlagSet
    texts: Mapping[str, str]


def load_entries(
    entries: Mapping[str, CachedEntry],
    document: Document,
    version_of: VersionOf | None,
    served: LoadedEntries | None,
) -> LoadedEntries:
    """Compile `entries` (`document` is the same set as one flag document), from `served` when it
    is given. Raises FlagSetError listing every problem, as compile_document(document) would."""
    texts = {key: cached.entry.text for key, cached in entries.items()}
    flag_set = None
    if served is not None:
        # No collection mid-way: the young generation fills several times over in a partial load,
        # and each pass on the way to the swap finds nothing to free (what it builds is kept).
        enabled = gc.isenabled()
        gc.disable()
        try:
            flag_set = _incremental(entries, texts, document, version_of, served)
        finally:
            if enabled:
                gc.enable()
    if flag_set is None:
        flag_set = compile_document(document, version_of)
    return LoadedEntries(flag_set, texts)


def _incremental(
    entries: Mapping[str, CachedEntry],
    texts: Mapping[str, str],
    document: Document,
    version_of: VersionOf | None,
    served: LoadedEntries,
) -> FlagSet | None:
    """The set compiled from the changed entries and the served definitions; None: go the full way."""
    old = served.flag_set
    if old.definitions is None:
        return None
    old_texts = served.texts
    # (cache key, entry) by the entry's key, as the cache's document has them.
    held = sorted(((key, cached.entry) for key, cached in entries.items()), key=lambda item: item[1].key)
    flags = [entry for _, entry in held if entry.kind == "flag"]
    segments = [(key, entry) for key, entry in held if entry.kind == "segment"]
    if old.segments.keys() - {entry.key for _, entry in segments}:
        return None
    changed = [entry for key, entry in held if entry.kind == "flag" and old_texts.get(key) != entry.text]
    # All segments are read (they are few), for the keys the changed flags may test and the checks
    # across segments (cycles, nesting); the unchanged ones then keep their served definitions.
    partial = entries_document(
        (entry.text for entry in changed), (entry.text for _, entry in segments), {}, "", document.origin
    )
    try:
        read = read_definitions(parse_flag_document(partial.data, document.origin, json_format=True))
    except FlagSetError:
        return None
    read_flags = {definition.key: definition for definition in read.flags}
    read_segments = {definition.key: definition for definition in read.segments}
    changed_keys, segment_keys = {entry.key for entry in changed}, {entry.key for _, entry in segments}
    if read_flags.keys() != changed_keys or read_segments.keys() != segment_keys:
        return None
    old_flags = {definition.key: definition for definition in old.definitions.flags}
    old_segments = {definition.key: definition for definition in old.definitions.segments}
    try:
        definitions = FlagSetDefinition(
            tuple(read_flags.get(entry.key) or old_flags[entry.key] for entry in flags),
            tuple(
                old_segments[entry.key] if old_texts.get(key) == entry.text else read_segments[entry.key]
                for key, entry in segments
            ),
        )
    except KeyError:  # an entry whose definition's key is not its own
        return None
    return compile_definitions(definitions, document.origin, version_of, previous=old)

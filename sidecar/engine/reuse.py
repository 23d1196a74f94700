"""Taking over the served set's compiled flags and segments in a compile of the next set.

A change to one flag of a database set hands the compiler the whole set again (the store's
entry_loading.py keeps the unchanged definitions as the objects they were). Compiling all of it
again cost each follower most of its way to serving the change (bench/notes.md), so a compiled
Flag or Segment of the previous set is kept when:

- its definition is the same object (an unchanged entry's definition is handed over as it was;
  identity, not equality, since 1 == 1.0 == True in Python but not in a flag document);
- every segment it references is kept too (a changed segment recompiles the segments and flags
  that test it; a new Segment object is what the recompiled constraints must hold);
- for a flag, its version is what a full compile would give it now (the source or the version
  table may have moved it on), since its answers carry the version.

Everything else is compiled as a full compile would, so the result is the same set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from .definitions import ConstraintDefinition, FlagDefinition, SegmentDefinition
from .model import Flag, FlagSet, Segment
from .operators import SEGMENT_OPERATIONS

# compiler.VersionOf (the compiler imports this module, not the other way round).
VersionOf = Callable[[str, str], int]


def referenced_segments(constraints: Iterable[ConstraintDefinition]) -> set[str]:
    """The segment keys that these constraints test."""
    return {
        value
        for constraint in constraints
        if constraint.operation in SEGMENT_OPERATIONS
        for value in constraint.values
    }


class Reuse:
    """The previous set's compiled flags and segments, offered to the next compile."""

    __slots__ = ("_flags", "_segments", "_segments_all_kept", "flags_kept", "segments_kept")

    def __init__(self, previous: FlagSet) -> None:
        self._flags = previous.flags
        self._segments = previous.segments
        self._segments_all_kept: bool | None = None  # known once the flags' turn comes
        self.flags_kept = 0
        self.segments_kept = 0

    def segment(self, definition: SegmentDefinition, compiled: Mapping[str, Segment]) -> Segment | None:
        """The previous Segment for `definition`, or None (compile it). `compiled`: the new set's
        segments compiled so far (every segment this one references, in topological order)."""
        old = self._segments.get(definition.key)
        if old is None or old.definition is not definition:
            return None
        constraints = (c for rule in definition.rules for c in rule.constraints)
        if not self._kept(referenced_segments(constraints), compiled):
            return None
        self.segments_kept += 1
        return old

    def flag(
        self, definition: FlagDefinition, compiled: Mapping[str, Segment], version_of: VersionOf | None
    ) -> Flag | None:
        """The previous Flag for `definition`, or None (compile it)."""
        old = self._flags.get(definition.key)
        if old is None or old.definition is not definition:
            return None
        version = definition.version or (version_of(definition.key, old.fingerprint) if version_of else 1)
        if version != old.version:
            return None
        if self._segments_all_kept is None:
            # Flags are compiled after every segment: when no segment changed (most writes), no
            # flag's references need looking at.
            previous = self._segments
            self._segments_all_kept = len(compiled) == len(previous) and all(
                compiled.get(key) is segment for key, segment in previous.items()
            )
        if not self._segments_all_kept:
            constraints = (c for rule in definition.rules for c in rule.constraints)
            if not self._kept(referenced_segments(constraints), compiled):
                return None
        self.flags_kept += 1
        return old

    def _kept(self, keys: set[str], compiled: Mapping[str, Segment]) -> bool:
        """Whether each of these segments is, in the new set, the object the previous set had."""
        previous = self._segments
        return all(compiled.get(key) is previous.get(key) is not None for key in keys)

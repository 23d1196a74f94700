"""A source that hands over its flags and segments one by one (a database), so that the store can
hold them as cache entries and ask for only what changed after the revision it holds.

The whole-document `fetch()` stays (SIGHUP, tools); `entries()` is the same set as entries, and
`changes_since(revision)` what the writes after `revision` touched. An unchanged set answers
`changes_since` with one small query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from .document import JSON, Document, Source

EntryKind = Literal["flag", "segment"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One flag or segment as the source has it: its definition's JSON (flag-file shape)."""

    kind: EntryKind
    key: str
    version: int
    text: str


@dataclass(frozen=True, slots=True)
class EntryChanges:
    """The entries the source's writes after a revision touched, and the keys they deleted; with
    `whole`, `changed` is the whole set (a first read, a database that went back)."""

    revision: str
    changed: tuple[Entry, ...] = ()
    removed: tuple[tuple[EntryKind, str], ...] = ()
    whole: bool = False

    @property
    def unchanged(self) -> bool:
        return not (self.changed or self.removed or self.whole)


@runtime_checkable
class EntrySource(Source, Protocol):
    def entries(self) -> EntryChanges:
        """The whole set now, `whole`. Raises OSError when it cannot be had."""
        ...

    def changes_since(self, revision: str) -> EntryChanges:
        """What changed after `revision` (unchanged: one small query). Raises OSError."""
        ...


def entries_document(
    flags: Iterable[str], segments: Iterable[str], versions: dict[str, int], revision: str, origin: str
) -> Document:
    """Definitions' JSON texts joined into one flag document (no re-encoding), with the source's
    versions."""
    data = f'{{"flags":[{",".join(flags)}],"segments":[{",".join(segments)}]}}'.encode()
    return Document(data, JSON, revision, origin, versions)

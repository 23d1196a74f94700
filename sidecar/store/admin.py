"""FlagAdmin: the write side of a flag database (the admin API and the `flags import` command).

Every write runs in one database transaction that holds the write lock (database.py): the current
set is read inside it, the change is applied to it in memory (admin_edits.py), the whole resulting
set is read and compiled by the flag file's validator, and only a set that passes is stored, with
the new version, its history row and one revision bump. A refused write stores nothing and lists
every problem, located by a field path in the flag's (or segment's) document.

Versions: a write names the version it read (expected_version) and is refused with the current one
when someone else wrote first (VersionConflict); a create names none (the key must be free). Each
change gives the flag (segment) the next version; a deletion is a version too, and a re-created key
goes on counting, so a number is never served for two definitions. A rollback writes an earlier
version's definition as a new version. A write that changes nothing (an update to the values the
flag already has) stores nothing and answers the current version.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from ..engine import (
    FlagDefinition,
    FlagSetDefinition,
    FlagSetError,
    Problem,
    SegmentDefinition,
    compile_definitions,
    flag_document,
    read_definitions,
    segment_document,
)
from ..engine.operators import SEGMENT_OPERATIONS
from ..sources.database import (
    FlagDatabase,
    HistoryEntry,
    Kind,
    SetContent,
    SetWriter,
    StoredItem,
    UserEvaluation,
    UserRecord,
)
from .admin_errors import (
    AlreadyExistsError,
    FieldProblem,
    InUseError,
    InvalidRequest,
    NotFoundError,
    VersionConflict,
)

DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000

Document = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FlagRecord:
    definition: FlagDefinition
    version: int
    updated_at: str
    updated_by: str


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    definition: SegmentDefinition
    version: int
    updated_at: str
    updated_by: str


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One version of a flag: who made it, when, how (create, update, delete, rollback, import),
    the definition before and after (None before a creation, after a deletion), and the names of
    the document fields that changed."""

    version: int
    action: str
    actor: str
    at: str
    before: FlagDefinition | None
    after: FlagDefinition | None
    changed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_page_token: str  # "" on the last page


@dataclass(frozen=True, slots=True)
class SetDiff:
    """What an import changes (or would, with dry_run), by key."""

    added_flags: tuple[str, ...] = ()
    updated_flags: tuple[str, ...] = ()
    removed_flags: tuple[str, ...] = ()
    added_segments: tuple[str, ...] = ()
    updated_segments: tuple[str, ...] = ()
    removed_segments: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.added_flags,
                self.updated_flags,
                self.removed_flags,
                self.added_segments,
                self.updated_segments,
                self.removed_segments,
            )
        )


class FlagAdmin:
    """Reads and writes the flag sets of one FlagDatabase (whose connection it owns)."""

    def __init__(self, database: FlagDatabase) -> None:
        self.database = database

    def start(self) -> None:
        """Bring the schema up to date (OSError when the database cannot be opened)."""
        self.database.migrate()

    def close(self) -> None:
        self.database.close()

    # ------------------------------------------------------------ reads

    def get_flag(self, flag_set: str, key: str) -> FlagRecord:
        item = self.database.item(flag_set, "flag", key)
        if item is None:
            raise NotFoundError(f"flag {key!r} not found in flag set {flag_set!r}")
        return _flag_record(item)

    def list_flags(self, flag_set: str, page_size: int, page_token: str) -> Page[FlagRecord]:
        items, token = self._page(flag_set, "flag", page_size, page_token)
        return Page(tuple(_flag_record(item) for item in items), token)

    def get_segment(self, flag_set: str, key: str) -> SegmentRecord:
        item = self.database.item(flag_set, "segment", key)
        if item is None:
            raise NotFoundError(f"segment {key!r} not found in flag set {flag_set!r}")
        return _segment_record(item)

    def list_segments(self, flag_set: str, page_size: int, page_token: str) -> Page[SegmentRecord]:
        items, token = self._page(flag_set, "segment", page_size, page_token)
        return Page(tuple(_segment_record(item) for item in items), token)

    def _page(
        self, flag_set: str, kind: Kind, page_size: int, page_token: str
    ) -> tuple[list[StoredItem], str]:
        size = _page_size(page_size)
        after = _decode_token(page_token)
        items = self.database.page(flag_set, kind, after, size + 1)
        more = len(items) > size
        items = items[:size]
        return items, _encode_token(items[-1].key) if more and items else ""

    def flag_history(self, flag_set: str, key: str, page_size: int, page_token: str) -> Page[HistoryRecord]:
        """The flag's versions, newest first."""
        size = _page_size(page_size)
        before = _decode_token(page_token)
        if before and not before.isdigit():
            raise _bad_token()
        entries = self.database.history(
            flag_set, "flag", key, before_version=int(before) if before else None, limit=size + 1
        )
        if not entries and not before:
            raise NotFoundError(f"flag {key!r} has no history in flag set {flag_set!r}")
        more = len(entries) > size
        entries = entries[:size]
        token = _encode_token(str(entries[-1].version)) if more and entries else ""
        return Page(tuple(_history_record(entry) for entry in entries), token)

    # ------------------------------------------------------------ users (the `users` exporter's)

    def list_users(self, flag_set: str, page_size: int, page_token: str) -> Page[UserRecord]:
        size = _page_size(page_size)
        users = self.database.users(flag_set, _decode_token(page_token), size + 1)
        more = len(users) > size
        users = users[:size]
        return Page(tuple(users), _encode_token(users[-1].user_id) if more and users else "")

    def get_user(self, flag_set: str, user_id: str) -> tuple[UserRecord, list[UserEvaluation]]:
        found = self.database.user(flag_set, user_id)
        if found is None:
            raise NotFoundError(f"user {user_id!r} has not been seen in flag set {flag_set!r}")
        return found

    def delete_user(self, flag_set: str, user_id: str) -> None:
        if not self.database.delete_user(flag_set, user_id):
            raise NotFoundError(f"user {user_id!r} has not been seen in flag set {flag_set!r}")

    def delete_evaluation(self, flag_set: str, user_id: str, flag_key: str) -> None:
        if not self.database.delete_evaluation(flag_set, user_id, flag_key):
            raise NotFoundError(
                f"user {user_id!r} has no evaluation of flag {flag_key!r} in flag set {flag_set!r}"
            )

    def export_set(self, flag_set: str) -> FlagSetDefinition:
        """The whole set's definitions, as one committed state had them."""
        content = self.database.read(flag_set)
        return read_definitions(_set_document(content), self.database.origin)

    # ------------------------------------------------------------ flag writes

    def create_flag(self, flag_set: str, document: Document, actor: str) -> FlagRecord:
        key = document.get("key")
        return self._flag_write(
            flag_set, key if isinstance(key, str) else "", None, actor, "create", document
        )

    def edit_flag(
        self,
        flag_set: str,
        key: str,
        expected_version: int,
        edit: Callable[[Document], Document],
        actor: str,
    ) -> FlagRecord:
        """Apply `edit` (admin_edits.py) to the flag's document; the result is validated with the set."""
        return self._flag_write(flag_set, key, expected_version, actor, "update", edit)

    def delete_flag(self, flag_set: str, key: str, expected_version: int, actor: str) -> int:
        """Delete the flag; returns the version its deletion was recorded as."""
        with self.database.write(flag_set, actor) as writer:
            current = _expect(writer.content.flag(key), "flag", key, expected_version)
            version = current.version + 1
            writer.delete("flag", key, version, current.definition)
        return version

    def rollback_flag(
        self, flag_set: str, key: str, expected_version: int, to_version: int, actor: str
    ) -> FlagRecord:
        """Write version `to_version`'s definition as the flag's next version. expected_version 0
        says the flag is deleted now (a rollback brings it back)."""
        entry = self.database.history_entry(flag_set, "flag", key, to_version) if to_version > 0 else None
        if entry is None:
            raise NotFoundError(f"flag {key!r} has no version {to_version} in flag set {flag_set!r}")
        if entry.after is None:
            raise InvalidRequest(
                [
                    FieldProblem(
                        "to_version", f"version {to_version} is the flag's deletion: name a version it had"
                    )
                ]
            )
        restored = dict(entry.after)
        return self._flag_write(flag_set, key, expected_version, actor, "rollback", restored, absent_ok=True)

    def _flag_write(
        self,
        flag_set: str,
        key: str,
        expected_version: int | None,
        actor: str,
        action: str,
        change: Document | Callable[[Document], Document],
        absent_ok: bool = False,
    ) -> FlagRecord:
        with self.database.write(flag_set, actor) as writer:
            content = writer.content
            current = content.flag(key) if key else None
            if expected_version is None:  # a create
                if current is not None:
                    raise AlreadyExistsError(
                        f"flag {key!r} exists (version {current.version}): update it instead",
                        current.version,
                    )
            elif not (absent_ok and expected_version == 0 and current is None):
                current = _expect(current, "flag", key, expected_version)
            document = _changed(current, change)
            definitions = _validated(content, "flag", key, document)
            definition = next(flag for flag in definitions.flags if flag.key == key)
            stored = _without_version(flag_document(definition))
            if current is not None and stored == current.definition:
                return _flag_record(current)  # nothing changed: no new version, no history row
            version = writer.last_version("flag", key) + 1
            writer.put("flag", key, stored, version, action, current.definition if current else None)
            return FlagRecord(definition, version, writer.at, actor)

    # ------------------------------------------------------------ segment writes

    def create_segment(self, flag_set: str, document: Document, actor: str) -> SegmentRecord:
        key = document.get("key")
        return self._segment_write(flag_set, key if isinstance(key, str) else "", None, actor, document)

    def edit_segment(
        self,
        flag_set: str,
        key: str,
        expected_version: int,
        edit: Callable[[Document], Document],
        actor: str,
    ) -> SegmentRecord:
        return self._segment_write(flag_set, key, expected_version, actor, edit)

    def delete_segment(self, flag_set: str, key: str, expected_version: int, actor: str) -> int:
        """Delete the segment, unless a flag or another segment still references it (InUseError)."""
        with self.database.write(flag_set, actor) as writer:
            current = _expect(writer.content.segment(key), "segment", key, expected_version)
            flags = [item.key for item in writer.content.flags if key in _segments_used(item.definition)]
            segments = [
                item.key
                for item in writer.content.segments
                if item.key != key and key in _segments_used(item.definition)
            ]
            if flags or segments:
                raise InUseError(key, flags, segments)
            version = current.version + 1
            writer.delete("segment", key, version, current.definition)
        return version

    def _segment_write(
        self,
        flag_set: str,
        key: str,
        expected_version: int | None,
        actor: str,
        change: Document | Callable[[Document], Document],
    ) -> SegmentRecord:
        with self.database.write(flag_set, actor) as writer:
            content = writer.content
            current = content.segment(key) if key else None
            if expected_version is None:
                if current is not None:
                    raise AlreadyExistsError(
                        f"segment {key!r} exists (version {current.version}): update it instead",
                        current.version,
                    )
            else:
                current = _expect(current, "segment", key, expected_version)
            document = _changed(current, change)
            definitions = _validated(content, "segment", key, document)
            definition = next(segment for segment in definitions.segments if segment.key == key)
            stored = segment_document(definition)
            if current is not None and stored == current.definition:
                return _segment_record(current)
            version = writer.last_version("segment", key) + 1
            action = "create" if current is None else "update"
            writer.put(
                "segment",
                key,
                segment_document(definition),
                version,
                action,
                current.definition if current else None,
            )
            return SegmentRecord(definition, version, writer.at, actor)

    # ------------------------------------------------------------ whole sets

    def import_set(
        self, flag_set: str, definitions: FlagSetDefinition, actor: str, *, dry_run: bool = False
    ) -> SetDiff:
        """Make the set exactly `definitions` (already validated: a flag file's), in one transaction.
        Versions written in the file are not kept: the database counts them. With `dry_run`,
        nothing is written."""
        with self.database.write(flag_set, actor) as writer:
            flags = _import_kind(
                writer,
                "flag",
                {flag.key: _without_version(flag_document(flag)) for flag in definitions.flags},
                writer.content.flags,
                dry_run,
            )
            segments = _import_kind(
                writer,
                "segment",
                {segment.key: segment_document(segment) for segment in definitions.segments},
                writer.content.segments,
                dry_run,
            )
        return SetDiff(*flags, *segments)


# ---------------------------------------------------------------- helpers


def _changed(current: StoredItem | None, change: Document | Callable[[Document], Document]) -> Document:
    """The new document: an edit of the current one, or one given whole (a create, a rollback)."""
    if not callable(change):
        return change
    assert current is not None  # an edit follows _expect, which found it
    return change(dict(current.definition))


def _expect(current: StoredItem | None, kind: str, key: str, expected_version: int) -> StoredItem:
    if expected_version <= 0:
        raise InvalidRequest(
            [FieldProblem("expected_version", f"required: the version of the {kind} you read and changed")]
        )
    if current is None:
        raise NotFoundError(f"{kind} {key!r} not found")
    if current.version != expected_version:
        raise VersionConflict(kind, key, expected_version, current.version)
    return current


def _validated(content: SetContent, kind: Kind, key: str, document: Document | None) -> FlagSetDefinition:
    """The definitions of the set with `document` as the flag (segment) `key`, checked and compiled
    as a flag file is; InvalidRequest listing every problem otherwise."""
    flags: list[Any] = [item.definition for item in content.flags if kind != "flag" or item.key != key]
    segments: list[Any] = [
        item.definition for item in content.segments if kind != "segment" or item.key != key
    ]
    if document is not None:
        (flags if kind == "flag" else segments).append(document)
    try:
        definitions = read_definitions({"flags": flags, "segments": segments})
        compile_definitions(definitions)
    except FlagSetError as error:
        raise InvalidRequest([_field_problem(problem, kind, key) for problem in error.problems]) from None
    return definitions


def _field_problem(problem: Problem, kind: Kind, key: str) -> FieldProblem:
    """A validator's problem as a field path in the written flag's (segment's) document:
    `flag.rules[1].constraints[0]`; a problem of another flag or segment is named by its key."""
    if problem.flag is not None:
        field = "flag" if kind == "flag" and problem.flag == key else f"flags[{problem.flag!r}]"
    elif problem.segment is not None:
        field = (
            "segment" if kind == "segment" and problem.segment == key else f"segments[{problem.segment!r}]"
        )
    else:
        field = kind
    if problem.rule is not None:
        field += f".rules[{problem.rule}]"
    path = problem.path
    if path and not path.startswith(("flags[", "segments[")):
        field += f".{path}" if not path.startswith("[") else path
    elif problem.rule is None and not path:
        # A problem of one top-level field says so in its first word ("enabled is required...").
        word = problem.message.split(" ", 1)[0]
        named = "variants" if problem.message.startswith("a flag needs at least one variant") else word
        if named in _TOP_LEVEL_FIELDS:
            field += f".{named}"
    return FieldProblem(field, problem.message)


_TOP_LEVEL_FIELDS = frozenset(
    {"name", "description", "enabled", "version", "variants", "defaultVariantWhenOn", "defaultVariantWhenOff"}
    | {"trackEvents", "metadata"}
)


def _segments_used(document: Mapping[str, Any]) -> set[str]:
    """The segment keys the document's rules reference (IS_IN_SEGMENT / ISNT_IN_SEGMENT)."""
    used: set[str] = set()
    for rule in document.get("rules") or ():
        for constraint in rule.get("constraints") or ():
            if constraint.get("operation") in SEGMENT_OPERATIONS:
                used.update(value for value in constraint.get("values") or () if isinstance(value, str))
    return used


def _without_version(document: Document) -> Document:
    document.pop("version", None)  # the database keeps the versions, next to the definition
    return document


def _set_document(content: SetContent) -> Document:
    return {
        "flags": [dict(item.definition) for item in content.flags],
        "segments": [dict(item.definition) for item in content.segments],
    }


def _flag_definition(document: Mapping[str, Any] | None) -> FlagDefinition | None:
    """A stored flag's definition, read alone: the segments it references are named, not read
    (they were checked when it was written)."""
    if document is None:
        return None
    stubs = [{"key": segment} for segment in sorted(_segments_used(document))]
    return read_definitions({"flags": [dict(document)], "segments": stubs}).flags[0]


def _flag_record(item: StoredItem) -> FlagRecord:
    definition = _flag_definition(item.definition)
    assert definition is not None
    return FlagRecord(definition, item.version, item.updated_at, item.updated_by)


def _segment_record(item: StoredItem) -> SegmentRecord:
    stubs = [{"key": segment} for segment in sorted(_segments_used(item.definition)) if segment != item.key]
    definition = read_definitions({"flags": [], "segments": [dict(item.definition), *stubs]}).segments[0]
    return SegmentRecord(definition, item.version, item.updated_at, item.updated_by)


def _history_record(entry: HistoryEntry) -> HistoryRecord:
    before, after = entry.before or {}, entry.after or {}
    changed = tuple(
        sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    )
    return HistoryRecord(
        entry.version,
        entry.action,
        entry.actor,
        entry.at,
        _flag_definition(entry.before),
        _flag_definition(entry.after),
        changed,
    )


def _import_kind(
    writer: SetWriter,
    kind: Kind,
    wanted: Mapping[str, Document],
    stored: Iterable[StoredItem],
    dry_run: bool,
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    current = {item.key: item for item in stored}
    added = sorted(wanted.keys() - current.keys())
    removed = sorted(current.keys() - wanted.keys())
    updated = sorted(key for key in wanted.keys() & current.keys() if wanted[key] != current[key].definition)
    if not dry_run:
        for key in added:
            writer.put(kind, key, wanted[key], writer.last_version(kind, key) + 1, "import", None)
        for key in updated:
            item = current[key]
            writer.put(kind, key, wanted[key], item.version + 1, "import", item.definition)
        for key in removed:
            item = current[key]
            writer.delete(kind, key, item.version + 1, item.definition)
    return tuple(added), tuple(updated), tuple(removed)


def _page_size(page_size: int) -> int:
    if page_size < 0:
        raise InvalidRequest([FieldProblem("page_size", "must not be negative")])
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _encode_token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_token(token: str) -> str:
    if not token:
        return ""
    try:
        text = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _bad_token() from None
    if not text:
        raise _bad_token()
    return text


def _bad_token() -> InvalidRequest:
    return InvalidRequest(
        [FieldProblem("page_token", "not a token this API gave: pass next_page_token as it came")]
    )

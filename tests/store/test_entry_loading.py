"""A set of entries compiled from the served one (sidecar/store/entry_loading.py and
sidecar/engine/reuse.py) is the set a full load of the same document gives, for random edits: the
same flags, segments, versions, warnings, problems and answers; and only what changed is compiled
again."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.engine import FlagSet, FlagSetError, evaluate
from sidecar.sources.entries import Entry, EntryChanges, EntryKind
from sidecar.store.entry_loading import LoadedEntries, load_entries
from sidecar.store.loading import compile_document
from sidecar.store.source_cache import SourceCache
from sidecar.store.versions import VersionTable

ORIGIN = "postgresql://bench/flags"
CONTEXTS = [
    {"$userId": f"u{n}", "plan": plan, "team": team, "age": age}
    for n, (plan, team, age) in enumerate(itertools.product(["free", "pro"], ["staff", "ops"], [17, 40]))
]


def _segment(key: str, value: str, nested: str | None = None) -> dict[str, Any]:
    constraints: list[dict[str, Any]] = [{"property": "team", "operation": "ONE_OF", "values": [value]}]
    if nested is not None:
        constraints.append({"operation": "IS_IN_SEGMENT", "values": [nested]})
    return {"key": key, "rules": [{"constraints": constraints}]}


def _flag(key: str, variant: int, segment: str | None, enabled: bool = True) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [
        {
            "constraints": [{"property": "age", "operation": "GREATER", "values": [variant * 10]}],
            "distributions": [{"variant": "on", "percentage": 50}, {"variant": "off", "percentage": 50}],
        }
    ]
    if segment is not None:
        rules.insert(
            0,
            {
                "constraints": [{"operation": "IS_IN_SEGMENT", "values": [segment]}],
                "distributions": [{"variant": "on", "percentage": 100}],
            },
        )
    return {
        "key": key,
        "enabled": enabled,
        "variants": [{"key": "on", "value": variant}, {"key": "off", "value": -variant}],
        "defaultVariantWhenOn": "off",
        "rules": rules,
    }


def _base() -> dict[tuple[EntryKind, str], dict[str, Any]]:
    held: dict[tuple[EntryKind, str], dict[str, Any]] = {
        ("segment", "s0"): _segment("s0", "staff"),
        ("segment", "s1"): _segment("s1", "ops", nested="s0"),
        ("segment", "s2"): _segment("s2", "ops"),
    }
    for n in range(8):
        held["flag", f"f{n}"] = _flag(f"f{n}", n + 1, [None, "s0", "s1"][n % 3])
    return held


class Held:
    """The source's entries as a SourceCache holds them, edited step by step."""

    def __init__(self) -> None:
        self.cache = SourceCache(ttl=30.0)
        self.definitions = _base()
        self.versions: dict[tuple[EntryKind, str], int] = dict.fromkeys(self.definitions, 1)
        self.revision = 0
        self.cache.apply(EntryChanges("0", tuple(map(self._entry, self.definitions)), whole=True))

    def _entry(self, name: tuple[EntryKind, str]) -> Entry:
        kind, key = name
        return Entry(kind, key, self.versions[name], orjson.dumps(self.definitions[name]).decode())

    def put(self, name: tuple[EntryKind, str], definition: dict[str, Any]) -> None:
        self.definitions[name] = definition
        self.versions[name] = self.versions.get(name, 0) + 1
        self.revision += 1
        self.cache.apply(EntryChanges(str(self.revision), (self._entry(name),)))

    def delete(self, name: tuple[EntryKind, str]) -> None:
        self.definitions.pop(name, None)
        self.revision += 1
        self.cache.apply(EntryChanges(str(self.revision), removed=(name,)))


def _full(held: Held, versions: VersionTable) -> FlagSet | list[str]:
    document = held.cache.document(ORIGIN)
    try:
        return compile_document(document, versions.version_of(document.versions))
    except FlagSetError as error:
        return [str(problem) for problem in error.problems]


def _incremental(
    held: Held, versions: VersionTable, served: LoadedEntries | None
) -> LoadedEntries | list[str]:
    document = held.cache.document(ORIGIN)
    try:
        return load_entries(held.cache.entries, document, versions.version_of(document.versions), served)
    except FlagSetError as error:
        return [str(problem) for problem in error.problems]


def _same(full: FlagSet, incremental: FlagSet) -> None:
    assert list(incremental.flags) == list(full.flags)
    assert list(incremental.segments) == list(full.segments)
    for key, flag in full.flags.items():
        other = incremental.flags[key]
        assert (other.version, other.fingerprint, other.definition) == (
            flag.version,
            flag.fingerprint,
            flag.definition,
        )
        for context in CONTEXTS:
            assert evaluate(other, context) == evaluate(flag, context)
            assert evaluate(other, context, debug=True) == evaluate(flag, context, debug=True)
    for key, segment in full.segments.items():
        assert incremental.segments[key].fingerprint == segment.fingerprint
    assert [str(w) for w in incremental.warnings] == [str(w) for w in full.warnings]
    assert incremental.definitions == full.definitions


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["flag", "segment", "delete flag", "delete segment", "disable", "new flag"]),
        st.integers(0, 9),
        st.integers(0, 3),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(EDITS)
def test_an_incremental_load_gives_what_a_full_load_gives(edits: list[tuple[str, int, int]]) -> None:
    held = Held()
    versions = VersionTable()
    first = _incremental(held, versions, None)
    assert isinstance(first, LoadedEntries)
    versions.applied(first.flag_set)
    served = first
    for what, index, value in edits:
        flag, segment = ("flag", f"f{index % 8}"), ("segment", f"s{index % 3}")
        segment_of = [None, "s0", "s1", "s2"][value]
        if what == "flag":
            held.put(flag, _flag(flag[1], value + 2, segment_of))
        elif what == "segment":
            held.put(segment, _segment(segment[1], ["staff", "ops", "dev", "qa"][value]))
        elif what == "delete flag":
            held.delete(flag)
        elif what == "delete segment":
            held.delete(segment)
        elif what == "disable":
            held.put(flag, _flag(flag[1], index + 1, segment_of, enabled=False))
        else:
            held.put(("flag", f"n{index}"), _flag(f"n{index}", value + 1, segment_of))
        full = _full(held, versions)
        incremental = _incremental(held, versions, served)
        if isinstance(full, list):
            # Rejected as a whole with the same problems; the store keeps serving `served`.
            assert incremental == full
            continue
        assert isinstance(incremental, LoadedEntries)
        _same(full, incremental.flag_set)
        versions.applied(incremental.flag_set)
        served = incremental


def test_only_the_changed_flag_and_what_tests_a_changed_segment_are_compiled_again() -> None:
    held = Held()
    versions = VersionTable()
    served = _incremental(held, versions, None)
    assert isinstance(served, LoadedEntries)
    versions.applied(served.flag_set)
    before = served.flag_set

    held.put(("flag", "f3"), _flag("f3", 9, None))
    after = _incremental(held, versions, served)
    assert isinstance(after, LoadedEntries)
    flags = after.flag_set.flags
    assert [key for key in flags if flags[key] is not before.flags[key]] == ["f3"]
    assert flags["f3"].version == before.flags["f3"].version + 1
    assert all(after.flag_set.segments[key] is before.segments[key] for key in before.segments)
    versions.applied(after.flag_set)

    # s0 changed: s1 nests it, so both are compiled again, and every flag that tests either.
    held.put(("segment", "s0"), _segment("s0", "dev"))
    again = _incremental(held, versions, after)
    assert isinstance(again, LoadedEntries)
    recompiled = {key for key, flag in again.flag_set.flags.items() if flag is not flags[key]}
    assert recompiled == {"f1", "f2", "f4", "f5", "f7"}
    segments = again.flag_set.segments
    assert {key for key in segments if segments[key] is not after.flag_set.segments[key]} == {"s0", "s1"}
    staff_dev = {"$userId": "u", "team": "dev", "age": 0}
    assert evaluate(again.flag_set.flags["f1"], staff_dev).variant == "on"


def test_a_segment_deleted_while_a_flag_tests_it_is_refused_with_the_full_load_s_problems() -> None:
    held = Held()
    versions = VersionTable()
    served = _incremental(held, versions, None)
    assert isinstance(served, LoadedEntries)
    held.delete(("segment", "s1"))
    with pytest.raises(FlagSetError) as refused:
        load_entries(held.cache.entries, held.cache.document(ORIGIN), None, served)
    full = _full(held, versions)
    assert isinstance(full, list)
    assert full
    assert [str(problem) for problem in refused.value.problems] == full
    assert any("s1" in problem for problem in full)

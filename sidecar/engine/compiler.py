"""Validate a flag document (the parsed YAML/JSON of DESIGN.md's file format) and compile it.

Two steps: reading turns the document into definitions (definitions.py), collecting every problem,
located (source, flag key, rule index, path), and reporting them at once in a FlagSetError; a set
with any problem is rejected as a whole. Compiling turns valid definitions into the evaluator's
state: value sets, regexes and networks built, segment references resolved, bucket ranges and
answers precomputed. The compiled flags and segments keep their definitions.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Callable, Container, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from .definitions import (
    EMPTY_METADATA,
    ConstraintDefinition,
    DistributionDefinition,
    FlagDefinition,
    FlagRuleDefinition,
    FlagSetDefinition,
    SegmentDefinition,
    SegmentRuleDefinition,
    VariantDefinition,
    flag_document,
    rule_document,
    segment_document,
)
from .fastpath import Plans, build_fast_path
from .model import (
    BUCKET_COUNT,
    USER_ID_PROPERTY,
    Constraint,
    Distribution,
    Evaluation,
    Flag,
    FlagRule,
    FlagSet,
    FlagSetError,
    Problem,
    Reason,
    Segment,
    SegmentRule,
    Variant,
)
from .operators import (
    OPERATIONS,
    OPERATORS,
    SEGMENT_OPERATIONS,
    InvalidValues,
    OperatorSpec,
    ValueSets,
    compile_constraint,
    is_number,
)
from .reuse import Reuse

# Where in a document a problem is (Problem's fields: flag, segment, rule, path).
Where = Mapping[str, Any]
NOWHERE: Where = {}

# Decides a flag's version from its key and the fingerprint of its definition (the store keeps history).
VersionOf = Callable[[str, str], int]


class Fields(tuple[str, ...]):
    """A part's field names, in the order definitions.py writes them, and as a set (`known`)."""

    known: frozenset[str]

    def __new__(cls, *names: str) -> Fields:
        fields = super().__new__(cls, names)
        fields.known = frozenset(names)
        return fields


TOP_LEVEL_FIELDS = Fields("flags", "segments")
FLAG_FIELDS = Fields(
    "key",
    "name",
    "description",
    "enabled",
    "version",
    "variants",
    "rules",
    "defaultVariantWhenOn",
    "defaultVariantWhenOff",
    "trackEvents",
    "metadata",
)
VARIANT_FIELDS = Fields("key", "value", "description")
RULE_FIELDS = Fields("id", "constraints", "distributions", "bucketBy")
CONSTRAINT_FIELDS = Fields("property", "operation", "values")
DISTRIBUTION_FIELDS = Fields("variant", "percentage")
SEGMENT_FIELDS = Fields("key", "name", "description", "rules")
SEGMENT_RULE_FIELDS = Fields("id", "constraints")


def fingerprint(definition: Any) -> str:
    """A stable digest of a flag or segment document (key order does not matter). orjson: the
    stdlib encoder took a fifth of a large flag set's load; json only for what orjson refuses (an
    integer beyond 64 bits)."""
    try:
        data = _fingerprint_text(definition)
    except (TypeError, orjson.JSONEncodeError):
        data = json.dumps(definition, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha1(data).hexdigest()


def _fingerprint_text(document: Any) -> bytes:
    """The text `fingerprint` digests (TypeError for what orjson cannot write)."""
    return orjson.dumps(document, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _closest(word: str, choices: Sequence[str]) -> str | None:
    """The choice `word` was probably meant to be, for a "did you mean" hint."""
    import difflib  # only for hints in problem reports: not loaded while flag files are valid

    close = difflib.get_close_matches(word, choices, n=1)
    return close[0] if close else None


@dataclass
class _Checker:
    """Collects problems for one document."""

    source: str
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    sets: ValueSets = field(default_factory=ValueSets)  # the document's ONE_OF value sets

    def add(self, message: str, **where: Any) -> None:
        self.problems.append(Problem(message, source=self.source, **where))

    def warn(self, message: str, **where: Any) -> None:
        self.warnings.append(Problem(message, source=self.source, **where))

    # The checks below take their location as one mapping, not as keywords: they run for every
    # part of a document, and collecting keywords into a new dict at each call was more than a
    # quarter of reading a set whose flags share no part (bench/notes.md, "the third round").

    def mapping(self, value: Any, what: str, allowed: Fields, where: Where = NOWHERE) -> Mapping[str, Any]:
        """`value` as a mapping; unknown fields are problems (they are usually typos)."""
        if type(value) is dict and value.keys() <= allowed.known:  # what parsers give: one C test
            return value
        if not isinstance(value, Mapping):
            self.add(f"{what} must be a mapping, not {json_type(value)}", **where)
            return {}
        for name in value:
            if name not in allowed:
                hint = _closest(str(name), allowed)
                suggestion = f" (did you mean {hint!r}?)" if hint else ""
                self.add(f"unknown field {name!r} in {what}{suggestion}", **where)
        return value

    def sequence(self, value: Any, what: str, where: Where = NOWHERE) -> Sequence[Any]:
        if type(value) is list:
            return value
        if value is None:
            return []
        if not isinstance(value, list | tuple):
            self.add(f"{what} must be a list, not {json_type(value)}", **where)
            return []
        return value

    def text(self, value: Any, what: str, where: Where = NOWHERE, *, required: bool = False) -> str:
        if type(value) is str and (value or not required):
            return value
        if value is None:
            if required:
                self.add(f"{what} is required", **where)
            return ""
        if isinstance(value, bool):
            word = "true" if value else "false"
            self.add(
                f"{what} must be a string, but YAML read it as the boolean {word}: quote it "
                f'(for example "on" or "off")',
                **where,
            )
            return ""
        if not isinstance(value, str | int | float):
            self.add(f"{what} must be a string, not {json_type(value)}", **where)
            return ""
        text = str(value)
        if required and not text:
            self.add(f"{what} must not be empty", **where)
        return text


def compile_flag_set(
    document: Any, source: str = "", version_of: VersionOf | None = None, *, consume: bool = False
) -> FlagSet:
    """Validate a whole document and compile it; raise FlagSetError listing every problem.

    The definitions read from the document are kept (FlagSet.definitions, Flag.definition), so the
    document itself is not needed afterwards. With `consume`, the document's list of flags is
    emptied as they are read (the caller has no further use for it): each raw flag is freed at once
    and its memory taken by what follows, instead of the whole document staying until the end,
    which leaves the compiled set scattered over memory the process keeps (BENCHMARKS.md).
    """
    reader = _Reader(_Checker(source))
    definitions = reader.read(document, consume)
    return _Compiler(source, reader.prepared).compile(definitions, version_of)


class FlagSetReader:
    """Reads and compiles a document whose flags a parser hands over as it reads them (`flag`),
    then the rest of it (`compile`): the same definitions, problems and flag set as
    compile_flag_set on the whole document, without the whole document in memory at once."""

    def __init__(self, source: str = "") -> None:
        self.source = source
        self._reader = _Reader(_Checker(source))

    def flag(self, raw: Any) -> None:
        self._reader.flag(raw)

    def compile(self, rest: Any, version_of: VersionOf | None = None) -> FlagSet:
        """`rest`: the document without the flags handed over (`flags: []` once they all were)."""
        definitions = self._reader.read(rest, consume=True)
        return _Compiler(self.source, self._reader.prepared).compile(definitions, version_of)


def read_definitions(document: Any, source: str = "", *, consume: bool = False) -> FlagSetDefinition:
    """The definitions a flag document holds; FlagSetError listing every problem when it has any
    (including what only compiling its values finds: regex, network and version syntax)."""
    return _Reader(_Checker(source)).read(document, consume)


def compile_definitions(
    definitions: FlagSetDefinition,
    source: str = "",
    version_of: VersionOf | None = None,
    previous: FlagSet | None = None,
) -> FlagSet:
    """Compile definitions that `read_definitions` returned (a definition built by hand is checked by
    reading its document: read_definitions(flag_set_document(definitions))). With `previous`, its
    compiled flags and segments whose definitions are among these (the same objects) and whose
    segments are unchanged are kept, not compiled again (reuse.py): the same set either way."""
    return _Compiler(source, {}, previous).compile(definitions, version_of)


class _Memo:
    """Raw part (_raw_key) -> what reading it gave, for the parts a document repeats.

    The keys cost memory and time that only repeats pay back: when most of the first TRIAL
    lookups miss, the document does not repeat itself, and the memo lets go of its entries and
    stops (`on`), so a document of distinct flags loads as it would without it (BENCHMARKS.md).
    """

    TRIAL = 1_000

    __slots__ = ("entries", "hits", "lookups", "on")

    def __init__(self) -> None:
        self.entries: dict[Any, Any] = {}
        self.lookups = self.hits = 0
        self.on = True

    def get(self, key: Any) -> Any:
        found = self.entries.get(key)
        if self.lookups < self.TRIAL:
            self.lookups += 1
            self.hits += found is not None
            if self.lookups == self.TRIAL and self.hits * 2 < self.lookups:
                self.on = False
                self.entries = {}
        return found

    def put(self, key: Any, value: Any) -> None:
        if self.on:
            self.entries[key] = value


def _memo_for(table: dict[int, _Memo], segments: Set[str]) -> _Memo:
    """The memo of parts read against these segment keys (the document's, or _ANY_SEGMENT)."""
    memo = table.get(id(segments))
    if memo is None:
        memo = table[id(segments)] = _Memo()
    return memo


def _raw_key(raw: Any) -> bytes | None:
    """A key equal for equal raw parts: orjson's text of it, keys sorted (types included: 1, 1.0 and
    true differ in a flag document, and in the text). One C call for a whole rule, constraints and
    all, where walking it in Python cost a tenth of a large set's load. None for what orjson cannot
    write (a key that is not a string, an integer beyond 64 bits): such a part is read every time."""
    try:
        return orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError is one
        return None


def _typed(values: Sequence[Any]) -> tuple[Any, ...]:
    """Values with their types, as a key: 1 == 1.0 == True in Python, but not in a flag document.
    The types, then the values: a key's length tells where one part ends."""
    return (*map(type, values), *values)


_INTERNABLE = (str, bool, int, float)


class _Reader:
    """Reads a document into definitions, listing every problem; equal parts become one object.

    A flag file repeats itself (the same variants, constraints and rules in flag after flag): each
    distinct part is kept once (BENCHMARKS.md, "10,000 flags").
    """

    def __init__(self, check: _Checker) -> None:
        self.check = check
        self.shared: dict[Any, Any] = {}
        # The values of each distinct (operation, values) as its spec prepared them, to check them
        # (a bad regex is a problem of the document) and for the compiler to use.
        self.prepared: dict[tuple[str, tuple[Any, ...]], Any] = {}
        # id(segment keys) -> raw constraint (_raw_key) -> its definition, read without a problem.
        self.read_constraints: dict[int, _Memo] = {}
        self.read_rules: dict[int, _Memo] = {}
        self.read_variants = _Memo()
        self.flags: list[FlagDefinition] = []
        self.keys: set[str] = set()
        self.arrived = 0  # flags handed over so far (the next one's index in the document)
        self.current = 0  # the index of the flag being read
        self.segments: list[SegmentDefinition] = []
        self.segment_keys: set[str] | None = None  # None until the segments are read
        # Flags read before the segments (None: not readable) and the segment tests they make.
        self.early: list[tuple[int, FlagDefinition | None]] = []
        self.early_references: list[tuple[int, dict[str, Any], ConstraintDefinition]] = []

    def share(self, key: Any, make: Callable[..., Any], *arguments: Any) -> Any:
        """The part shared under `key`, made from `arguments` the first time only."""
        found = self.shared.get(key)
        if found is None:
            found = self.shared[key] = make(*arguments)
        return found

    def read(self, document: Any, consume: bool) -> FlagSetDefinition:
        """The whole document's definitions; the flags `flag` was given before are among them."""
        check = self.check
        if document is None:
            # An empty file is far more often a write caught half-way (truncate, then write) than a
            # wish to serve nothing; `flags: []` says the latter explicitly.
            check.add("the document is empty; write `flags: []` to serve no flags")
            raise FlagSetError(check.problems)
        top = check.mapping(document, "the flag document", TOP_LEVEL_FIELDS)
        raw_segments = check.sequence(top.get("segments"), "segments", {"path": "segments"})
        raw_flags = check.sequence(top.get("flags"), "flags", {"path": "flags"})

        self.segments = self._segments(raw_segments)
        self.segment_keys = {segment.key for segment in self.segments}
        self._check_early_references()
        for index, raw in enumerate(raw_flags):
            if consume and type(raw_flags) is list:
                raw_flags[index] = None
            self.flag(raw)
        if check.problems:
            raise FlagSetError(check.problems)
        return FlagSetDefinition(tuple(self.flags), tuple(self.segments))

    def flag(self, raw: Any) -> None:
        """Read the document's next flag now (a parser hands them over one by one, so that a large
        document is never whole in memory: BENCHMARKS.md, "10,000 flags"). A flag read before the
        segments has its segment references checked, and its key, once they are read (`read`)."""
        index = self.current = self.arrived
        self.arrived += 1
        if self.segment_keys is None:
            self.early.append((index, self._flag(index, raw, _ANY_SEGMENT)))
        else:
            self._keep(index, self._flag(index, raw, self.segment_keys))

    def _keep(self, index: int, flag: FlagDefinition | None) -> None:
        if flag is None:
            return
        if flag.key in self.keys:
            self.check.add("duplicate flag key", flag=flag.key, path=f"flags[{index}]")
            return
        self.keys.add(flag.key)
        self.flags.append(flag)

    def _note_reference(self, constraint: ConstraintDefinition, where: dict[str, Any]) -> None:
        """A segment test of a flag read before the segments: checked by _check_early_references."""
        if OPERATORS[constraint.operation].tests_segments:
            self.early_references.append((self.current, where, constraint))

    def _check_early_references(self) -> None:
        """The flags read before the segments: their segment references, as _values_fit checks
        them, then their keys, in document order."""
        known = self.segment_keys or set()
        unknown = {
            index
            for index, where, constraint in self.early_references
            if not _segments_known(self.check, constraint.operation, constraint.values, known, where)
        }
        for index, flag in self.early:
            self._keep(index, None if index in unknown else flag)
        self.early.clear()
        self.early_references.clear()

    # ------------------------------------------------------------ segments

    def _segments(self, raw_segments: Sequence[Any]) -> list[SegmentDefinition]:
        check = self.check
        bodies: dict[str, tuple[int, Mapping[str, Any]]] = {}
        for index, raw in enumerate(raw_segments):
            path = f"segments[{index}]"
            body = check.mapping(raw, "a segment", SEGMENT_FIELDS, {"path": path})
            key = check.text(body.get("key"), "segment key", {"path": path}, required=True)
            if not key:
                continue
            if key in bodies:
                check.add("duplicate segment key", segment=key, path=path)
                continue
            bodies[key] = (index, body)

        edges = {
            key: _segment_references(check.sequence(body.get("rules"), "rules"))
            for key, (_, body) in bodies.items()
        }
        order, cyclic = _topological_order(edges)
        for cycle in cyclic:
            check.add(f"segments reference each other in a cycle: {' -> '.join(cycle)}", segment=cycle[0])
        # Evaluation follows the references one call deeper each: keep that far from the stack's end.
        for key, depth in _nesting_depths(order, edges).items():
            if depth == MAX_SEGMENT_NESTING + 1:
                check.add(
                    f"segments nest more than {MAX_SEGMENT_NESTING} deep through IS_IN_SEGMENT references",
                    segment=key,
                )
        known = set(bodies)
        segments = []
        for key, (_, body) in bodies.items():
            rules = []
            for rule_index, raw_rule in enumerate(
                check.sequence(body.get("rules"), "segment rules", {"segment": key, "path": "rules"})
            ):
                where: dict[str, Any] = {"segment": key, "rule": rule_index}
                rule_body = check.mapping(raw_rule, "a segment rule", SEGMENT_RULE_FIELDS, where)
                rule_id = check.text(rule_body.get("id"), "rule id", where)
                constraints = self._constraints(rule_body.get("constraints"), known, where)
                rules.append(SegmentRuleDefinition(sys.intern(rule_id), constraints))
            segments.append(
                SegmentDefinition(
                    key=key,
                    name=check.text(body.get("name"), "segment name", {"segment": key}),
                    description=check.text(body.get("description"), "segment description", {"segment": key}),
                    rules=tuple(rules),
                )
            )
        return segments

    # ------------------------------------------------------------ constraints

    def _constraints(
        self, raw: Any, segments: Set[str], where: dict[str, Any]
    ) -> tuple[ConstraintDefinition, ...]:
        read = []
        check = self.check
        # A constraint written as one read before without a problem (against the same segments) is
        # that definition again, without checking it again: flag files repeat their constraints.
        seen = _memo_for(self.read_constraints, segments)
        for index, raw_constraint in enumerate(check.sequence(raw, "constraints", where)):
            key = _raw_key(raw_constraint) if seen.on else None
            constraint = seen.get(key) if key is not None else None
            if constraint is None:
                located = {**where, "path": f"constraints[{index}]"}
                before = len(check.problems)
                constraint = self._constraint(raw_constraint, segments, located)
                if constraint is not None and key is not None and len(check.problems) == before:
                    seen.put(key, constraint)
            if constraint is not None:
                if segments is _ANY_SEGMENT:
                    self._note_reference(constraint, {**where, "path": f"constraints[{index}]"})
                read.append(constraint)
        return tuple(read)

    def _constraint(self, raw: Any, segments: Set[str], where: dict[str, Any]) -> ConstraintDefinition | None:
        check = self.check
        body = check.mapping(raw, "a constraint", CONSTRAINT_FIELDS, where)
        if not body:
            return None
        operation = body.get("operation")
        spec = OPERATORS.get(operation) if isinstance(operation, str) else None
        if spec is None:
            hint = _closest(str(operation), OPERATIONS)
            expected = f"; expected one of {', '.join(OPERATIONS)}"
            suggestion = f" (did you mean {hint!r}?)" if hint else expected
            check.add(f"unknown operation {operation!r}{suggestion}", **where)
            return None
        prop = check.text(body.get("property"), "property", where)
        if not prop and not spec.tests_segments:
            check.add(f"{operation} needs a property (the context key it tests)", **where)
            return None
        values = check.sequence(body.get("values"), "values", where)
        if not _values_fit(check, spec, values, segments, where):
            return None
        prepared_key = (spec.name, _typed(values))
        if prepared_key not in self.prepared:
            try:
                self.prepared[prepared_key] = spec.prepare(values, check.sets)
            except InvalidValues as error:
                check.add(str(error), **where)
                return None
        key = ("constraint", prop, prepared_key)
        shared: ConstraintDefinition = self.share(
            key, ConstraintDefinition, sys.intern(prop), spec.name, tuple(values)
        )
        return shared

    # ------------------------------------------------------------ flags

    def _flag(self, index: int, raw: Any, segments: Set[str]) -> FlagDefinition | None:
        check = self.check
        path = f"flags[{index}]"
        body = check.mapping(raw, "a flag", FLAG_FIELDS, {"path": path})
        key = check.text(body.get("key"), "flag key", {"path": path}, required=True)
        if not key:
            return None
        where: dict[str, Any] = {"flag": key}
        before = len(check.problems)

        enabled = body.get("enabled")
        if not isinstance(enabled, bool):
            check.add("enabled is required and must be true or false", **where)
        track_events = body.get("trackEvents", True)
        if not isinstance(track_events, bool):
            check.add("trackEvents must be true or false", **where)
        metadata = body.get("metadata") or EMPTY_METADATA
        if type(metadata) is not dict and not isinstance(metadata, Mapping):  # dict: no ABC check
            check.add(f"metadata must be a mapping, not {json_type(metadata)}", **where)
        version = body.get("version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
            check.add("version must be a whole number of at least 1", **where)

        variants = self._variants(body.get("variants"), where)
        on_default = _variant_reference(
            check, body.get("defaultVariantWhenOn"), "defaultVariantWhenOn", variants, where
        )
        off_default = _variant_reference(
            check, body.get("defaultVariantWhenOff"), "defaultVariantWhenOff", variants, where
        )
        rule_ids: set[str] = set()
        rules = []
        for rule_index, raw_rule in enumerate(check.sequence(body.get("rules"), "rules", where)):
            rule = self._rule(rule_index, raw_rule, variants, segments, where)
            if rule is None:
                continue
            rule_id = rule.id or str(rule_index)
            if rule_id in rule_ids:
                check.add(f"duplicate rule id {rule_id!r}", **where, rule=rule_index)
            rule_ids.add(rule_id)
            rules.append(rule)
        name = check.text(body.get("name"), "name", where)
        description = check.text(body.get("description"), "description", where)
        if len(check.problems) > before:
            return None
        return FlagDefinition(
            key=key,
            enabled=bool(enabled),
            variants=tuple(variants.values()),
            name=name,
            description=description,
            version=version,
            rules=tuple(rules),
            default_variant_when_on=on_default,
            default_variant_when_off=off_default,
            track_events=track_events,
            metadata=metadata,
        )

    def _variants(self, raw: Any, where: dict[str, Any]) -> dict[str, VariantDefinition]:
        check = self.check
        # The same variants, written the same way, read before without a problem: the same result
        # (a flag file gives most of its flags one of a few variant lists).
        raw_key = _raw_key(raw) if self.read_variants.on else None
        if raw_key is not None and (known := self.read_variants.get(raw_key)) is not None:
            return known
        before = len(check.problems)
        variants: dict[str, VariantDefinition] = {}
        raw_variants = check.sequence(raw, "variants", where)
        if not raw_variants:
            check.add("a flag needs at least one variant", **where)
        types: dict[str, list[str]] = {}
        for index, raw_variant in enumerate(raw_variants):
            vwhere = {**where, "path": f"variants[{index}]"}
            body = check.mapping(raw_variant, "a variant", VARIANT_FIELDS, vwhere)
            if not body:
                continue
            key = check.text(body.get("key"), "variant key", vwhere, required=True)
            if not key:
                continue
            if key in variants:
                check.add(f"duplicate variant key {key!r}", **vwhere)
                continue
            value = body.get("value")
            if value is None:
                check.add(f"variant {key!r} has no value", **vwhere)
                continue
            if isinstance(value, float) and not math.isfinite(value):
                check.add(f"variant {key!r} has a value that is not a finite number", **vwhere)
                continue
            types.setdefault(json_type(value), []).append(key)
            description = check.text(body.get("description"), "description", vwhere)
            if type(value) in _INTERNABLE:  # a list or mapping value is kept as it is
                shared_key = ("variant", key, type(value), value, description)
                variants[key] = self.share(shared_key, VariantDefinition, sys.intern(key), value, description)
            else:
                variants[key] = VariantDefinition(sys.intern(key), value, description)
        if len(types) > 1:
            listing = "; ".join(f"{kind}: {', '.join(keys)}" for kind, keys in types.items())
            check.add(f"variants must all have the same type, but they mix {listing}", **where)
        if raw_key is not None and len(check.problems) == before:
            self.read_variants.put(raw_key, variants)  # read-only from here on: shared by the flags
        return variants

    def _rule(
        self,
        index: int,
        raw: Any,
        variants: Mapping[str, VariantDefinition],
        segments: Set[str],
        flag_where: dict[str, Any],
    ) -> FlagRuleDefinition | None:
        check = self.check
        # As with constraints: a rule written as one read before without a problem is that
        # definition again, if this flag has the variants it serves.
        read_before = _memo_for(self.read_rules, segments)
        raw_key = _raw_key(raw) if read_before.on else None
        if raw_key is not None:
            known: _ReadRule | None = read_before.get(raw_key)
            if known is not None and variants.keys() >= known.serves:
                if segments is _ANY_SEGMENT:
                    for position in known.segment_tests:
                        where = {**flag_where, "rule": index, "path": f"constraints[{position}]"}
                        self._note_reference(known.rule.constraints[position], where)
                return known.rule
        before = len(check.problems)
        where = {**flag_where, "rule": index}
        body = check.mapping(raw, "a rule", RULE_FIELDS, where)
        if not body:
            return None
        rule_id = sys.intern(check.text(body.get("id"), "rule id", where))
        constraints = self._constraints(body.get("constraints"), segments, where)
        bucket_by = sys.intern(check.text(body.get("bucketBy"), "bucketBy", where))

        distributions: list[DistributionDefinition] = []
        raw_distributions = check.sequence(body.get("distributions"), "distributions", where)
        if not raw_distributions:
            check.add("a rule needs at least one distribution (the variants it serves)", **where)
        seen: set[str] = set()
        total = 0  # in hundredths of a percent (buckets)
        for d_index, raw_d in enumerate(raw_distributions):
            dwhere = {**where, "path": f"distributions[{d_index}]"}
            d_body = check.mapping(raw_d, "a distribution", DISTRIBUTION_FIELDS, dwhere)
            if not d_body:
                continue
            variant_key = check.text(d_body.get("variant"), "distribution variant", dwhere, required=True)
            percentage = d_body.get("percentage")
            if variant_key and variant_key not in variants:
                check.add(
                    f"distribution names unknown variant {variant_key!r}; variants are "
                    f"{', '.join(variants) or 'none'}",
                    **dwhere,
                )
                continue
            if variant_key in seen:
                check.add(f"variant {variant_key!r} is listed twice in the distributions", **dwhere)
                continue
            seen.add(variant_key)
            if not is_number(percentage) or not 0 <= percentage <= 100:
                check.add(f"percentage must be a number from 0 to 100, not {percentage!r}", **dwhere)
                continue
            buckets = round(percentage * 100)
            if abs(percentage * 100 - buckets) > 1e-6:
                check.add(f"percentage {percentage} has more than two decimals", **dwhere)
                continue
            if variant_key:
                key = ("distribution", variant_key, type(percentage), percentage)
                distributions.append(
                    self.share(key, DistributionDefinition, variants[variant_key].key, percentage)
                )
                total += buckets
        if distributions and len(distributions) == len(raw_distributions) and total != BUCKET_COUNT:
            check.add(f"distribution percentages sum to {total / 100:g}, not 100", **where)
        rule_key = ("rule", rule_id, bucket_by, tuple(map(id, constraints)), tuple(map(id, distributions)))
        shared: FlagRuleDefinition = self.share(
            rule_key, FlagRuleDefinition, rule_id, constraints, tuple(distributions), bucket_by
        )
        if raw_key is not None and len(check.problems) == before:
            read_before.put(raw_key, _ReadRule.of(shared))
        return shared


class _ReadRule(NamedTuple):
    """A rule read without a problem, as the rule memo keeps it: what a flag must have to take it
    again, and which of its constraints test segments (to check once the segments are read)."""

    rule: FlagRuleDefinition
    serves: frozenset[str]  # the variant keys its distributions name
    segment_tests: tuple[int, ...]

    @classmethod
    def of(cls, rule: FlagRuleDefinition) -> _ReadRule:
        serves = frozenset(share.variant for share in rule.distributions)
        segment_tests = tuple(
            position
            for position, constraint in enumerate(rule.constraints)
            if OPERATORS[constraint.operation].tests_segments
        )
        return cls(rule, serves, segment_tests)


def _variant_reference(
    check: _Checker, raw: Any, what: str, variants: Mapping[str, VariantDefinition], where: dict[str, Any]
) -> str | None:
    if raw is None:
        return None
    key = check.text(raw, what, where)
    if not key:
        return None
    if key not in variants:
        check.add(
            f"{what} names unknown variant {key!r}; variants are {', '.join(variants) or 'none'}", **where
        )
        return None
    return variants[key].key


MAX_SEGMENT_NESTING = 32


def _segment_references(raw_rules: Sequence[Any]) -> list[str]:
    refs: list[str] = []
    for rule in raw_rules:
        if not isinstance(rule, Mapping):
            continue
        constraints = rule.get("constraints")
        for constraint in constraints if isinstance(constraints, list) else []:
            operation = constraint.get("operation") if isinstance(constraint, Mapping) else None
            if isinstance(operation, str) and operation in SEGMENT_OPERATIONS:  # a list is no key
                values = constraint.get("values")
                refs += [v for v in values if isinstance(v, str)] if isinstance(values, list) else []
    return refs


# ---------------------------------------------------------------- compiling


class _Compiler:
    """Compiles read definitions into the evaluator's state. Equal constraint definitions (one object,
    from _Reader) compile to one Constraint, shared by every flag and segment that has it."""

    def __init__(
        self,
        source: str,
        prepared: dict[tuple[str, tuple[Any, ...]], Any],
        previous: FlagSet | None = None,
    ) -> None:
        self.source = source
        self.prepared = prepared
        # The served set's compiled flags and segments that this set may keep (reuse.py).
        self.reuse = Reuse(previous) if previous is not None else None
        self.sets = ValueSets()
        self.warnings: list[Problem] = []
        self.segments: dict[str, Segment] = {}
        # id(definition) -> (definition, compiled): the definition is held so that its id stays its own.
        self.constraints: dict[int, tuple[ConstraintDefinition, Constraint]] = {}
        self.distributions: dict[tuple[int, int, int], Distribution] = {}
        # Equal rules (one definition) share their compiled constraint and distribution tuples.
        self.tuples: dict[Any, tuple[Any, tuple[Any, ...]]] = {}
        # Flags of the same rules share their fast path's code and its shared values (fastpath.Plans).
        self.plans: Plans = {}
        # id(rule definition) -> (it, its text in a fingerprint): _fingerprint.
        self.rule_texts: dict[int, tuple[FlagRuleDefinition, orjson.Fragment | None]] = {}

    def warn(self, message: str, **where: Any) -> None:
        self.warnings.append(Problem(message, source=self.source, **where))

    def compile(self, definitions: FlagSetDefinition, version_of: VersionOf | None) -> FlagSet:
        by_key = {segment.key: segment for segment in definitions.segments}
        edges = {
            segment.key: [
                value
                for rule in segment.rules
                for constraint in rule.constraints
                if constraint.operation in SEGMENT_OPERATIONS
                for value in constraint.values
            ]
            for segment in definitions.segments
        }
        order, _ = _topological_order(edges)  # cycles were problems of the document
        reuse = self.reuse
        for key in order:
            kept = reuse.segment(by_key[key], self.segments) if reuse is not None else None
            if kept is None:
                self.segments[key] = self._segment(by_key[key])
            else:
                self._warn_segment(by_key[key])
                self.segments[key] = kept
        flags = {}
        for definition in definitions.flags:
            kept_flag = reuse.flag(definition, self.segments, version_of) if reuse is not None else None
            if kept_flag is None:
                flags[definition.key] = self._flag(definition, version_of)
            else:
                self._warn_flag(definition)
                flags[definition.key] = kept_flag
        return FlagSet(
            flags=dict(sorted(flags.items())),
            segments={segment.key: self.segments[segment.key] for segment in definitions.segments},
            source=self.source,
            warnings=tuple(self.warnings),
            definitions=definitions,
        )

    def _warn_segment(self, definition: SegmentDefinition) -> None:
        if not definition.rules:
            self.warn("segment has no rules, so no user is ever in it", segment=definition.key)

    def _segment(self, definition: SegmentDefinition) -> Segment:
        self._warn_segment(definition)
        rules = tuple(
            SegmentRule(rule.id or str(index), self._constraints(rule.constraints))
            for index, rule in enumerate(definition.rules)
        )
        return Segment(
            key=definition.key,
            name=definition.name or definition.key,
            description=definition.description,
            rules=rules,
            fingerprint=fingerprint(segment_document(definition)),
            definition=definition,
        )

    def _constraints(self, definitions: tuple[ConstraintDefinition, ...]) -> tuple[Constraint, ...]:
        # By the definitions' identities, not the tuple's: rules that differ only in their splits are
        # read as new tuples of the same (memoized) constraint definitions.
        key = tuple(map(id, definitions))
        known = self.tuples.get(key)
        if known is None:
            known = self.tuples[key] = (definitions, tuple(map(self._constraint, definitions)))
        return known[1]

    def _constraint(self, definition: ConstraintDefinition) -> Constraint:
        known = self.constraints.get(id(definition))
        if known is not None:
            return known[1]
        spec = OPERATORS[definition.operation]
        values = definition.values
        typed = _typed(values)
        arguments = self.prepared.get((spec.name, typed), _UNPREPARED)
        if arguments is _UNPREPARED:
            arguments = self.prepared[spec.name, typed] = spec.prepare(values, self.sets)
        referenced = tuple(self.segments[v] for v in values) if spec.tests_segments else ()
        compiled = compile_constraint(definition.property, spec.name, values, referenced, arguments=arguments)
        self.constraints[id(definition)] = (definition, compiled)
        return compiled

    def _warn_flag(self, definition: FlagDefinition) -> None:
        """The remarks on a flag's definition (a kept flag's too: the set's warnings are all of them)."""
        keys = {variant.key for variant in definition.variants}
        if (
            definition.enabled
            and not definition.rules
            and (definition.default_variant_when_on or "") not in keys
        ):
            self.warn(
                "enabled with no rules and no defaultVariantWhenOn: every evaluation answers no value "
                "(the caller's code default)",
                flag=definition.key,
            )
        if not definition.enabled and (definition.default_variant_when_off or "") not in keys:
            self.warn(
                "disabled with no defaultVariantWhenOff: every evaluation answers no value "
                "(the caller's code default)",
                flag=definition.key,
            )

    def _flag(self, definition: FlagDefinition, version_of: VersionOf | None) -> Flag:
        key = definition.key
        variants = {variant.key: variant for variant in definition.variants}
        on_default = variants.get(definition.default_variant_when_on or "")
        off_default = variants.get(definition.default_variant_when_off or "")
        digest = self._fingerprint(definition)  # names the definition for the version and the store
        version = definition.version or (version_of(key, digest) if version_of else 1)
        answer = _AnswerFactory(key, version, definition.track_events)
        rules = tuple(
            self._rule(index, rule, variants, answer) for index, rule in enumerate(definition.rules)
        )
        enabled = definition.enabled
        self._warn_flag(definition)
        # A default that is needed but not set answers no value and no variant, so the caller's code
        # default applies (DESIGN.md, Evaluation semantics 5; flagd does the same). Only the default
        # of the flag's own state is built: a flag's enabled state is fixed when it is compiled.
        if not enabled:
            default = (
                answer.without_value(Reason.DISABLED)
                if off_default is None
                else answer.of(off_default, Reason.DISABLED)
            )
        elif on_default is None:
            default = answer.without_value(Reason.DEFAULT)
        else:
            default = answer.of(on_default, Reason.DEFAULT if rules else Reason.STATIC)
        return Flag(
            fast=build_fast_path(key, rules, default, self.plans) if enabled and rules else None,
            key=key,
            name=definition.name or key,
            description=definition.description,
            enabled=enabled,
            version=version,
            variants=variants,
            rules=rules,
            default_variant_when_on=on_default,
            default_variant_when_off=off_default,
            track_events=definition.track_events,
            metadata=definition.metadata,
            default_answer=default,
            fingerprint=digest,
            definition=definition,
        )

    def _fingerprint(self, definition: FlagDefinition) -> str:
        """fingerprint(flag_document(definition)), the same text, with a rule that flags share (one
        definition, from _Reader) written out once per compile (orjson.Fragment: its text as it
        is): writing it again for every flag was most of what the digests cost."""
        try:
            text = _fingerprint_text(flag_document(definition, self._rule_text))
        except (TypeError, orjson.JSONEncodeError):  # what orjson cannot write: fingerprint's way
            return fingerprint(flag_document(definition))
        return hashlib.sha1(text).hexdigest()

    def _rule_text(self, rule: FlagRuleDefinition) -> Any:
        """The rule's document the first time, its text from the second. Only a rule met again is
        kept as text: each text orjson writes holds a block of a few KB while it lives, which a set
        of distinct rules (one text each) would leave behind in the process (BENCHMARKS.md)."""
        known = self.rule_texts.get(id(rule))
        if known is None:
            self.rule_texts[id(rule)] = (rule, None)
            return rule_document(rule)
        text = known[1]
        if text is None:
            text = orjson.Fragment(_fingerprint_text(rule_document(rule)))
            self.rule_texts[id(rule)] = (rule, text)
        return text

    def _rule(
        self,
        index: int,
        definition: FlagRuleDefinition,
        variants: Mapping[str, Variant],
        answer: _AnswerFactory,
    ) -> FlagRule:
        distributions = []
        start = 0
        for share in definition.distributions:
            variant = variants[share.variant]
            end = start + round(share.percentage * 100)
            distribution = self.distributions.get((id(variant), start, end))
            if distribution is None or distribution.percentage != share.percentage:
                distribution = Distribution(variant, float(share.percentage), start, end)
                self.distributions[id(variant), start, end] = distribution
            distributions.append(distribution)
            start = end
        served = [d for d in distributions if d.end > d.start]
        key = tuple(map(id, distributions))
        shared = self.tuples.get(key)
        if shared is None:
            shared = self.tuples[key] = (None, tuple(distributions))
        rule = FlagRule(
            index,
            definition.id or str(index),
            self._constraints(definition.constraints),
            shared[1],
            definition.bucket_by or USER_ID_PROPERTY,
        )
        if len(served) == 1:
            rule.single = answer.of(served[0].variant, Reason.TARGETING_MATCH)
        else:
            rule.bounds = tuple(d.end for d in served)
            rule.split_answers = tuple(answer.of(d.variant, Reason.SPLIT) for d in served)
        return rule


_UNPREPARED = object()


# ---------------------------------------------------------------- shared


def _topological_order(edges: Mapping[str, Sequence[str]]) -> tuple[list[str], list[list[str]]]:
    """Keys ordered so that references come first, and the cycles found (each as a path).

    Depth first without recursion: a chain of thousands of segments must be an error message, not
    a RecursionError.
    """
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done
    cycles: list[list[str]] = []
    for root in edges:
        if root in state:
            continue
        state[root] = 1
        path, pending = [root], [iter(edges[root])]
        while pending:
            for ref in pending[-1]:
                if ref not in edges or state.get(ref) == 2:  # unknown: reported where it is used
                    continue
                if state.get(ref) == 1:
                    cycles.append([*path[path.index(ref) :], ref])
                    continue
                state[ref] = 1
                path.append(ref)
                pending.append(iter(edges[ref]))
                break
            else:
                pending.pop()
                key = path.pop()
                state[key] = 2
                order.append(key)
    in_cycle = {key for cycle in cycles for key in cycle}
    return [key for key in order if key not in in_cycle], cycles


def _nesting_depths(order: Sequence[str], edges: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """How many segments deep each segment's references go (1: it references none)."""
    depths: dict[str, int] = {}
    for key in order:
        depths[key] = 1 + max((depths[ref] for ref in edges[key] if ref in depths), default=0)
    return depths


def _values_fit(
    check: _Checker,
    spec: OperatorSpec,
    values: Sequence[Any],
    segments: Container[str],
    where: dict[str, Any],
) -> bool:
    operation, kind = spec.name, spec.values
    if kind.accepts is None:
        if values:
            check.add(f"{operation} takes no values, but {len(values)} are listed", **where)
            return False
        return True
    if not values:
        check.add(f"{operation} needs at least one value; the list is empty", **where)
        return False
    if not all(map(kind.accepts, values)):
        bad = [repr(v) for v in values if not kind.accepts(v)]
        check.add(
            f"{operation} values must each be {kind.description}; not {', '.join(bad)}{kind.hint}", **where
        )
        return False
    return not spec.tests_segments or _segments_known(check, operation, values, segments, where)


def _segments_known(
    check: _Checker, operation: str, values: Sequence[Any], segments: Container[str], where: dict[str, Any]
) -> bool:
    unknown = [v for v in values if v not in segments]
    if unknown:
        check.add(
            f"{operation} references unknown segment{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(v) for v in unknown)}",
            **where,
        )
        return False
    return True


class _AnySegment:
    """The segment keys for a flag read before the segments: every key, checked later."""

    def __contains__(self, key: object) -> bool:
        return True


_ANY_SEGMENT: Any = _AnySegment()


class _AnswerFactory:
    """Builds the ready-made Evaluations a flag can return. A plain class: one is made per flag,
    and a frozen dataclass's __init__ (a setattr call per field) showed in compiling one."""

    __slots__ = ("_answers", "flag_key", "track_events", "version")

    def __init__(self, flag_key: str, version: int, track_events: bool) -> None:
        self.flag_key = flag_key
        self.version = version
        self.track_events = track_events
        # One object per (variant, reason): rules that serve the same variant share their answer.
        self._answers: dict[tuple[str, Reason], Evaluation] = {}

    def of(self, variant: Variant, reason: Reason) -> Evaluation:
        answer = self._answers.get((variant.key, reason))
        if answer is None:
            answer = self._answers[variant.key, reason] = Evaluation(
                flag_key=self.flag_key,
                value=variant.value,
                variant=variant.key,
                reason=reason,
                flag_version=self.version,
                track_events=self.track_events,
            )
        return answer

    def without_value(self, reason: Reason) -> Evaluation:
        """The answer when the default needed is not set: no value, no variant, no error."""
        return Evaluation(
            flag_key=self.flag_key,
            value=None,
            variant="",
            reason=reason,
            flag_version=self.version,
            track_events=self.track_events,
        )

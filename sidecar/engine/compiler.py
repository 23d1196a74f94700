"""Validate and compile a flag document (the parsed YAML/JSON of DESIGN.md's file format).

Every problem is collected, located (source, flag key, rule index, path) and reported at once in a
FlagSetError; a set with any problem is rejected as a whole. What survives is compiled: value sets,
regexes and networks built, segment references resolved, bucket ranges and answers precomputed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .fastpath import build_fast_path
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

# Decides a flag's version from its key and the fingerprint of its definition (the store keeps history).
VersionOf = Callable[[str, str], int]

TOP_LEVEL_FIELDS = ("flags", "segments")
FLAG_FIELDS = (
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
VARIANT_FIELDS = ("key", "value", "description")
RULE_FIELDS = ("id", "constraints", "distributions", "bucketBy")
CONSTRAINT_FIELDS = ("property", "operation", "values")
DISTRIBUTION_FIELDS = ("variant", "percentage")
SEGMENT_FIELDS = ("key", "name", "description", "rules")
SEGMENT_RULE_FIELDS = ("id", "constraints")


def fingerprint(definition: Any) -> str:
    """A stable digest of a flag or segment definition (key order does not matter)."""
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()


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

    def mapping(self, value: Any, what: str, allowed: Sequence[str], **where: Any) -> Mapping[str, Any]:
        """`value` as a mapping; unknown fields are problems (they are usually typos)."""
        if not isinstance(value, Mapping):
            self.add(f"{what} must be a mapping, not {json_type(value)}", **where)
            return {}
        for name in value:
            if name not in allowed:
                hint = _closest(str(name), allowed)
                suggestion = f" (did you mean {hint!r}?)" if hint else ""
                self.add(f"unknown field {name!r} in {what}{suggestion}", **where)
        return value

    def sequence(self, value: Any, what: str, **where: Any) -> Sequence[Any]:
        if value is None:
            return []
        if not isinstance(value, list | tuple):
            self.add(f"{what} must be a list, not {json_type(value)}", **where)
            return []
        return value

    def text(self, value: Any, what: str, *, required: bool = False, **where: Any) -> str:
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
    """Validate and compile a whole document; raise FlagSetError listing every problem.

    With `consume`, the document's list of flags is emptied as they are compiled (the caller has no
    further use for it): each raw flag is freed at once and its memory taken by the compiled flags
    that follow, instead of the whole document staying until the end, which leaves the compiled set
    scattered over memory the process keeps (BENCHMARKS.md measures the RSS saved).
    """
    check = _Checker(source)
    if document is None:
        # An empty file is far more often a write caught half-way (truncate, then write) than a wish
        # to serve nothing; `flags: []` says the latter explicitly.
        check.add("the document is empty; write `flags: []` to serve no flags")
        raise FlagSetError(check.problems)
    top = check.mapping(document, "the flag document", TOP_LEVEL_FIELDS)
    raw_segments = check.sequence(top.get("segments"), "segments", path="segments")
    raw_flags = check.sequence(top.get("flags"), "flags", path="flags")

    segments = _compile_segments(check, raw_segments)
    flags: dict[str, Flag] = {}
    for index, raw in enumerate(raw_flags):
        if consume and type(raw_flags) is list:
            raw_flags[index] = None
        flag = _compile_flag(check, index, raw, segments, version_of)
        if flag is None:
            continue
        if flag.key in flags:
            check.add("duplicate flag key", flag=flag.key, path=f"flags[{index}]")
            continue
        flags[flag.key] = flag
    if check.problems:
        raise FlagSetError(check.problems)
    return FlagSet(
        flags=dict(sorted(flags.items())),
        segments=segments,
        source=source,
        warnings=tuple(check.warnings),
    )


# ---------------------------------------------------------------- segments


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


def _compile_segments(check: _Checker, raw_segments: Sequence[Any]) -> dict[str, Segment]:
    definitions: dict[str, tuple[int, Mapping[str, Any]]] = {}
    for index, raw in enumerate(raw_segments):
        path = f"segments[{index}]"
        body = check.mapping(raw, "a segment", SEGMENT_FIELDS, path=path)
        key = check.text(body.get("key"), "segment key", required=True, path=path)
        if not key:
            continue
        if key in definitions:
            check.add("duplicate segment key", segment=key, path=path)
            continue
        definitions[key] = (index, body)

    # Compile in dependency order so that a segment's constraints can hold its referenced segments.
    edges = {
        key: _segment_references(check.sequence(body.get("rules"), "rules"))
        for key, (_, body) in definitions.items()
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
    segments: dict[str, Segment] = {}
    for key in order:
        index, body = definitions[key]
        rules = []
        for rule_index, raw_rule in enumerate(
            check.sequence(body.get("rules"), "segment rules", segment=key, path="rules")
        ):
            where: dict[str, Any] = {"segment": key, "rule": rule_index}
            rule_body = check.mapping(raw_rule, "a segment rule", SEGMENT_RULE_FIELDS, **where)
            rule_id = check.text(rule_body.get("id"), "rule id", **where) or str(rule_index)
            constraints = _compile_constraints(check, rule_body.get("constraints"), segments, where)
            rules.append(SegmentRule(rule_id, constraints))
        if not rules:
            check.warn("segment has no rules, so no user is ever in it", segment=key)
        segments[key] = Segment(
            key=key,
            name=check.text(body.get("name"), "segment name", segment=key) or key,
            description=check.text(body.get("description"), "segment description", segment=key),
            rules=tuple(rules),
            fingerprint=fingerprint(body),
        )
    return segments


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


# ---------------------------------------------------------------- constraints


def _compile_constraints(
    check: _Checker, raw: Any, segments: Mapping[str, Segment], where: dict[str, Any]
) -> tuple[Constraint, ...]:
    compiled = []
    for index, raw_constraint in enumerate(check.sequence(raw, "constraints", **where)):
        constraint = _compile_constraint(
            check, raw_constraint, segments, {**where, "path": f"constraints[{index}]"}
        )
        if constraint is not None:
            compiled.append(constraint)
    return tuple(compiled)


def _compile_constraint(
    check: _Checker, raw: Any, segments: Mapping[str, Segment], where: dict[str, Any]
) -> Constraint | None:
    body = check.mapping(raw, "a constraint", CONSTRAINT_FIELDS, **where)
    if not body:
        return None
    operation = body.get("operation")
    spec = OPERATORS.get(operation) if isinstance(operation, str) else None
    if spec is None:
        hint = _closest(str(operation), OPERATIONS)
        suggestion = f" (did you mean {hint!r}?)" if hint else f"; expected one of {', '.join(OPERATIONS)}"
        check.add(f"unknown operation {operation!r}{suggestion}", **where)
        return None
    prop = check.text(body.get("property"), "property", **where)
    if not prop and not spec.tests_segments:
        check.add(f"{operation} needs a property (the context key it tests)", **where)
        return None
    values = check.sequence(body.get("values"), "values", **where)
    if not _values_fit(check, spec, values, segments, where):
        return None
    referenced = tuple(segments[v] for v in values) if spec.tests_segments else ()
    try:
        return compile_constraint(prop, spec.name, values, referenced, check.sets)
    except InvalidValues as error:
        check.add(str(error), **where)
        return None


def _values_fit(
    check: _Checker,
    spec: OperatorSpec,
    values: Sequence[Any],
    segments: Mapping[str, Segment],
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
    bad = [repr(v) for v in values if not kind.accepts(v)]
    if bad:
        check.add(
            f"{operation} values must each be {kind.description}; not {', '.join(bad)}{kind.hint}", **where
        )
        return False
    if spec.tests_segments:
        unknown = [v for v in values if v not in segments]
        if unknown:
            check.add(
                f"{operation} references unknown segment{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(v) for v in unknown)}",
                **where,
            )
            return False
    return True


# ---------------------------------------------------------------- flags


def _compile_flag(
    check: _Checker,
    index: int,
    raw: Any,
    segments: Mapping[str, Segment],
    version_of: VersionOf | None,
) -> Flag | None:
    path = f"flags[{index}]"
    body = check.mapping(raw, "a flag", FLAG_FIELDS, path=path)
    key = check.text(body.get("key"), "flag key", required=True, path=path)
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
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        check.add(f"metadata must be a mapping, not {json_type(metadata)}", **where)
    explicit_version = body.get("version")
    if explicit_version is not None and (
        not isinstance(explicit_version, int) or isinstance(explicit_version, bool) or explicit_version < 1
    ):
        check.add("version must be a whole number of at least 1", **where)

    variants = _compile_variants(check, body.get("variants"), where)
    on_default = _variant_reference(
        check, body.get("defaultVariantWhenOn"), "defaultVariantWhenOn", variants, where
    )
    off_default = _variant_reference(
        check, body.get("defaultVariantWhenOff"), "defaultVariantWhenOff", variants, where
    )
    raw_rules = check.sequence(body.get("rules"), "rules", **where)
    rule_ids: set[str] = set()
    rule_parts = []
    for rule_index, raw_rule in enumerate(raw_rules):
        parts = _check_rule(check, rule_index, raw_rule, variants, segments, where)
        if parts is None:
            continue
        if parts[0] in rule_ids:
            check.add(f"duplicate rule id {parts[0]!r}", **where, rule=rule_index)
        rule_ids.add(parts[0])
        rule_parts.append((rule_index, parts))
    if len(check.problems) > before:
        return None

    digest = fingerprint(body)  # once: it names the definition for the version and for the store
    version = explicit_version or (version_of(key, digest) if version_of else 1)
    answer = _AnswerFactory(key, version, track_events)
    rules = tuple(_build_rule(rule_index, *parts, answer) for rule_index, parts in rule_parts)
    if enabled and not rules and on_default is None:
        check.warn(
            "enabled with no rules and no defaultVariantWhenOn: every evaluation answers no value "
            "(the caller's code default)",
            **where,
        )
    if not enabled and off_default is None:
        check.warn(
            "disabled with no defaultVariantWhenOff: every evaluation answers no value "
            "(the caller's code default)",
            **where,
        )

    # A default that is needed but not set answers no value and no variant, so the caller's code
    # default applies (DESIGN.md, Evaluation semantics 5; flagd does the same).
    off_answer = (
        answer.without_value(Reason.DISABLED)
        if off_default is None
        else answer.of(off_default, Reason.DISABLED)
    )
    if on_default is None:
        fallthrough = answer.without_value(Reason.DEFAULT)
    else:
        fallthrough = answer.of(on_default, Reason.DEFAULT if rules else Reason.STATIC)
    return Flag(
        fast=build_fast_path(key, rules, fallthrough) if enabled and rules else None,
        key=key,
        name=check.text(body.get("name"), "name", **where) or key,
        description=check.text(body.get("description"), "description", **where),
        enabled=bool(enabled),
        version=version,
        variants=variants,
        rules=rules,
        default_variant_when_on=on_default,
        default_variant_when_off=off_default,
        track_events=track_events,
        metadata=dict(metadata),
        off_answer=off_answer,
        fallthrough_answer=fallthrough,
        fingerprint=digest,
    )


def _compile_variants(check: _Checker, raw: Any, where: dict[str, Any]) -> dict[str, Variant]:
    variants: dict[str, Variant] = {}
    raw_variants = check.sequence(raw, "variants", **where)
    if not raw_variants:
        check.add("a flag needs at least one variant", **where)
    types: dict[str, list[str]] = {}
    for index, raw_variant in enumerate(raw_variants):
        vwhere = {**where, "path": f"variants[{index}]"}
        body = check.mapping(raw_variant, "a variant", VARIANT_FIELDS, **vwhere)
        if not body:
            continue
        key = check.text(body.get("key"), "variant key", required=True, **vwhere)
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
        variants[key] = Variant(key, value, check.text(body.get("description"), "description", **vwhere))
    if len(types) > 1:
        listing = "; ".join(f"{kind}: {', '.join(keys)}" for kind, keys in types.items())
        check.add(f"variants must all have the same type, but they mix {listing}", **where)
    return variants


def _variant_reference(
    check: _Checker, raw: Any, what: str, variants: Mapping[str, Variant], where: dict[str, Any]
) -> Variant | None:
    if raw is None:
        return None
    key = check.text(raw, what, **where)
    if not key:
        return None
    if key not in variants:
        check.add(
            f"{what} names unknown variant {key!r}; variants are {', '.join(variants) or 'none'}", **where
        )
        return None
    return variants[key]


def _check_rule(
    check: _Checker,
    index: int,
    raw: Any,
    variants: Mapping[str, Variant],
    segments: Mapping[str, Segment],
    flag_where: dict[str, Any],
) -> tuple[str, tuple[Constraint, ...], list[tuple[Variant, float]], str] | None:
    where = {**flag_where, "rule": index}
    body = check.mapping(raw, "a rule", RULE_FIELDS, **where)
    if not body:
        return None
    rule_id = check.text(body.get("id"), "rule id", **where) or str(index)
    constraints = _compile_constraints(check, body.get("constraints"), segments, where)
    bucket_by = check.text(body.get("bucketBy"), "bucketBy", **where) or USER_ID_PROPERTY

    shares: list[tuple[Variant, float]] = []
    raw_distributions = check.sequence(body.get("distributions"), "distributions", **where)
    if not raw_distributions:
        check.add("a rule needs at least one distribution (the variants it serves)", **where)
    seen: set[str] = set()
    for d_index, raw_d in enumerate(raw_distributions):
        dwhere = {**where, "path": f"distributions[{d_index}]"}
        d_body = check.mapping(raw_d, "a distribution", DISTRIBUTION_FIELDS, **dwhere)
        if not d_body:
            continue
        variant_key = check.text(d_body.get("variant"), "distribution variant", required=True, **dwhere)
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
        if abs(percentage * 100 - round(percentage * 100)) > 1e-6:
            check.add(f"percentage {percentage} has more than two decimals", **dwhere)
            continue
        if variant_key:
            shares.append((variants[variant_key], float(percentage)))
    total = sum(round(p * 100) for _, p in shares)
    if shares and len(shares) == len(raw_distributions) and total != BUCKET_COUNT:
        check.add(f"distribution percentages sum to {total / 100:g}, not 100", **where)
    return rule_id, constraints, shares, bucket_by


def _build_rule(
    index: int,
    rule_id: str,
    constraints: tuple[Constraint, ...],
    shares: list[tuple[Variant, float]],
    bucket_by: str,
    answer: _AnswerFactory,
) -> FlagRule:
    distributions = []
    start = 0
    for variant, percentage in shares:
        end = start + round(percentage * 100)
        distributions.append(Distribution(variant, percentage, start, end))
        start = end
    served = [d for d in distributions if d.end > d.start]
    rule = FlagRule(index, rule_id, constraints, tuple(distributions), bucket_by)
    if len(served) == 1:
        rule.single = answer.of(served[0].variant, Reason.TARGETING_MATCH)
    else:
        rule.bounds = tuple(d.end for d in served)
        rule.split_answers = tuple(answer.of(d.variant, Reason.SPLIT) for d in served)
    return rule


@dataclass(frozen=True)
class _AnswerFactory:
    """Builds the ready-made Evaluations a flag can return."""

    flag_key: str
    version: int
    track_events: bool
    # One object per (variant, reason): rules that serve the same variant share their answer.
    _answers: dict[tuple[str, Reason], Evaluation] = field(default_factory=dict)

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

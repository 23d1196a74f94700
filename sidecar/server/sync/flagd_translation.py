"""Our flag definitions as flagd flag-definition JSON, for flagd's in-process providers.

Only what the provider provably evaluates exactly as the sidecar answers over flagd's RPC protocol
is translated; every other flag is left out of the payload with the reason (docs/sync.md has the
table), so that a provider answers FLAG_NOT_FOUND for it rather than a wrong value. "Provably"
is against the Python provider (openfeature-provider-flagd 0.6, openfeature-flagd-core 2.x, whose
JsonLogic is panzi-json-logic): its `in` is Python's `in` on a list (so `true in [1]` holds), its
`var` reads "a.b" as a path, and its `starts_with` / `ends_with` answer null for a non-string.

What is translated:
- state, variants, defaultVariant (our defaultVariantWhenOn; null when there is none, which flagd
  answers as we do: reason DEFAULT, no value). A disabled flag is DISABLED, whatever
  defaultVariantWhenOff says, as the sidecar's flagd RPC answers it (no value).
- rules as one `if` chain, in order; a rule serving one variant (a single 100 % distribution)
  returns its key; no rule matching gives null, so the default with reason DEFAULT, as ours.
- constraints: ONE_OF / NOT_ONE_OF of strings, STARTS_WITH / ENDS_WITH and their negations,
  IS_IN_SEGMENT / ISNT_IN_SEGMENT with the segments inlined (when all their constraints are).
  A missing or other-typed value: `in` a list of strings is false for it, and `starts_with` null
  (falsy), so the positive tests are false and their negations true, our `on_mismatch`.
- the property "$userId" reads the targeting key, with "" as missing (ours has no user id then).
- metadata entries whose values are strings, numbers or booleans (flagd-core rejects the whole
  document for any other value).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sidecar.engine import FlagDefinition, SegmentDefinition
from sidecar.engine.definitions import ConstraintDefinition, FlagRuleDefinition
from sidecar.engine.model import USER_ID_PROPERTY

from .flagd_fractional import NotSplittable, split

Json = Any

TARGETING_KEY: Final = "targetingKey"
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

SPLIT_REASON: Final = (
    "percentage split: the Python flagd provider (openfeature-flagd-core 2.x) buckets with fractional "
    "v3 (murmur3 of the CBOR encoding of [flagKey, targetingKey]), not our murmur3('<flag key>:<value>'); "
    "a provider hashing as fractional v2 gets it with provider_id fractional=v2"
)
# Why each operation that is not translated is left out (every operation of OPERATORS that
# _constraint does not translate has an entry; a test checks it).
OPERATION_REASONS: Final[Mapping[str, str]] = {
    **dict.fromkeys(
        ("GREATER", "GREATER_OR_EQUAL", "LOWER", "LOWER_OR_EQUAL"),
        "numeric comparison: JsonLogic's comparisons convert strings and booleans to numbers "
        "('30' >= 18 holds) and it has no type test",
    ),
    **dict.fromkeys(
        ("EXISTS", "DOESNT_EXIST"),
        "existence test: JsonLogic has no exact null test, and the in-process context keeps lists "
        "and objects that the RPC context drops",
    ),
    **dict.fromkeys(
        ("CONTAINS", "DOESNT_CONTAIN"),
        "substring test: JsonLogic's in also searches lists and converts the needle to text",
    ),
    **dict.fromkeys(
        ("MATCHES_REGEX", "DOESNT_MATCH_REGEX"), "regular expression: flagd's JsonLogic has none"
    ),
    "IS_IN_NETWORK": "network test: flagd's JsonLogic has none",
    **dict.fromkeys(
        (
            "SEMVER_EQUAL",
            "SEMVER_NOT_EQUAL",
            "SEMVER_LOWER",
            "SEMVER_LOWER_OR_EQUAL",
            "SEMVER_GREATER",
            "SEMVER_GREATER_OR_EQUAL",
            "SEMVER_SAME_MAJOR",
            "SEMVER_SAME_MINOR",
        ),
        "version test: flagd's sem_ver reads numbers and partial versions differently from ours",
    ),
}
MIXED_ONE_OF_REASON: Final = (
    "with number or boolean values: JsonLogic's in compares with Python's == (true == 1)"
)


class _LeftOut(Exception):
    """This flag cannot be served exactly; str() says why."""


@dataclass(frozen=True, slots=True)
class Translation:
    """A flag set in flagd's format: the flags translated (as JSON values and as JSON text), and
    the ones left out with why."""

    flags: Mapping[str, Json]
    left_out: Mapping[str, str]
    texts: Mapping[str, str]  # key -> the flag's JSON text

    def document(self) -> dict[str, Json]:
        return {"flags": dict(self.flags)}

    def document_text(self) -> str:
        """`document()` as compact JSON, from the flags' texts."""
        return '{"flags":{' + ",".join(f"{_text(key)}:{text}" for key, text in self.texts.items()) + "}}"


def _text(value: Json) -> str:
    # ASCII (\uXXXX escapes): a protobuf string must be valid UTF-8, which a lone surrogate in a
    # flag file's text is not.
    return json.dumps(value, separators=(",", ":"))


class Translator:
    """Translates successive flag sets, reusing each flag's translation while its definition is the
    same object and the segments are equal (the fan-out keeps an unchanged flag's definition from
    one snapshot to the next), so a change costs what changed plus the document's assembly."""

    def __init__(
        self,
        header_properties: frozenset[str] = frozenset(),
        static_context: Mapping[str, str] | None = None,
        *,
        fractional_v2: bool = False,
    ) -> None:
        """`header_properties`: the context keys the sidecar fills from request headers
        (--context-from-header), which an in-process provider never sees. `static_context`: the
        sidecar's --context-value pairs, which override the caller's, written into the rules as
        constants (the Go provider ignores sync_context, where they travel too). `fractional_v2`:
        percentage splits as fractional, for a provider that hashes as v2 (flagd_fractional.py)."""
        self.header_properties = header_properties
        self.static_context = dict(static_context or {})
        self.fractional_v2 = fractional_v2
        self._segments: Mapping[str, SegmentDefinition] | None = None
        # key -> (definition, its flagd JSON and text, or None and why it is left out)
        self._known: dict[str, tuple[FlagDefinition, Json, str]] = {}

    def translate(
        self, flags: Mapping[str, FlagDefinition], segments: Mapping[str, SegmentDefinition]
    ) -> Translation:
        """Every flag that translates exactly, and the reason for each that does not."""
        if self._segments is None or self._segments != segments:
            self._known.clear()
            self._segments = dict(segments)
        known: dict[str, tuple[FlagDefinition, Json, str]] = {}
        translated: dict[str, Json] = {}
        texts: dict[str, str] = {}
        left_out: dict[str, str] = {}
        single = _Single(segments, self.header_properties, self.static_context, self.fractional_v2)
        for key, flag in flags.items():
            entry = self._known.get(key)
            if entry is None or entry[0] is not flag:
                try:
                    value = single.flag(flag)
                    entry = (flag, value, _text(value))
                except _LeftOut as why:
                    entry = (flag, None, str(why))
            known[key] = entry
            if entry[1] is None:
                left_out[key] = entry[2]
            else:
                translated[key] = entry[1]
                texts[key] = entry[2]
        self._known = known
        return Translation(translated, left_out, texts)


def translate(
    flags: Mapping[str, FlagDefinition],
    segments: Mapping[str, SegmentDefinition],
    *,
    header_properties: frozenset[str] = frozenset(),
    static_context: Mapping[str, str] | None = None,
    fractional_v2: bool = False,
) -> Translation:
    """One flag set's translation (Translator.translate, with nothing to reuse)."""
    translator = Translator(header_properties, static_context, fractional_v2=fractional_v2)
    return translator.translate(flags, segments)


class _Single:
    """One flag set's flags, one at a time."""

    def __init__(
        self,
        segments: Mapping[str, SegmentDefinition],
        header_properties: frozenset[str],
        static_context: Mapping[str, str],
        fractional_v2: bool,
    ) -> None:
        self._segments = segments
        self._header_properties = header_properties
        self._static_context = static_context
        self._fractional_v2 = fractional_v2

    def flag(self, flag: FlagDefinition) -> Json:
        variants = {variant.key: _variant_value(variant.key, variant.value) for variant in flag.variants}
        document: dict[str, Json] = {
            "state": "ENABLED" if flag.enabled else "DISABLED",
            "variants": variants,
            "defaultVariant": flag.default_variant_when_on,
        }
        if flag.enabled and flag.rules:
            chain: list[Json] = []
            for rule in flag.rules:
                chain += self._rule(flag, rule)
            chain.append(None)
            document["targeting"] = {"if": chain}
        metadata = {key: value for key, value in flag.metadata.items() if _is_metadata_value(value)}
        if metadata:
            document["metadata"] = metadata
        return document

    def _rule(self, flag: FlagDefinition, rule: FlagRuleDefinition) -> list[Json]:
        """The rule's [condition, answer] pair of the `if` chain."""
        condition = self._rule_condition(rule)
        served = _served_variant(rule)
        if served is not None:
            return [condition, served]
        if not self._fractional_v2:
            raise _LeftOut(SPLIT_REASON)
        value = self._value(rule.bucket_by or USER_ID_PROPERTY)
        try:
            applies, answer = split(flag.key, [v.key for v in flag.variants], rule, value)
        except NotSplittable as why:
            raise _LeftOut(f"percentage split: {why}") from None
        if applies is not True:
            condition = applies if condition is True else _all([condition, applies])
        return [condition, answer]

    def _rule_condition(self, rule: FlagRuleDefinition) -> Json:
        return _all([self._constraint(constraint, ()) for constraint in rule.constraints])

    def _constraint(self, constraint: ConstraintDefinition, within: tuple[str, ...]) -> Json:
        operation = constraint.operation
        values = constraint.values
        if operation in ("IS_IN_SEGMENT", "ISNT_IN_SEGMENT"):
            members = [self._segment(key, within) for key in values]
            return _all(members) if operation == "IS_IN_SEGMENT" else _not(_any(members))
        if operation in ("ONE_OF", "NOT_ONE_OF"):
            if not all(type(value) is str for value in values):
                raise _LeftOut(f"{operation} {MIXED_ONE_OF_REASON}")
            # One strict equality per value, not `in`: Go's JsonLogic `in` compares a number with
            # each element read as a number ("5" and "abc" become 5 and 0). `===` is type-strict in
            # Go's and is Python's `==`, where only a string equals a string: exact in both.
            value = self._value(constraint.property)
            test = _any([{"===": [value, text]} for text in values])
            return test if operation == "ONE_OF" else _not(test)
        affix = _AFFIXES.get(operation)
        if affix is not None:
            name, negated = affix
            value = self._value(constraint.property)
            test = _any([{name: [value, text]} for text in values])
            return _not(test) if negated else test
        raise _LeftOut(f"{operation}: {OPERATION_REASONS.get(operation, 'not translated')}")

    def _segment(self, key: str, within: tuple[str, ...]) -> Json:
        segment = self._segments.get(key)
        if segment is None or key in within:  # the store never compiles either; be safe anyway
            raise _LeftOut(f"segment {key!r} cannot be inlined")
        inner = (*within, key)
        return _any([_all([self._constraint(c, inner) for c in rule.constraints]) for rule in segment.rules])

    def _value(self, prop: str) -> Json:
        if prop == USER_ID_PROPERTY:
            # The targeting key, with "" read as missing (the sidecar sets no user id for it).
            key = {"var": TARGETING_KEY}
            return {"if": [key, key, None]}
        if prop == TARGETING_KEY:
            raise _LeftOut(f"property {prop!r}: flagd reads it as the targeting key, the sidecar does not")
        if prop.startswith("$"):
            raise _LeftOut(f"property {prop!r}: reserved")
        if "." in prop:
            raise _LeftOut(f"property {prop!r}: JsonLogic's var reads a dotted name as a path")
        if prop in self._header_properties:
            raise _LeftOut(
                f"property {prop!r}: the sidecar fills it from a request header (--context-from-header)"
            )
        if prop in self._static_context:
            return self._static_context[prop]  # the sidecar's value wins over the caller's, as flagd's -X
        return {"var": prop}


_AFFIXES: Final = {
    "STARTS_WITH": ("starts_with", False),
    "DOESNT_START_WITH": ("starts_with", True),
    "ENDS_WITH": ("ends_with", False),
    "DOESNT_END_WITH": ("ends_with", True),
}
TRANSLATED_OPERATIONS: Final = frozenset(
    ("ONE_OF", "NOT_ONE_OF", "IS_IN_SEGMENT", "ISNT_IN_SEGMENT", *_AFFIXES)
)


def _served_variant(rule: FlagRuleDefinition) -> str | None:
    """The one variant a rule serves, or None for a split. As the compiler: a distribution's width
    is round(percentage * 100) buckets; one that serves every bucket makes the rule answer one."""
    served = [d.variant for d in rule.distributions if round(d.percentage * 100) > 0]
    return served[0] if len(served) == 1 else None


def _variant_value(key: str, value: Any) -> Json:
    if not key:
        raise _LeftOut("a variant with an empty key: flagd reads it as no variant")
    if isinstance(value, list):
        raise _LeftOut(
            "a list value: flagd's evaluation protocol cannot carry it (the RPC answer is TYPE_MISMATCH)"
        )
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, float):
        if not value.is_integer() or not math.isfinite(value):
            raise _LeftOut(
                f"a fractional number ({value!r}): ResolveInt truncates it over RPC, the in-process "
                "provider answers TYPE_MISMATCH"
            )
        value = int(value)  # JSON 10, not 10.0: the in-process ResolveInt accepts only an int
    if not INT64_MIN <= value <= INT64_MAX:
        raise _LeftOut(f"a number outside int64 ({value}): ResolveInt fails over RPC, not in-process")
    return value


def _is_metadata_value(value: Any) -> bool:
    return isinstance(value, str | bool | int) or (isinstance(value, float) and math.isfinite(value))


def _all(tests: list[Json]) -> Json:
    if not tests:
        return True
    return tests[0] if len(tests) == 1 else {"and": tests}


def _any(tests: list[Json]) -> Json:
    if not tests:
        return False
    return tests[0] if len(tests) == 1 else {"or": tests}


def _not(test: Json) -> Json:
    return {"!": [test]}


__all__ = [
    "OPERATION_REASONS",
    "SPLIT_REASON",
    "TRANSLATED_OPERATIONS",
    "Translation",
    "Translator",
    "translate",
]

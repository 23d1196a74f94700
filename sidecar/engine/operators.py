"""The 19 constraint operations, each compiled once into a predicate over a context.

Typing rules (DESIGN.md): numbers compare numerically (5 == 5.0) but never across types ("5" != 5,
true != 1); a type mismatch or a missing property makes a positive test false and its negation
true. Nothing here raises at evaluation time.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import Any, TypeGuard

from .model import Context, Predicate, Segment

NUMBER_TYPES = (int, float)

OPERATIONS = (
    "ONE_OF",
    "NOT_ONE_OF",
    "GREATER",
    "GREATER_OR_EQUAL",
    "LOWER",
    "LOWER_OR_EQUAL",
    "EXISTS",
    "DOESNT_EXIST",
    "CONTAINS",
    "DOESNT_CONTAIN",
    "STARTS_WITH",
    "DOESNT_START_WITH",
    "ENDS_WITH",
    "DOESNT_END_WITH",
    "MATCHES_REGEX",
    "DOESNT_MATCH_REGEX",
    "IS_IN_SEGMENT",
    "ISNT_IN_SEGMENT",
    "IS_IN_NETWORK",
)
SEGMENT_OPERATIONS = frozenset({"IS_IN_SEGMENT", "ISNT_IN_SEGMENT"})
NO_VALUE_OPERATIONS = frozenset({"EXISTS", "DOESNT_EXIST"})
NUMBER_OPERATIONS = frozenset({"GREATER", "GREATER_OR_EQUAL", "LOWER", "LOWER_OR_EQUAL"})
STRING_OPERATIONS = frozenset(
    {
        "CONTAINS",
        "DOESNT_CONTAIN",
        "STARTS_WITH",
        "DOESNT_START_WITH",
        "ENDS_WITH",
        "DOESNT_END_WITH",
        "MATCHES_REGEX",
        "DOESNT_MATCH_REGEX",
        "IS_IN_NETWORK",
    }
)


@functools.cache
def _re2() -> tuple[ModuleType, Any]:
    """The re2 module and our options, imported when a flag first uses a regex (it costs RSS)."""
    import re2

    options = re2.Options()
    options.log_errors = False  # a bad pattern is reported as a Problem, not printed by the C++ library
    return re2, options


class InvalidValues(ValueError):
    """The configured values cannot be compiled for this operation."""


def is_number(value: Any) -> TypeGuard[int | float]:
    return type(value) in NUMBER_TYPES


def compile_regex(patterns: Sequence[str]) -> Any:
    """One RE2 program matching any of the patterns (unanchored search)."""
    re2, options = _re2()
    # Each pattern is checked on its own: once wrapped and joined, an invalid one such as "a)(?:b"
    # can balance into a valid program that means something else.
    for pattern in patterns:
        try:
            re2.compile(pattern, options)
        except re2.error as error:
            detail = error.args[0].decode() if isinstance(error.args[0], bytes) else str(error)
            raise InvalidValues(f"invalid regular expression {pattern!r}: {detail}") from None
    try:
        return re2.compile("|".join(f"(?:{p})" for p in patterns), options)
    except re2.error as error:  # each is valid, but together they exceed RE2's limits
        detail = error.args[0].decode() if isinstance(error.args[0], bytes) else str(error)
        raise InvalidValues(f"invalid regular expressions together: {detail}") from None


def parse_networks(values: Sequence[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for value in values:
        try:
            # strict=False: "10.1.2.3/8" means 10.0.0.0/8, as Go's ParseCIDR reads it.
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise InvalidValues(f"{value!r} is not an IP address or CIDR network") from None
    return tuple(networks)


class ValueSets:
    """The value sets of a flag set's ONE_OF / NOT_ONE_OF constraints, each built once.

    Equal sets are one object: a flag file repeats its lists (plans, countries), and the fast path
    tests the same set as the predicate. The empty set is one constant: most constraints list one
    kind of value, and each empty frozenset is an object of its own (BENCHMARKS.md: what it costs).
    """

    _EMPTY: frozenset[Any] = frozenset()

    def __init__(self) -> None:
        self._known: dict[tuple[str, frozenset[Any]], frozenset[Any]] = {}

    def get(self, kind: str, values: Iterable[Any]) -> frozenset[Any]:
        """`frozenset(values)`; `kind` keeps sets apart that are equal but hold other types
        ({1} == {True})."""
        items = frozenset(values)
        if not items:
            return self._EMPTY
        return self._known.setdefault((kind, items), items)


def _one_of(prop: str, values: Sequence[Any], sets: ValueSets, negate: bool = False) -> Predicate:
    strings = sets.get("str", (v for v in values if type(v) is str))
    # Kept exact (not converted to float): 5 == 5.0 and hash(5) == hash(5.0) already, while float()
    # would lose integers above 2**53 and overflow on those beyond the float range.
    numbers = sets.get("number", (v for v in values if is_number(v)))
    # Kept apart from numbers because True == 1 in Python.
    booleans = sets.get("bool", (v for v in values if type(v) is bool))

    def test(ctx: Context) -> bool:
        value = ctx.get(prop)
        kind = type(value)
        if kind is str:
            return value in strings
        if kind is bool:
            return value in booleans
        if kind is int or kind is float:
            return value in numbers
        return False

    def not_test(ctx: Context) -> bool:  # `not test(ctx)` without a second call
        value = ctx.get(prop)
        kind = type(value)
        if kind is str:
            return value not in strings
        if kind is bool:
            return value not in booleans
        if kind is int or kind is float:
            return value not in numbers
        return True

    return not_test if negate else test


def _negate(positive: Predicate) -> Predicate:
    def test(ctx: Context) -> bool:
        return not positive(ctx)

    return test


def _compare(prop: str, operation: str, values: Sequence[float]) -> Predicate:
    # "Against every value" collapses to one threshold.
    threshold = max(values) if operation in ("GREATER", "GREATER_OR_EQUAL") else min(values)

    def greater(ctx: Context) -> bool:
        value: Any = ctx.get(prop)
        return type(value) in NUMBER_TYPES and value > threshold

    def greater_or_equal(ctx: Context) -> bool:
        value: Any = ctx.get(prop)
        return type(value) in NUMBER_TYPES and value >= threshold

    def lower(ctx: Context) -> bool:
        value: Any = ctx.get(prop)
        return type(value) in NUMBER_TYPES and value < threshold

    def lower_or_equal(ctx: Context) -> bool:
        value: Any = ctx.get(prop)
        return type(value) in NUMBER_TYPES and value <= threshold

    return {
        "GREATER": greater,
        "GREATER_OR_EQUAL": greater_or_equal,
        "LOWER": lower,
        "LOWER_OR_EQUAL": lower_or_equal,
    }[operation]


def _exists(prop: str) -> Predicate:
    def test(ctx: Context) -> bool:
        return ctx.get(prop) is not None

    return test


def _string_test(prop: str, matches: Callable[[str], bool]) -> Predicate:
    def test(ctx: Context) -> bool:
        value = ctx.get(prop)
        return type(value) is str and matches(value)

    return test


# The common string tests in one function each (one Python call per constraint, not two).


def _contains_test(prop: str, values: Sequence[str]) -> Predicate:
    if len(values) != 1:
        return _string_test(prop, _contains(values))
    needle = values[0]

    def test(ctx: Context) -> bool:
        value = ctx.get(prop)
        return type(value) is str and needle in value

    return test


def _affix_test(prop: str, affixes: tuple[str, ...], suffix: bool) -> Predicate:
    def ends_with(ctx: Context) -> bool:
        value = ctx.get(prop)
        return type(value) is str and value.endswith(affixes)

    def starts_with(ctx: Context) -> bool:
        value = ctx.get(prop)
        return type(value) is str and value.startswith(affixes)

    return ends_with if suffix else starts_with


def _contains(values: Sequence[str]) -> Callable[[str], bool]:
    if len(values) == 1:
        needle = values[0]
        return lambda text: needle in text
    needles = tuple(values)
    return lambda text: any(n in text for n in needles)


def _searcher(search: Callable[[str], Any]) -> Callable[[str], bool]:
    def matches(text: str) -> bool:
        try:
            return search(text) is not None
        except UnicodeEncodeError:  # a lone surrogate: not valid text, so no pattern matches it
            return False

    return matches


def _in_network(prop: str, values: Sequence[str]) -> Predicate:
    networks = parse_networks(values)
    v4 = tuple(n for n in networks if n.version == 4)
    v6 = tuple(n for n in networks if n.version == 6)

    def test(ctx: Context) -> bool:
        value = ctx.get(prop)
        if type(value) is not str:
            return False
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return False
        candidates = v4 if address.version == 4 else v6
        return any(address in network for network in candidates)

    return test


def _in_segments(segments: Sequence[Segment]) -> Predicate:
    if len(segments) == 1:
        return segments[0].contains
    members = tuple(segment.contains for segment in segments)
    return lambda ctx: all(contains(ctx) for contains in members)


def _in_no_segment(segments: Sequence[Segment]) -> Predicate:
    members = tuple(segment.contains for segment in segments)
    return lambda ctx: not any(contains(ctx) for contains in members)


def build_predicate(
    prop: str,
    operation: str,
    values: Sequence[Any],
    segments: Sequence[Segment] = (),
    sets: ValueSets | None = None,
) -> Predicate:
    """Compile one constraint. Values must already have passed `compiler` validation;
    InvalidValues is raised for what only compiling can find (regex syntax, network syntax).
    `sets`: the flag set's ValueSets, to share equal value sets."""
    if operation == "ONE_OF":
        return _one_of(prop, values, sets or ValueSets())
    if operation == "NOT_ONE_OF":
        return _one_of(prop, values, sets or ValueSets(), negate=True)
    if operation in NUMBER_OPERATIONS:
        return _compare(prop, operation, values)
    if operation == "EXISTS":
        return _exists(prop)
    if operation == "DOESNT_EXIST":
        return _negate(_exists(prop))
    if operation in ("CONTAINS", "DOESNT_CONTAIN"):
        positive = _contains_test(prop, values)
    elif operation in ("STARTS_WITH", "DOESNT_START_WITH"):
        positive = _affix_test(prop, tuple(values), suffix=False)
    elif operation in ("ENDS_WITH", "DOESNT_END_WITH"):
        positive = _affix_test(prop, tuple(values), suffix=True)
    elif operation in ("MATCHES_REGEX", "DOESNT_MATCH_REGEX"):
        positive = _string_test(prop, _searcher(compile_regex(values).search))
    elif operation == "IS_IN_NETWORK":
        return _in_network(prop, values)
    elif operation == "IS_IN_SEGMENT":
        return _in_segments(segments)
    elif operation == "ISNT_IN_SEGMENT":
        return _in_no_segment(segments)
    else:
        raise InvalidValues(f"unknown operation {operation!r}")
    return _negate(positive) if operation.startswith("DOESNT") else positive

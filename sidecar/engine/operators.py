"""The constraint operations: one OperatorSpec each, in OPERATORS, the table everything reads.

A spec holds all there is to know about an operation: its name and number in flag.proto's Operation
enum, the kind of values it takes (checked at load), how those values are prepared once at compile
time (sets, thresholds, regexes, networks, versions), the predicate built from them, its typing
rule (the user value types it reads and what anything else gives), and its inline template for the
fast path. The compiler, the fast path, flag.proto and the README's operator table are checked
against this table by tests, so an operation is added here and nowhere else.

Typing rules (DESIGN.md): numbers compare numerically (5 == 5.0) but never across types ("5" != 5,
true != 1); a type mismatch or a missing property makes a positive test false and its negation
true (the semantic-version comparisons are all false, as flagd's sem_ver). Nothing here raises at
evaluation time.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import KW_ONLY, dataclass
from types import ModuleType
from typing import Any, NamedTuple, Protocol, TypeGuard

from .model import Constraint, Context, Predicate, Segment

NUMBER_TYPES = (int, float)
# The name under which the fast path's generated code holds NUMBER_TYPES (fastpath._HELPERS).
NUMBERS_HELPER = "_NUMBERS"


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


class Scalars(NamedTuple):
    """ONE_OF / NOT_ONE_OF values by type, each a set shared through ValueSets."""

    strings: frozenset[Any]
    # Kept exact (not converted to float): 5 == 5.0 and hash(5) == hash(5.0) already, while float()
    # would lose integers above 2**53 and overflow on those beyond the float range.
    numbers: frozenset[Any]
    # Kept apart from numbers because True == 1 in Python.
    booleans: frozenset[Any]


def _scalars(values: Sequence[Any], sets: ValueSets) -> Scalars:
    return Scalars(
        sets.get("str", (v for v in values if type(v) is str)),
        sets.get("number", (v for v in values if is_number(v))),
        sets.get("bool", (v for v in values if type(v) is bool)),
    )


def _one_of(prop: str, scalars: Scalars, negate: bool = False) -> Predicate:
    strings, numbers, booleans = scalars

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


def _compare(prop: str, operation: str, threshold: float) -> Predicate:
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


def _in_network(prop: str, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> Predicate:
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


# ---------------------------------------------------------------- semantic versions (flagd's sem_ver)


@functools.cache
def _semver_version() -> Any:
    """semver.Version, imported when a flag first uses a version operation (it costs start-up time)."""
    import semver

    return semver.Version


class Version(NamedTuple):
    """A semantic version, read once, with the parts the comparisons look at precomputed."""

    identity: tuple[int, int, int, str | None]  # equality: the build metadata is not part of it
    release: tuple[int, int, int]
    major: int
    minor_line: tuple[int, int]  # major.minor
    parsed: Any  # the semver.Version, for the precedence of pre-releases


def parse_version(text: str) -> Version | None:
    """`text` read as flagd's sem_ver reads it, or None: an optional leading v or V, then a semantic
    version (semver.org) in which a missing .MINOR or .PATCH counts as 0; build metadata is ignored."""
    if text[:1] in ("v", "V"):
        text = text[1:]
    try:
        version = _semver_version().parse(text, optional_minor_and_patch=True)
    except (ValueError, TypeError):  # not a version, or a number with too many digits for int()
        return None
    release = (version.major, version.minor, version.patch)
    return Version((*release, version.prerelease), release, version.major, release[:2], version)


# A user's version is read once per distinct text: an application reports a handful of versions, and
# reading one costs far more than the comparison. Longer texts are no real versions: read each time.
_MAX_CACHED_VERSION_TEXT = 64
_cached_version = functools.lru_cache(maxsize=4096)(parse_version)


def _order(a: Version, b: Version) -> int:
    """Negative, zero or positive as `a` is lower than, equal to or greater than `b` (semver.org)."""
    if a.release != b.release:
        return -1 if a.release < b.release else 1
    if a.identity == b.identity:
        return 0
    result: int = a.parsed.compare(b.parsed)  # pre-release precedence: the library's rule
    return result


def _versions(values: Sequence[str]) -> tuple[Version, ...]:
    versions = [(value, parse_version(value)) for value in values]
    bad = [repr(value) for value, version in versions if version is None]
    if bad:
        raise InvalidValues(
            f"{'is not a semantic version' if len(bad) == 1 else 'are not semantic versions'}: "
            f"{', '.join(bad)} (expected MAJOR.MINOR.PATCH, optionally with -prerelease and +build)"
        )
    return tuple(version for _, version in versions if version is not None)


def _lowest(values: Sequence[str], _: ValueSets) -> Version:
    return min(_versions(values), key=functools.cmp_to_key(_order))


def _highest(values: Sequence[str], _: ValueSets) -> Version:
    return max(_versions(values), key=functools.cmp_to_key(_order))


def _identities(values: Sequence[str], _: ValueSets) -> frozenset[tuple[int, int, int, str | None]]:
    return frozenset(version.identity for version in _versions(values))


def _majors(values: Sequence[str], _: ValueSets) -> frozenset[int]:
    return frozenset(version.major for version in _versions(values))


def _minor_lines(values: Sequence[str], _: ValueSets) -> frozenset[tuple[int, int]]:
    return frozenset(version.minor_line for version in _versions(values))


def _version_test(prop: str, holds: Callable[[Version, Any], bool], prepared: Any) -> Predicate:
    def test(ctx: Context) -> bool:
        value = ctx.get(prop)
        if type(value) is not str:
            return False
        version = _cached_version(value) if len(value) <= _MAX_CACHED_VERSION_TEXT else parse_version(value)
        return version is not None and holds(version, prepared)

    return test


# ---------------------------------------------------------------- inline templates (fast path)


class Emitter(Protocol):
    """What a template writes with (fastpath._Source): locals for context properties and values."""

    def prop(self, name: str) -> str:
        """The local holding `ctx.get(name)`."""
        ...

    def value(self, value: Any) -> str:
        """The local holding `value` (never written into the source text itself)."""
        ...

    def segments(self, constraint: Constraint, every: bool) -> str | None:
        """The segments of `constraint` written out (in every / in none), or None past the budget."""
        ...


# A Python expression over the emitter's locals equal to `constraint.test(ctx)`, or None when this
# constraint takes the general form (a call to its compiled predicate).
Inline = Callable[[Emitter, Constraint], "str | None"]


def _negated(inline: Inline) -> Inline:
    def template(emit: Emitter, constraint: Constraint) -> str | None:
        text = inline(emit, constraint)
        return None if text is None else f"not {text}"

    return template


def _inline_one_of(emit: Emitter, constraint: Constraint) -> str | None:
    scalars: Scalars = constraint.arguments
    if scalars.numbers or scalars.booleans:
        return None
    # Strings only: a bool or number can match nothing (the predicate's other sets are empty).
    v = emit.prop(constraint.property)
    if len(scalars.strings) == 1:  # one value, the usual case: == on two str is cheaper than `in`
        (only,) = scalars.strings
        return f"(type({v}) is str and {v} == {emit.value(only)})"
    return f"(type({v}) is str and {v} in {emit.value(scalars.strings)})"


def _inline_comparison(symbol: str) -> Inline:
    def template(emit: Emitter, constraint: Constraint) -> str:
        v, limit = emit.prop(constraint.property), emit.value(constraint.arguments)
        return f"(type({v}) in {NUMBERS_HELPER} and {v} {symbol} {limit})"

    return template


def _inline_exists(relation: str) -> Inline:
    return lambda emit, constraint: f"({emit.prop(constraint.property)} {relation} None)"


def _inline_affix(method: str) -> Inline:
    def template(emit: Emitter, constraint: Constraint) -> str:
        v, affixes = emit.prop(constraint.property), emit.value(constraint.arguments)
        return f"(type({v}) is str and {v}.{method}({affixes}))"

    return template


def _inline_contains(emit: Emitter, constraint: Constraint) -> str | None:
    if len(constraint.arguments) != 1:
        return None
    v, needle = emit.prop(constraint.property), emit.value(constraint.arguments[0])
    return f"(type({v}) is str and {needle} in {v})"


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class ValueKind:
    """What a constraint's values must each be, checked when a flag set is loaded."""

    name: str
    description: str  # for the problem: "<OPERATION> values must each be <description>"
    accepts: Callable[[Any], bool] | None  # None: the operation takes no values
    hint: str = ""  # appended to the problem


def is_finite_number(value: Any) -> bool:
    # Integers are always finite; math.isfinite would overflow on those beyond the float range.
    return is_number(value) and (type(value) is int or math.isfinite(value))


def is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool) or is_finite_number(value)


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


NO_VALUES = ValueKind("no values", "", None)
SCALARS = ValueKind("scalars", "a string, number or boolean", is_scalar)
NUMBERS = ValueKind("numbers", "a number", is_finite_number)
STRINGS = ValueKind("strings", "a string", _is_text)
PATTERNS = ValueKind("patterns", "a string", _is_text)  # RE2 syntax, checked by prepare
NETWORKS = ValueKind("networks", "a string", _is_text)  # IP addresses or CIDRs, checked by prepare
SEGMENT_KEYS = ValueKind("segment keys", "a string", _is_text)  # keys of the document's segments
VERSIONS = ValueKind(
    "versions", "a string", _is_text, hint=' (quote versions: YAML reads 1.2 as a number, "1.2" as text)'
)

Builder = Callable[[str, Any, tuple[Segment, ...]], Predicate]
Prepare = Callable[[Sequence[Any], "ValueSets"], Any]


def _as_tuple(values: Sequence[Any], _: ValueSets) -> tuple[Any, ...]:
    return tuple(values)


@dataclass(frozen=True)
class OperatorSpec:
    name: str
    number: int  # its value in flag.proto's Operation enum
    values: ValueKind
    _: KW_ONLY
    # The typing rule: the user value types the test is about (exact types; None: any value), and
    # what a missing, null or other-typed value gives (None: the property is not read).
    reads: tuple[type, ...] | None
    on_mismatch: bool | None
    build: Builder  # (property, prepared values, referenced segments) -> predicate
    prepare: Prepare = _as_tuple  # the values as the predicate takes them; raises InvalidValues
    inline: Inline | None = None
    complement: str | None = None  # the operation this one is the exact negation of

    @property
    def tests_segments(self) -> bool:
        return self.values is SEGMENT_KEYS


def _build_negated(build: Builder) -> Builder:
    return lambda prop, arguments, segments: _negate(build(prop, arguments, segments))


def _build_compare(operation: str) -> Builder:
    return lambda prop, threshold, _: _compare(prop, operation, threshold)


def _build_regex(prop: str, regex: Any, _: tuple[Segment, ...]) -> Predicate:
    return _string_test(prop, _searcher(regex.search))


_STR = (str,)
_SCALAR_TYPES = (str, int, float, bool)
_starts_with = _inline_affix("startswith")
_ends_with = _inline_affix("endswith")


def _maximum(values: Sequence[Any], _: ValueSets) -> Any:  # "against every value": one threshold
    return max(values)


def _minimum(values: Sequence[Any], _: ValueSets) -> Any:
    return min(values)


def _regex(values: Sequence[str], _: ValueSets) -> Any:
    return compile_regex(values)


def _networks(values: Sequence[str], _: ValueSets) -> Any:
    return parse_networks(values)


def _build_one_of(prop: str, scalars: Scalars, _: tuple[Segment, ...]) -> Predicate:
    return _one_of(prop, scalars)


def _build_not_one_of(prop: str, scalars: Scalars, _: tuple[Segment, ...]) -> Predicate:
    return _one_of(prop, scalars, negate=True)


def _build_contains(prop: str, needles: tuple[str, ...], _: tuple[Segment, ...]) -> Predicate:
    return _contains_test(prop, needles)


def _build_starts_with(prop: str, affixes: tuple[str, ...], _: tuple[Segment, ...]) -> Predicate:
    return _affix_test(prop, affixes, suffix=False)


def _build_ends_with(prop: str, affixes: tuple[str, ...], _: tuple[Segment, ...]) -> Predicate:
    return _affix_test(prop, affixes, suffix=True)


def _build_exists(prop: str, _: Any, __: tuple[Segment, ...]) -> Predicate:
    return _exists(prop)


def _build_in_segments(_: str, __: Any, segments: tuple[Segment, ...]) -> Predicate:
    return _in_segments(segments)


def _build_in_no_segment(_: str, __: Any, segments: tuple[Segment, ...]) -> Predicate:
    return _in_no_segment(segments)


def _build_in_network(prop: str, networks: Any, _: tuple[Segment, ...]) -> Predicate:
    return _in_network(prop, networks)


def _build_version(holds: Callable[[Version, Any], bool]) -> Builder:
    """A version test: `holds(user version, prepared values)` for a user value that is a version."""
    return lambda prop, prepared, _: _version_test(prop, holds, prepared)


def _in_segments_inline(emit: Emitter, constraint: Constraint) -> str | None:
    return emit.segments(constraint, every=True)


def _in_no_segment_inline(emit: Emitter, constraint: Constraint) -> str | None:
    return emit.segments(constraint, every=False)


SPECS: tuple[OperatorSpec, ...] = (
    # flaggio's 19 operations.
    OperatorSpec(
        "ONE_OF", 1, SCALARS, reads=_SCALAR_TYPES, on_mismatch=False,
        prepare=_scalars, build=_build_one_of, inline=_inline_one_of,
    ),
    OperatorSpec(
        "NOT_ONE_OF", 2, SCALARS, reads=_SCALAR_TYPES, on_mismatch=True, complement="ONE_OF",
        prepare=_scalars, build=_build_not_one_of, inline=_negated(_inline_one_of),
    ),
    OperatorSpec(
        "GREATER", 3, NUMBERS, reads=NUMBER_TYPES, on_mismatch=False,
        prepare=_maximum, build=_build_compare("GREATER"), inline=_inline_comparison(">"),
    ),
    OperatorSpec(
        "GREATER_OR_EQUAL", 4, NUMBERS, reads=NUMBER_TYPES, on_mismatch=False,
        prepare=_maximum, build=_build_compare("GREATER_OR_EQUAL"), inline=_inline_comparison(">="),
    ),
    OperatorSpec(
        "LOWER", 5, NUMBERS, reads=NUMBER_TYPES, on_mismatch=False,
        prepare=_minimum, build=_build_compare("LOWER"), inline=_inline_comparison("<"),
    ),
    OperatorSpec(
        "LOWER_OR_EQUAL", 6, NUMBERS, reads=NUMBER_TYPES, on_mismatch=False,
        prepare=_minimum, build=_build_compare("LOWER_OR_EQUAL"), inline=_inline_comparison("<="),
    ),
    OperatorSpec(
        "EXISTS", 7, NO_VALUES, reads=None, on_mismatch=False,
        build=_build_exists, inline=_inline_exists("is not"),
    ),
    OperatorSpec(
        "DOESNT_EXIST", 8, NO_VALUES, reads=None, on_mismatch=True, complement="EXISTS",
        build=_build_negated(_build_exists), inline=_inline_exists("is"),
    ),
    OperatorSpec(
        "CONTAINS", 9, STRINGS, reads=_STR, on_mismatch=False,
        build=_build_contains, inline=_inline_contains,
    ),
    OperatorSpec(
        "DOESNT_CONTAIN", 10, STRINGS, reads=_STR, on_mismatch=True, complement="CONTAINS",
        build=_build_negated(_build_contains), inline=_negated(_inline_contains),
    ),
    OperatorSpec(
        "STARTS_WITH", 11, STRINGS, reads=_STR, on_mismatch=False,
        build=_build_starts_with, inline=_starts_with,
    ),
    OperatorSpec(
        "DOESNT_START_WITH", 12, STRINGS, reads=_STR, on_mismatch=True, complement="STARTS_WITH",
        build=_build_negated(_build_starts_with), inline=_negated(_starts_with),
    ),
    OperatorSpec(
        "ENDS_WITH", 13, STRINGS, reads=_STR, on_mismatch=False,
        build=_build_ends_with, inline=_ends_with,
    ),
    OperatorSpec(
        "DOESNT_END_WITH", 14, STRINGS, reads=_STR, on_mismatch=True, complement="ENDS_WITH",
        build=_build_negated(_build_ends_with), inline=_negated(_ends_with),
    ),
    OperatorSpec(
        "MATCHES_REGEX", 15, PATTERNS, reads=_STR, on_mismatch=False,
        prepare=_regex, build=_build_regex,
    ),
    OperatorSpec(
        "DOESNT_MATCH_REGEX", 16, PATTERNS, reads=_STR, on_mismatch=True, complement="MATCHES_REGEX",
        prepare=_regex, build=_build_negated(_build_regex),
    ),
    OperatorSpec(
        "IS_IN_SEGMENT", 17, SEGMENT_KEYS, reads=None, on_mismatch=None,
        build=_build_in_segments, inline=_in_segments_inline,
    ),
    OperatorSpec(
        "ISNT_IN_SEGMENT", 18, SEGMENT_KEYS, reads=None, on_mismatch=None,
        build=_build_in_no_segment, inline=_in_no_segment_inline,
    ),
    OperatorSpec(
        "IS_IN_NETWORK", 19, NETWORKS, reads=_STR, on_mismatch=False,
        prepare=_networks, build=_build_in_network,
    ),
    # flagd's sem_ver: =, !=, <, <=, >, >=, ^ (same major), ~ (same major.minor). A user value that
    # is not a version string makes each of them false, SEMVER_NOT_EQUAL too (as flagd's !=).
    OperatorSpec(
        "SEMVER_EQUAL", 20, VERSIONS, reads=_STR, on_mismatch=False,
        prepare=_identities, build=_build_version(lambda version, equal: version.identity in equal),
    ),
    OperatorSpec(
        "SEMVER_NOT_EQUAL", 21, VERSIONS, reads=_STR, on_mismatch=False,
        prepare=_identities, build=_build_version(lambda version, equal: version.identity not in equal),
    ),
    OperatorSpec(
        "SEMVER_LOWER", 22, VERSIONS, reads=_STR, on_mismatch=False,
        prepare=_lowest, build=_build_version(lambda version, limit: _order(version, limit) < 0),
    ),
    OperatorSpec(
        "SEMVER_LOWER_OR_EQUAL", 23, VERSIONS, reads=_STR, on_mismatch=False,
        prepare=_lowest, build=_build_version(lambda version, limit: _order(version, limit) <= 0),
    ),
    OperatorSpec(
        "SEMVER_GREATER", 24, VERSIONS, reads=_STR, on_mismatch=False,
        prepare=_highest, build=_build_version(lambda version, limit: _order(version, limit) > 0),
    ),
    OperatorSpec(
        "SEMVER_GREATER_OR_EQUAL", 25, VERSIONS, reads=_STR, on_mismatch=False,
        prepare=_highest, build=_build_version(lambda version, limit: _order(version, limit) >= 0),
    ),
    OperatorSpec(
        "SEMVER_SAME_MAJOR", 26, VERSIONS, reads=_STR, on_mismatch=False,
        prepare=_majors, build=_build_version(lambda version, majors: version.major in majors),
    ),
    OperatorSpec(
        "SEMVER_SAME_MINOR", 27, VERSIONS, reads=_STR, on_mismatch=False,
        prepare=_minor_lines, build=_build_version(lambda version, lines: version.minor_line in lines),
    ),
)  # fmt: skip
OPERATORS: dict[str, OperatorSpec] = {spec.name: spec for spec in SPECS}
OPERATIONS = tuple(OPERATORS)
SEGMENT_OPERATIONS = frozenset(spec.name for spec in SPECS if spec.tests_segments)
_UNPREPARED: Any = object()


def compile_constraint(
    prop: str,
    operation: str,
    values: Sequence[Any],
    segments: Sequence[Segment] = (),
    sets: ValueSets | None = None,
    *,
    arguments: Any = _UNPREPARED,
) -> Constraint:
    """Compile one constraint whose values have passed the compiler's validation (spec.values);
    InvalidValues is raised for what only preparing them finds (regex, network, version syntax).
    `sets`: the flag set's ValueSets, to share equal value sets; `arguments`: the values as
    spec.prepare already prepared them (the compiler prepares each distinct list once)."""
    spec = OPERATORS.get(operation)
    if spec is None:
        raise InvalidValues(f"unknown operation {operation!r}")
    if arguments is _UNPREPARED:
        arguments = spec.prepare(values, sets or ValueSets())
    referenced = tuple(segments)
    return Constraint(
        prop, operation, tuple(values), spec.build(prop, arguments, referenced), referenced, arguments
    )

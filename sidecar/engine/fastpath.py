"""A flag's rules as one generated Python function: the evaluator's fast path.

The evaluator's loop calls one compiled predicate per constraint, and a Python call costs about as
much as the test it makes: most of a rule-heavy flag's time went into calls (BENCHMARKS.md).
Here the rules of a flag become one function in which the common tests are written out inline
(`type(p0) is str and p0 in c1`: each operation's template in operators.OPERATORS), so evaluating a
flag is one call, plus one per constraint that has no inline form (regex, network, versions, several
CONTAINS values), which calls its compiled predicate as
the loop does. Each property the inline tests use is read from the context once, at the top;
segments are written out inline too (up to MAX_INLINE_SEGMENT_CONSTRAINTS constraints per flag),
and a split hashes a string bucket value inline. Same answers, same objects, about a third of the
loop's time.

Only the *shape* of a flag (its operations and rule layout) goes into the source text; every
value (property names, value sets, thresholds, answers) is a default of the function's parameters
c0, c1, ... So the source never contains user text, and flags of the same shape share one code
object: it is compiled once, and each flag gets a function of that code with its own defaults (one
tuple: a closure would hold each value in a cell of its own, which at 10,000 flags was the largest
part of a compiled flag; BENCHMARKS.md).

The traced path (debug=True) and the interpreted loop are unchanged; a test checks this path
against them for every operator.
"""

from __future__ import annotations

import threading
import types
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import mmh3

from .bucketing import bucket, bucket_text
from .model import BUCKET_COUNT, Constraint, Context, Evaluation, FlagRule, Segment
from .operators import NUMBER_TYPES, NUMBERS_HELPER, OPERATORS

FastPath = Callable[[Context], Evaluation]

_HELPERS: dict[str, Any] = {
    NUMBERS_HELPER: NUMBER_TYPES,
    "_bucket": bucket,
    "_bucket_text": bucket_text,
    "_bisect_right": bisect_right,
    "_hash": mmh3.hash,
}
# Source text of a shape -> (its code, the globals it runs with).
_shapes: dict[str, tuple[types.CodeType, dict[str, Any]]] = {}
_shapes_lock = threading.Lock()
MAX_CACHED_SHAPES = 10_000


# Segment constraints written out inline per flag, at most: past it a segment test is one call to its
# compiled predicate, so a flag over deeply nested segments cannot grow a huge function.
MAX_INLINE_SEGMENT_CONSTRAINTS = 64


class _Source:
    """Collects the values the generated lines refer to (as c0, c1, ...) and the context properties
    they read: each distinct property is read once, into p0, p1, ..., at the top of the function."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        # (position in values, rule index, what): the values that are the flag's own (_own_value).
        self.own: list[tuple[int, int, str]] = []
        self.properties: dict[str, str] = {}
        self.reads: list[str] = []
        self.segment_budget = MAX_INLINE_SEGMENT_CONSTRAINTS

    def value(self, value: Any) -> str:
        self.values.append(value)
        return f"c{len(self.values) - 1}"

    def flag_value(self, value: Any, rule_index: int, what: str) -> str:
        """A value of this flag's own (its key, its answers), not of the rules' shared parts."""
        self.own.append((len(self.values), rule_index, what))
        return self.value(value)

    def prop(self, name: str) -> str:
        """The local holding `ctx.get(name)`. Which constraints share a property is part of the
        shape (p-numbers); the name itself is a value."""
        local = self.properties.get(name)
        if local is None:
            local = self.properties[name] = f"p{len(self.properties)}"
            self.reads.append(f"    {local} = ctx.get({self.value(name)})")
        return local

    def segments(self, constraint: Constraint, every: bool) -> str | None:
        """The constraint's segments written out while the flag's budget lasts (operators.Emitter):
        in every one of them (operators._in_segments) or in none (operators._in_no_segment)."""
        if not constraint.segments:
            return None
        size = sum(_segment_size(segment) for segment in constraint.segments)
        if size > self.segment_budget:
            return None
        self.segment_budget -= size
        members = [_segment_condition(segment, self) for segment in constraint.segments]
        return f"({' and '.join(members)})" if every else f"not ({' or '.join(members)})"


def _condition(constraint: Constraint, source: _Source) -> str:
    """A Python expression over the property locals equal to `constraint.test(context)`: the
    operation's inline template (operators.OPERATORS), else a call to the compiled predicate."""
    inline = OPERATORS[constraint.operation].inline
    text = None if inline is None else inline(source, constraint)
    return f"{source.value(constraint.test)}(ctx)" if text is None else text


def _segment_size(segment: Segment) -> int:
    """How many constraints inlining `segment` writes out at its own level (a nested segment is
    charged to the budget when its own constraint is written)."""
    return sum(len(rule.constraints) for rule in segment.rules)


def _segment_condition(segment: Segment, source: _Source) -> str:
    """Segment.contains written out: any rule whose constraints all hold."""
    rules = [
        " and ".join(_condition(constraint, source) for constraint in rule.constraints) or "True"
        for rule in segment.rules
    ]
    return f"({' or '.join(f'({rule})' for rule in rules)})" if rules else "False"


def _rule_lines(index: int, rule: FlagRule, flag_key: str, source: _Source) -> list[str]:
    tests = [_condition(constraint, source) for constraint in rule.constraints]
    condition = " and ".join(tests) if tests else "True"
    if rule.single is not None:
        return [f"    if {condition}:", f"        return {source.flag_value(rule.single, index, 'single')}"]
    # As the evaluator: a split on a missing (or unbucketable) attribute does not match. A string
    # (the usual bucket value) is hashed inline, as bucketing.bucket does: murmur3 over the UTF-8 of
    # "<flag key>:<value>". Text that is not valid UTF-8 takes bucket()'s own path.
    v, key = source.prop(rule.bucket_by), source.flag_value(flag_key, index, "key")
    prefix = source.flag_value(_prefix(flag_key), index, "prefix")
    bounds = source.flag_value(rule.bounds, index, "bounds")
    answers = source.flag_value(rule.split_answers, index, "answers")
    return [
        f"    if {condition}:",
        f"        if type({v}) is str:",
        "            try:",
        f"                return {answers}[_bisect_right({bounds}, (_hash({prefix} + {v}.encode(), 0, False)"
        f" * {BUCKET_COUNT}) >> 32)]",
        "            except UnicodeEncodeError:",
        "                pass",
        f"        text = _bucket_text({v})",
        "        if text is not None:",
        f"            return {answers}[_bisect_right({bounds}, _bucket({key}, text))]",
    ]


def _prefix(flag_key: str) -> bytes:
    return f"{flag_key}:".encode("utf-8", "surrogatepass")


def _own_value(what: str, rule: FlagRule | None, flag_key: str, fallthrough: Evaluation) -> Any:
    """The value _rule_lines or build_fast_path gave flag_value as `what`, for another flag."""
    if what == "fallthrough":
        return fallthrough
    if what == "key":
        return flag_key
    if what == "prefix":
        return _prefix(flag_key)
    assert rule is not None
    if what == "single":
        return rule.single
    if what == "bounds":
        return rule.bounds
    return rule.split_answers


@dataclass(frozen=True, slots=True)
class _Plan:
    """A flag's function, ready for another flag of the same rules: the same code, and the values
    but the flag's own (its key and answers), which go in at `own`'s positions."""

    code: types.CodeType
    namespace: dict[str, Any]
    values: tuple[Any, ...]
    own: tuple[tuple[int, int, str], ...]


# A flag's rules by what shapes its function: their constraints (one tuple object per distinct list:
# compiler._Compiler.tuples, which holds them while the plans live), answer kind and bucketing.
PlanKey = tuple[tuple[int, bool, str, int], ...]
Plans = dict[PlanKey, _Plan]


def build_fast_path(
    flag_key: str, rules: Sequence[FlagRule], fallthrough: Evaluation, plans: Plans | None = None
) -> FastPath:
    """One function answering as the evaluator's loop over `rules` does for an enabled flag (its
    inline tests use the values the predicates were built with: Constraint.arguments).

    With `plans` (one compile's, whose constraint tuples outlive it), a flag whose rules are the
    same as an earlier one's takes that flag's function and values, with its own put in: flag files
    repeat their rules, and writing the text out again was most of compiling such a flag."""
    plan_key: PlanKey | None = None
    if plans is not None:
        plan_key = tuple(
            (id(rule.constraints), rule.single is None, rule.bucket_by, len(rule.bounds)) for rule in rules
        )
        plan = plans.get(plan_key)
        if plan is not None:
            values = list(plan.values)
            for position, index, what in plan.own:
                values[position] = _own_value(
                    what, rules[index] if index >= 0 else None, flag_key, fallthrough
                )
            function: FastPath = types.FunctionType(plan.code, plan.namespace, "fast", tuple(values))
            return function
    source = _Source()
    rule_lines = [
        line for index, rule in enumerate(rules) for line in _rule_lines(index, rule, flag_key, source)
    ]
    rule_lines.append(f"    return {source.flag_value(fallthrough, -1, 'fallthrough')}")
    parameters = "".join(f", c{i}=None" for i in range(len(source.values)))
    # ctx.get per read, not a bound `get = ctx.get`: making the bound method costs more than the
    # method lookups it saves, even at 10 properties (bench/notes.md, "What is left per call").
    text = "\n".join([f"def fast(ctx{parameters}):", *source.reads, *rule_lines])
    shape = _shapes.get(text)
    if shape is None:
        namespace = dict(_HELPERS)
        exec(compile(text, "<sidecar fast path>", "exec"), namespace)  # our own text, no user input
        shape = (namespace.pop("fast").__code__, namespace)
        with _shapes_lock:
            if len(_shapes) >= MAX_CACHED_SHAPES:
                _shapes.clear()
            _shapes[text] = shape
    code, namespace = shape
    if plans is not None and plan_key is not None:
        plans[plan_key] = _Plan(code, namespace, tuple(source.values), tuple(source.own))
    function = types.FunctionType(code, namespace, "fast", tuple(source.values))
    return function


Answer = TypeVar("Answer")


def answering(fast: FastPath, translate: Callable[[Evaluation], Answer]) -> Callable[[Context], Answer]:
    """`fast` returning `translate(its answer)`, with nothing added per call: the same code over
    the same values, each answer among them translated once here. Every answer the generated
    function returns is one of its parameter defaults, alone (a single or fallthrough answer) or in
    a tuple (a split's answers); an embedding client (clients/python) answers its own objects so."""
    translated: dict[int, Answer] = {}  # an answer met twice is translated once
    defaults: list[Any] = []
    for value in fast.__defaults__ or ():
        if type(value) is Evaluation:
            value = translated.setdefault(id(value), translate(value))
        elif type(value) is tuple and value and all(type(item) is Evaluation for item in value):
            value = tuple(translated.setdefault(id(item), translate(item)) for item in value)
        defaults.append(value)
    function: Callable[[Context], Answer] = types.FunctionType(
        fast.__code__, fast.__globals__, fast.__name__, tuple(defaults)
    )
    return function

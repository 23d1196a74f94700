"""Evaluate a compiled flag for a context (DESIGN.md, "Evaluation semantics").

The fast path allocates nothing but the bucket key of a split: every answer is a ready-made
Evaluation from the compiler. `debug=True` takes the traced path, which runs the same compiled
predicates and records every rule, constraint, segment and bucket on the way.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .bucketing import bucket, bucket_text
from .model import (
    RESERVED_PREFIX,
    USER_ID_PROPERTY,
    Constraint,
    Context,
    Evaluation,
    Flag,
    TraceStep,
)


class InvalidContextError(ValueError):
    """A caller's context cannot be evaluated (reserved key, nested value...)."""


# A tuple, the usual type first: `in` finds str by identity in one step, where a frozenset hashes.
_NOT_FLOAT_TYPES = (str, int, bool, type(None))
_SCALAR_TYPES = frozenset({*_NOT_FLOAT_TYPES, float})  # one list of the context's value types
_isfinite = math.isfinite


def build_context(user_id: str, attributes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The engine's view of a user: the attributes plus "$userId". Raises InvalidContextError."""
    context = dict(attributes) if attributes else {}
    check_context(context)
    if user_id:
        context[USER_ID_PROPERTY] = user_id
    return context


def check_context(
    attributes: dict[str, Any],
    _type: Callable[[object], type] = type,
    _plain: tuple[type, ...] = _NOT_FLOAT_TYPES,
    _str: type = str,
) -> None:
    """Raise InvalidContextError unless `attributes` may be a context (build_context's check, for a
    caller that evaluates over its own dict when the flag reads no reserved key: reads_reserved).
    The other parameters are not for callers: they make the loop's names local (positional, as
    keyword-only ones would keep CPython 3.11 from specializing the call)."""
    for key, value in attributes.items():
        # As few tests as possible for the usual attribute (this is most of an end-to-end
        # evaluation of a simple flag): keys starting with "$" sort in ["$", "%") and "" below
        # them, so a key from "%" up needs one comparison. Floats and the rest: _check_attribute.
        if _type(value) not in _plain or _type(key) is not _str or (key < "%" and (key >= "$" or not key)):
            _check_attribute(key, value)


def reads_reserved(flag: Flag) -> bool:
    """Whether evaluating `flag` may read a key of build_context's own ("$userId"): a constraint's
    property or a split's bucket attribute, in its rules or the segments they test."""
    if not flag.enabled:
        return False
    seen: set[int] = set()

    def constraints_read(constraints: Iterable[Constraint]) -> bool:
        for constraint in constraints:
            if constraint.property.startswith(RESERVED_PREFIX):
                return True
            for segment in constraint.segments:
                if id(segment) not in seen:
                    seen.add(id(segment))
                    if any(constraints_read(rule.constraints) for rule in segment.rules):
                        return True
        return False

    return any(
        (rule.single is None and rule.bucket_by.startswith(RESERVED_PREFIX))
        or constraints_read(rule.constraints)
        for rule in flag.rules
    )


def _check_attribute(key: object, value: object) -> None:
    kind = type(value)
    if kind not in _SCALAR_TYPES or type(key) is not str or not key or key[0] == "$":
        raise InvalidContextError(_context_problem(key, value))
    if kind is float and not _isfinite(value):  # type: ignore[arg-type]
        raise InvalidContextError(f"context key {key!r} holds {value}, which is not a finite number")


def _context_problem(key: object, value: object) -> str:
    if not isinstance(key, str) or not key:
        return "context keys must be non-empty strings"
    if key.startswith(RESERVED_PREFIX):
        return f"context key {key!r} is reserved: keys starting with '$' are set by the sidecar"
    if isinstance(value, str | bool | int | float):  # a subclass, e.g. an IntEnum
        return f"context key {key!r} holds a {type(value).__name__}; pass a plain string, number or boolean"
    return (
        f"context key {key!r} holds a {type(value).__name__}; only strings, numbers, booleans and null "
        "can be targeted"
    )


def evaluate(flag: Flag, context: Context, debug: bool = False) -> Evaluation:
    """The variant `flag` serves to `context`. Never raises for any context."""
    if debug:
        return _evaluate_traced(flag, context)
    fast = flag.fast  # only an enabled flag with rules has one
    if fast is not None:
        return fast(context)
    if not flag.enabled or not flag.rules:
        return flag.default_answer
    return evaluate_rules(flag, context)


# For evaluating a whole flag set per call (EvaluateAll): per flag, the function that computes its
# answer, or None when the answer is fixed (a disabled flag, or one without rules: no call at all).
PlanStep = tuple[Callable[[Context], Evaluation] | None, Evaluation]


def evaluation_plan(flags: Iterable[Flag]) -> tuple[PlanStep, ...]:
    """Steps for `evaluate_plan`, in the order of `flags`; built once per flag set."""
    steps: list[PlanStep] = []
    for flag in flags:
        if not flag.enabled or not flag.rules:
            steps.append((None, flag.default_answer))
        else:
            compute = flag.fast or functools.partial(evaluate_rules, flag)
            steps.append((compute, flag.default_answer))
    return tuple(steps)


def evaluate_plan(plan: Sequence[PlanStep], context: Context) -> list[Evaluation]:
    """`[evaluate(flag, context) for flag in flags]` for the flags the plan was built from."""
    return [fixed if compute is None else compute(context) for compute, fixed in plan]


def evaluate_rules(flag: Flag, context: Context) -> Evaluation:
    """The answer of an enabled flag, rule by rule (what `flag.fast` does in one generated function)."""
    for rule in flag.rules:
        for constraint in rule.constraints:
            if not constraint.test(context):
                break
        else:
            if rule.single is not None:
                return rule.single
            text = bucket_text(context.get(rule.bucket_by))
            if text is None:
                continue  # no bucket attribute: the rule does not match
            return rule.split_answers[bisect_right(rule.bounds, bucket(flag.key, text))]
    return flag.default_answer


# ---------------------------------------------------------------- traced path


def _evaluate_traced(flag: Flag, context: Context) -> Evaluation:
    steps: list[TraceStep] = []
    answer = _traced_answer(flag, context, steps)
    return dataclasses.replace(answer, stack_trace=tuple(steps))


def _traced_answer(flag: Flag, context: Context, steps: list[TraceStep]) -> Evaluation:
    if not flag.enabled:
        steps.append(
            TraceStep(
                "flag",
                flag.key,
                False,
                f"flag is disabled (version {flag.version})",
                answer=flag.default_answer.value,
            )
        )
        steps.append(_default_step("defaultVariantWhenOff", flag.default_answer))
        return flag.default_answer
    steps.append(
        TraceStep(
            "flag", flag.key, True, f"flag is enabled (version {flag.version}) with {len(flag.rules)} rule(s)"
        )
    )
    for rule in flag.rules:
        rule_step = len(steps)
        steps.append(TraceStep("rule", rule.id, False, "", depth=1))  # filled in below
        matched = _trace_constraints(rule.constraints, context, steps, f"rules[{rule.index}]", depth=2)
        if not matched:
            steps[rule_step] = TraceStep(
                "rule", rule.id, False, f"rule {rule.index} did not match: a constraint failed", depth=1
            )
            continue
        if rule.single is not None:
            steps[rule_step] = TraceStep(
                "rule",
                rule.id,
                True,
                f"rule {rule.index} matched: serves {rule.single.variant!r}",
                depth=1,
                answer=rule.single.value,
            )
            return rule.single
        value = context.get(rule.bucket_by)
        text = bucket_text(value)
        if text is None:
            why = "is missing" if value is None else f"is a {type(value).__name__}, which cannot be bucketed"
            steps[rule_step] = TraceStep(
                "rule",
                rule.id,
                False,
                f"rule {rule.index} constraints hold, but bucket attribute {rule.bucket_by!r} {why}",
                depth=1,
            )
            continue
        position = bucket(flag.key, text)
        chosen = rule.split_answers[bisect_right(rule.bounds, position)]
        steps[rule_step] = TraceStep("rule", rule.id, True, f"rule {rule.index} matched: split", depth=1)
        ranges = ", ".join(f"{d.variant.key} [{d.start}, {d.end})" for d in rule.distributions)
        steps.append(
            TraceStep(
                "distribution",
                rule.id,
                True,
                f"murmur3({flag.key}:{text}) -> bucket {position} of 10000; ranges {ranges}; "
                f"serves {chosen.variant!r}",
                depth=1,
                answer=chosen.value,
                bucket=position,
            )
        )
        return chosen
    steps.append(
        _default_step(
            "defaultVariantWhenOn",
            flag.default_answer,
            "no rule matched" if flag.rules else "flag has no rules",
        )
    )
    return flag.default_answer


def _default_step(which: str, answer: Evaluation, why: str = "") -> TraceStep:
    prefix = f"{why}: " if why else ""
    if not answer.has_value:
        return TraceStep(
            "default",
            which,
            False,
            f"{prefix}no {which} is set: no value and no variant, the caller's code default applies",
        )
    return TraceStep(
        "default", which, True, f"{prefix}serves {which} {answer.variant!r}", answer=answer.value
    )


def _trace_constraints(
    constraints: tuple[Constraint, ...], context: Context, steps: list[TraceStep], where: str, depth: int
) -> bool:
    """Record every constraint (and nested segment) of a rule; True when all hold.

    Unlike the fast path this does not stop at the first failure, so a trace shows every outcome.
    """
    all_hold = True
    for index, constraint in enumerate(constraints):
        held = constraint.test(context)
        all_hold = all_hold and held
        steps.append(
            TraceStep(
                "constraint",
                f"{where}.constraints[{index}]",
                held,
                _describe(constraint, context, held),
                depth=depth,
            )
        )
        for segment in constraint.segments:
            inside = segment.contains(context)
            steps.append(
                TraceStep(
                    "segment",
                    segment.key,
                    inside,
                    f"user is {'in' if inside else 'not in'} segment {segment.key!r}",
                    depth=depth + 1,
                )
            )
            for rule_index, rule in enumerate(segment.rules):
                _trace_constraints(
                    rule.constraints, context, steps, f"segment {segment.key}.rules[{rule_index}]", depth + 2
                )
    return all_hold


def _describe(constraint: Constraint, context: Context, held: bool) -> str:
    values = ", ".join(repr(v) for v in constraint.values)
    outcome = "holds" if held else "does not hold"
    if constraint.segments:
        return f"{constraint.operation} [{values}] {outcome}"
    prop = constraint.property
    if prop not in context or context[prop] is None:
        actual = f"{prop} is missing"
    else:
        actual = f"{prop} = {_show(context[prop])}"
    listed = f" [{values}]" if values else ""
    return f"{actual}; {constraint.operation}{listed} {outcome}"


def _show(value: Any) -> str:
    """repr() for a trace, which must not fail whatever the caller put in the context."""
    try:
        return repr(value)
    except (ValueError, RecursionError):  # an int too long to print, or absurdly deep nesting
        return f"<{type(value).__name__} too large to show>"

"""The compiled, immutable model the evaluator runs on.

Everything here is built once by `compiler.compile_flag_set` when a flag set is loaded, from the
definitions (definitions.py) read from its document: regexes, networks and value sets are compiled,
segment references resolved, distributions turned into bucket ranges, and every answer a flag can
give without a debug trace is a ready-made `Evaluation`. A compiled Flag or Segment keeps its
definition: what it was compiled from, to serve back as it was written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from .definitions import FlagDefinition, FlagSetDefinition, SegmentDefinition, VariantDefinition
from .frozen import quick_init

# A user's attributes as the engine sees them: the caller's context plus "$userId".
Context = Mapping[str, Any]
# A compiled test of one constraint against a context.
Predicate = Callable[[Context], bool]

USER_ID_PROPERTY = "$userId"
RESERVED_PREFIX = "$"
BUCKET_COUNT = 10_000


class Reason(IntEnum):
    """Why a variant was served; numbers match flagsidecar.v1.Reason."""

    STATIC = 1
    DEFAULT = 2
    TARGETING_MATCH = 3
    SPLIT = 4
    DISABLED = 5
    ERROR = 6


class ErrorCode(IntEnum):
    """What went wrong; numbers match flagsidecar.v1.ErrorCode."""

    FLAG_NOT_FOUND = 1
    TYPE_MISMATCH = 2
    PARSE_ERROR = 3
    TARGETING_KEY_MISSING = 4
    INVALID_CONTEXT = 5
    GENERAL = 6


@quick_init
@dataclass(frozen=True, slots=True)
class TraceStep:
    """One step of a debug stack trace."""

    type: str  # "flag", "rule", "constraint", "segment", "distribution" or "default"
    id: str
    matched: bool
    detail: str
    depth: int = 0
    answer: Any = None  # the value this step served; None when it served none
    bucket: int | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class Evaluation:
    """The outcome of evaluating one flag for one context."""

    flag_key: str
    value: Any  # None on error and when no default is set
    variant: str  # "" on error and when no default is set
    reason: Reason
    flag_version: int = 0
    error_code: ErrorCode | None = None
    error_message: str = ""
    track_events: bool = True
    stack_trace: tuple[TraceStep, ...] = ()

    @property
    def is_error(self) -> bool:
        return self.error_code is not None

    @property
    def has_value(self) -> bool:
        """False on error and when the default needed is not set (the caller's code default applies);
        a variant whose value is JSON null still has a value."""
        return bool(self.variant)


def flag_not_found(flag_key: str) -> Evaluation:
    return Evaluation(
        flag_key=flag_key,
        value=None,
        variant="",
        reason=Reason.ERROR,
        error_code=ErrorCode.FLAG_NOT_FOUND,
        error_message=f"flag {flag_key!r} not found",
        track_events=True,
    )


# A variant needs nothing compiled: the compiled flag serves its definitions.
Variant = VariantDefinition


@dataclass(frozen=True, slots=True)
class Constraint:
    """A compiled constraint: `test` is the fast path, `describe` explains an outcome for traces."""

    property: str
    operation: str
    values: tuple[Any, ...]
    test: Predicate
    # Segments this constraint checks (IS_IN_SEGMENT / ISNT_IN_SEGMENT), for nested traces.
    segments: tuple[Segment, ...] = ()
    # The values as its operation prepared them at compile time (operators.OperatorSpec.prepare):
    # what the fast path's inline template writes in.
    arguments: Any = None


@dataclass(frozen=True, slots=True)
class SegmentRule:
    id: str
    constraints: tuple[Constraint, ...]


@dataclass(slots=True, eq=False)
class Segment:
    """A group of users: a user is in it when any rule's constraints all hold."""

    key: str
    name: str
    description: str
    rules: tuple[SegmentRule, ...]
    fingerprint: str = ""
    definition: SegmentDefinition | None = None

    def contains(self, context: Context) -> bool:
        for rule in self.rules:
            for constraint in rule.constraints:
                if not constraint.test(context):
                    break
            else:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Distribution:
    variant: Variant
    percentage: float
    # Buckets [start, end) out of BUCKET_COUNT.
    start: int
    end: int


@dataclass(slots=True, eq=False)
class FlagRule:
    index: int
    id: str
    constraints: tuple[Constraint, ...]
    distributions: tuple[Distribution, ...]
    bucket_by: str
    # Set when one variant gets 100%: no bucketing needed.
    single: Evaluation | None = None
    # For splits: the upper bound of each non-empty distribution, and the answer for each.
    bounds: tuple[int, ...] = ()
    split_answers: tuple[Evaluation, ...] = ()


@dataclass(slots=True, eq=False)
class Flag:
    key: str
    name: str
    description: str
    enabled: bool
    version: int
    variants: Mapping[str, Variant]
    rules: tuple[FlagRule, ...]
    default_variant_when_on: Variant | None
    default_variant_when_off: Variant | None
    track_events: bool
    metadata: Mapping[str, Any]
    # What the flag answers when no rule serves one (it may have no value): a disabled flag's
    # answer (defaultVariantWhenOff, reason DISABLED), an enabled flag's fallthrough
    # (defaultVariantWhenOn). Enabled or not is fixed when a flag is compiled: one of them is needed.
    default_answer: Evaluation
    # A digest of the flag's definition, to tell a real change from a reload of the same text.
    fingerprint: str = ""
    # The rules as one generated function (fastpath.py), for an enabled flag with rules; the
    # evaluator's loop over `rules` gives the same answers without it.
    fast: Callable[[Context], Evaluation] | None = None
    definition: FlagDefinition | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a flag set, located as precisely as possible."""

    message: str
    source: str = ""
    flag: str | None = None
    segment: str | None = None
    rule: int | None = None
    path: str = ""

    def __str__(self) -> str:
        where = [self.source] if self.source else []
        if self.flag is not None:
            where.append(f"flag {self.flag!r}")
        if self.segment is not None:
            where.append(f"segment {self.segment!r}")
        if self.rule is not None:
            where.append(f"rule {self.rule}")
        if self.path:
            where.append(self.path)
        return f"{', '.join(where)}: {self.message}" if where else self.message


class FlagSetError(ValueError):
    """A flag set was rejected; `problems` lists everything wrong with it."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = len(problems)
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in flag set:\n{listing}")


@dataclass(slots=True, eq=False)
class FlagSet:
    """A validated, compiled snapshot of flags and segments. Never mutated once built."""

    flags: Mapping[str, Flag]
    segments: Mapping[str, Segment]
    source: str = ""
    # Non-fatal remarks (for example a disabled flag with no off-default), logged on load.
    warnings: tuple[Problem, ...] = ()
    # What the set was compiled from, in the document's order (flags and segments keep theirs too).
    definitions: FlagSetDefinition | None = None

"""Property-based tests: bucketing is deterministic, uniform and monotonic; evaluation never raises."""

import functools
import math
from collections import Counter

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.engine import (
    Evaluation,
    InvalidContextError,
    Reason,
    bucket,
    bucket_text,
    build_context,
    compile_flag_set,
    evaluate,
)
from sidecar.engine.operators import (
    NETWORKS,
    NO_VALUES,
    NUMBERS,
    PATTERNS,
    SCALARS,
    SEGMENT_KEYS,
    SPECS,
    STRINGS,
    VERSIONS,
)

from .helpers import EXAMPLES, SOURCE, constraint, document, flag_doc, rule, segment, split

FAST = settings(max_examples=200, deadline=None)

VARIANTS = [{"key": k, "value": k} for k in ("a", "b", "c", "d")]


def split_flag(key, *shares, bucket_by=None):
    doc = document(
        flag_doc(
            key=key,
            variants=VARIANTS,
            on="d",
            off="d",
            rules=[rule(distributions=split(*shares), bucket_by=bucket_by)],
        )
    )
    return compile_flag_set(doc, SOURCE).flags[key]


# ---------------------------------------------------------------- determinism

bucket_values = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)


@FAST
@given(flag_key=st.text(min_size=1, max_size=20), value=bucket_values)
def test_bucketing_is_deterministic(flag_key, value):
    text = bucket_text(value)
    assert text is not None
    first = bucket(flag_key, text)
    assert 0 <= first < 10000
    assert bucket(flag_key, text) == first
    assert bucket(flag_key, bucket_text(value)) == first


@FAST
@given(flag_key=st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True), account=bucket_values)
def test_same_config_same_answer_across_loads(flag_key, account):
    # Two independent loads of the same config (think: two replicas, or before and after a restart).
    first = split_flag(flag_key, ("a", 33.33), ("b", 33.33), ("c", 33.34), bucket_by="account")
    second = split_flag(flag_key, ("a", 33.33), ("b", 33.33), ("c", 33.34), bucket_by="account")
    context = build_context("u", {"account": account})
    answers = {evaluate(flag, context, debug).variant for flag in (first, second) for debug in (False, True)}
    assert len(answers) == 1


# ---------------------------------------------------------------- uniformity


def test_four_way_split_is_uniform_within_one_percent():
    flag = split_flag("uniformity", ("a", 25), ("b", 25), ("c", 25), ("d", 25))
    counts = Counter(evaluate(flag, {"$userId": f"user-{i}"}).variant for i in range(100_000))
    assert set(counts) == {"a", "b", "c", "d"}
    for variant, count in counts.items():
        assert 24_000 <= count <= 26_000, (variant, count)


# ---------------------------------------------------------------- monotonicity

USERS = [f"user-{i}" for i in range(300)]


@st.composite
def rollouts(draw):
    """A three-way split in hundredths of a percent, and an increase of the first variant's share
    taken from the variants after it in order."""
    first = draw(st.integers(0, 10000))
    second = draw(st.integers(0, 10000 - first))
    increase = draw(st.integers(0, 10000 - first))
    before = (first, second, 10000 - first - second)
    new_second = max(second - increase, 0)
    after = (first + increase, new_second, 10000 - first - increase - new_second)
    return before, after


def three_way(flag_key, shares):
    return split_flag(flag_key, *[(v, s / 100) for v, s in zip("abc", shares, strict=True)])


@FAST
@given(flag_key=st.text(min_size=1, max_size=12), change=rollouts())
def test_raising_a_percentage_only_moves_users_into_it(flag_key, change):
    before, after = change
    old, new = three_way(flag_key, before), three_way(flag_key, after)
    moved_in = 0
    for user in USERS:
        context = {"$userId": user}
        was, now = evaluate(old, context).variant, evaluate(new, context).variant
        if was == "a":
            assert now == "a", (user, before, after)  # nobody leaves the raised variant
        if now != was:
            assert now == "a", (user, was, now)  # whoever moves, moves into it
            moved_in += 1
    if after == before:
        assert moved_in == 0


@FAST
@given(flag_key=st.text(min_size=1, max_size=12), low=st.integers(0, 10000), high=st.integers(0, 10000))
def test_two_way_rollout_is_nested(flag_key, low, high):
    low, high = sorted((low, high))
    small = split_flag(flag_key, ("a", low / 100), ("b", (10000 - low) / 100))
    large = split_flag(flag_key, ("a", high / 100), ("b", (10000 - high) / 100))
    small_a = {u for u in USERS if evaluate(small, {"$userId": u}).variant == "a"}
    large_a = {u for u in USERS if evaluate(large, {"$userId": u}).variant == "a"}
    assert small_a <= large_a


# ---------------------------------------------------------------- evaluation never raises

PROPERTIES = ["x", "n", "plan", "email", "ip", "accountId", "country", "version", "$userId"]
# Values for every kind of value an operation takes: a new operation of a known kind is covered
# without a line here, and a new kind fails test_every_kind_of_value_has_samples until it has some.
KIND_VALUES = {
    NO_VALUES: None,
    SCALARS: ["a", 1, True, 2.5],
    NUMBERS: [0, 1.5],
    STRINGS: ["a", "@example.com"],
    PATTERNS: ["^a", r"\d", r"\p{L}"],
    NETWORKS: ["10.0.0.0/8", "::1", "2001:db8::/32"],
    SEGMENT_KEYS: ["outer"],
    VERSIONS: ["1.2.3", "v2.0.0-rc.1+build.5", "2"],
}
OPERATION_VALUES = {  # variations on the kind's values
    "NOT_ONE_OF": ["a", 1, False],
    "GREATER": [1],
    "LOWER": [100],
    "LOWER_OR_EQUAL": [-1.5],
    "CONTAINS": ["a", ""],
    "DOESNT_CONTAIN": ["z"],
    "DOESNT_START_WITH": ["b"],
    "DOESNT_END_WITH": ["x"],
    "DOESNT_MATCH_REGEX": ["(?i)z"],
    "ISNT_IN_SEGMENT": ["inner"],
    "SEMVER_LOWER": ["1.10.0", "2.0.0-alpha"],
    "SEMVER_SAME_MINOR": ["1.2"],
}


def values_for(spec):
    return OPERATION_VALUES.get(spec.name, KIND_VALUES[spec.values])


def test_every_kind_of_value_has_samples():
    assert {spec.values for spec in SPECS} <= set(KIND_VALUES)
    assert set(OPERATION_VALUES) <= {spec.name for spec in SPECS}


EVERY_OPERATOR_SEGMENTS = [
    segment(
        "outer",
        [constraint("ONE_OF", ["pro"], "plan")],
        [constraint("IS_IN_SEGMENT", ["inner"], prop=None), constraint("EXISTS", prop="email")],
    ),
    segment("inner", [constraint("MATCHES_REGEX", ["@example"], "email")], [constraint("GREATER", [5], "n")]),
]


def _every_operator_flags():
    """One flag per operation (a split on a rotating bucket attribute, then a plain match), and one
    flag whose single rule uses every operation at once."""
    flags = []
    constraints = []
    for index, spec in enumerate(SPECS):
        prop = PROPERTIES[index % len(PROPERTIES)]
        body = constraint(spec.name, values_for(spec), prop)
        constraints.append(body)
        flags.append(
            flag_doc(
                key=f"op-{spec.name.lower()}",
                rules=[
                    rule(
                        body,
                        distributions=split(("hit", 50), ("miss", 50)),
                        bucket_by=PROPERTIES[(index + 1) % len(PROPERTIES)],
                    ),
                    rule(body),
                ],
            )
        )
    flags.append(
        flag_doc(
            key="every-operator",
            rules=[rule(*constraints, distributions=split(("hit", 10.5), ("miss", 89.5)), bucket_by="n")],
        )
    )
    flags.append(flag_doc(key="disabled", enabled=False, rules=[rule(*constraints)]))
    flags.append(flag_doc(key="erroring", on=None, rules=[rule(constraints[0])]))
    return flags


@functools.cache
def all_flags():
    example = compile_flag_set(yaml.safe_load(EXAMPLES.read_text()), str(EXAMPLES))
    every = compile_flag_set(document(*_every_operator_flags(), segments=EVERY_OPERATOR_SEGMENTS), SOURCE)
    assert len(every.flags) == len(SPECS) + 3
    return [*example.flags.values(), *every.flags.values()]


any_text = st.text(st.characters(exclude_categories=()), max_size=12)  # includes lone surrogates
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, 1, -1, 2**53 + 1, 10**400]),
    st.builds(pow, st.just(10), st.just(5000)),  # too many digits for str(); built lazily so reprs work
    st.floats(),  # includes nan, inf, -inf, -0.0
    st.sampled_from([math.nan, math.inf, -math.inf, 42.0, 2.5]),
    any_text,
    st.sampled_from(["a", "pro", "bob@example.com", "10.1.2.3", "::1", "2001:db8::7", "7", "true", ""]),
    st.sampled_from(["1.2.3", "v1.10", "2", "2.0.0-alpha", "1.2.3+b", "V0.1.0-rc.1", "01.2", "1.2.3.4"]),
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3),
    max_leaves=6,
)
contexts = st.dictionaries(st.sampled_from(PROPERTIES) | any_text, values, max_size=8)


def check_evaluation(flag, context):
    plain = evaluate(flag, context, debug=False)
    traced = evaluate(flag, context, debug=True)
    assert isinstance(plain, Evaluation)
    assert plain.stack_trace == ()
    assert traced.stack_trace
    assert (plain.value, plain.variant, plain.reason, plain.error_code) == (
        traced.value,
        traced.variant,
        traced.reason,
        traced.error_code,
    )
    if plain.is_error:
        assert plain.reason is Reason.ERROR
        assert plain.variant == ""
    elif not plain.has_value:  # the default needed is not set: no value, never an error
        assert plain.reason in (Reason.DEFAULT, Reason.DISABLED)
        assert plain.value is None
    else:
        assert plain.variant in flag.variants
        assert plain.value == flag.variants[plain.variant].value
    if plain.reason is Reason.SPLIT:
        [step] = [s for s in traced.stack_trace if s.type == "distribution"]
        rule_ = next(r for r in flag.rules if r.id == step.id)
        assert step.bucket == bucket(flag.key, bucket_text(context.get(rule_.bucket_by)))


@FAST
@given(context=contexts)
def test_evaluation_never_raises_for_any_context(context):
    for flag in all_flags():
        check_evaluation(flag, context)


@FAST
@given(user_id=any_text, attrs=contexts)
def test_build_context_either_rejects_cleanly_or_evaluates(user_id, attrs):
    try:
        context = build_context(user_id, attrs)
    except InvalidContextError:
        return
    assert context.get("$userId") == (user_id or None)
    for flag in all_flags():
        check_evaluation(flag, context)

"""Debug stack traces (DESIGN.md, "Evaluation semantics" 8)."""

import mmh3
import pytest

from sidecar.engine import Reason, build_context, compile_flag_set, evaluate

from .helpers import SOURCE, constraint, document, flag_doc, rule, segment, split

COLORS = [
    {"key": "red", "value": "#f00"},
    {"key": "green", "value": "#0f0"},
    {"key": "blue", "value": "#00f"},
]

DOC = document(
    flag_doc(
        key="traced",
        variants=COLORS,
        on="blue",
        off="blue",
        rules=[
            rule(
                constraint("ONE_OF", ["pro"], "plan"),
                constraint("ENDS_WITH", ["@example.com"], "email"),
                serve="red",
                rule_id="pro-staff",
            ),
            rule(
                constraint("IS_IN_SEGMENT", ["beta"], prop=None),
                constraint("EXISTS", prop="accountId"),
                rule_id="beta-split",
                bucket_by="accountId",
                distributions=split(("red", 30), ("green", 70)),
            ),
        ],
    ),
    segments=[
        segment(
            "beta",
            [constraint("ONE_OF", ["beta"], "plan")],
            [constraint("IS_IN_SEGMENT", ["staff"], prop=None)],
        ),
        segment("staff", [constraint("ENDS_WITH", ["@example.com"], "email")]),
    ],
)


@pytest.fixture(scope="module")
def flag():
    return compile_flag_set(DOC, SOURCE).flags["traced"]


def trace(flag, attrs, user_id="user-1"):
    return evaluate(flag, build_context(user_id, attrs), debug=True)


def summary(result):
    return [(s.type, s.id, s.matched, s.depth) for s in result.stack_trace]


def test_split_trace_shows_every_rule_constraint_nested_segment_and_bucket(flag):
    attrs = {"plan": "free", "email": "bob@example.com", "accountId": "acct-9"}
    result = trace(flag, attrs)
    assert summary(result) == [
        ("flag", "traced", True, 0),
        ("rule", "pro-staff", False, 1),
        # Both constraints are shown, even though the first already failed.
        ("constraint", "rules[0].constraints[0]", False, 2),
        ("constraint", "rules[0].constraints[1]", True, 2),
        ("rule", "beta-split", True, 1),
        ("constraint", "rules[1].constraints[0]", True, 2),
        ("segment", "beta", True, 3),
        ("constraint", "segment beta.rules[0].constraints[0]", False, 4),
        ("constraint", "segment beta.rules[1].constraints[0]", True, 4),
        ("segment", "staff", True, 5),
        ("constraint", "segment staff.rules[0].constraints[0]", True, 6),
        ("constraint", "rules[1].constraints[1]", True, 2),
        ("distribution", "beta-split", True, 1),
    ]
    steps = result.stack_trace
    assert "plan = 'free'" in steps[2].detail
    assert "ONE_OF ['pro'] does not hold" in steps[2].detail
    assert "email = 'bob@example.com'; ENDS_WITH ['@example.com'] holds" in steps[3].detail

    h = mmh3.hash(b"traced:acct-9", 0, signed=False)
    expected_bucket = (h * 10000) >> 32
    distribution = steps[-1]
    assert distribution.bucket == expected_bucket
    assert str(expected_bucket) in distribution.detail
    assert "red [0, 3000)" in distribution.detail
    assert "green [3000, 10000)" in distribution.detail
    assert result.variant == ("red" if expected_bucket < 3000 else "green")
    assert distribution.answer == result.value
    assert result.reason is Reason.SPLIT


def test_targeting_match_trace(flag):
    result = trace(flag, {"plan": "pro", "email": "a@example.com"})
    assert summary(result)[:4] == [
        ("flag", "traced", True, 0),
        ("rule", "pro-staff", True, 1),
        ("constraint", "rules[0].constraints[0]", True, 2),
        ("constraint", "rules[0].constraints[1]", True, 2),
    ]
    assert len(result.stack_trace) == 4  # later rules are not tried
    assert result.stack_trace[1].answer == "#f00"
    assert "serves 'red'" in result.stack_trace[1].detail


def test_default_trace_lists_every_rule_tried(flag):
    result = trace(flag, {"plan": "free"})
    rules = [s for s in result.stack_trace if s.type == "rule"]
    assert [(r.id, r.matched) for r in rules] == [("pro-staff", False), ("beta-split", False)]
    constraints = [s for s in result.stack_trace if s.type == "constraint" and s.depth == 2]
    assert len(constraints) == 4
    assert "email is missing" in constraints[1].detail
    last = result.stack_trace[-1]
    assert (last.type, last.id, last.matched, last.answer) == (
        "default",
        "defaultVariantWhenOn",
        True,
        "#00f",
    )
    assert "no rule matched" in last.detail
    assert result.reason is Reason.DEFAULT


def test_missing_bucket_attribute_is_explained(flag):
    doc = document(
        flag_doc(
            key="s",
            variants=COLORS,
            on="blue",
            off="blue",
            rules=[rule(rule_id="split", bucket_by="team", distributions=split(("red", 50), ("green", 50)))],
        )
    )
    result = trace(compile_flag_set(doc, SOURCE).flags["s"], {})
    [rule_step] = [s for s in result.stack_trace if s.type == "rule"]
    assert not rule_step.matched
    assert "bucket attribute 'team' is missing" in rule_step.detail
    assert not [s for s in result.stack_trace if s.type == "distribution"]
    assert result.reason is Reason.DEFAULT


def test_disabled_trace():
    doc = document(flag_doc(key="off", enabled=False, rules=[rule(constraint("EXISTS", prop="x"))]))
    result = trace(compile_flag_set(doc, SOURCE).flags["off"], {"x": 1})
    assert summary(result) == [("flag", "off", False, 0), ("default", "defaultVariantWhenOff", True, 0)]
    assert "disabled" in result.stack_trace[0].detail
    assert result.reason is Reason.DISABLED


def test_missing_default_trace_says_no_default_is_set():
    doc = document(flag_doc(key="broken", on=None))
    result = trace(compile_flag_set(doc, SOURCE).flags["broken"], {})
    last = result.stack_trace[-1]
    assert (last.type, last.matched, last.answer) == ("default", False, None)
    assert "no defaultVariantWhenOn is set" in last.detail
    assert (result.reason, result.variant, result.value) == (Reason.DEFAULT, "", None)


def test_isnt_in_segment_trace_shows_the_segment():
    doc = document(
        flag_doc(key="f", rules=[rule(constraint("ISNT_IN_SEGMENT", ["banned"], prop=None))]),
        segments=[segment("banned", [constraint("ONE_OF", ["xx"], "country")])],
    )
    result = trace(compile_flag_set(doc, SOURCE).flags["f"], {"country": "xx"})
    assert [(s.type, s.id, s.matched) for s in result.stack_trace[1:]] == [
        ("rule", "0", False),
        ("constraint", "rules[0].constraints[0]", False),
        ("segment", "banned", True),
        ("constraint", "segment banned.rules[0].constraints[0]", True),
        ("default", "defaultVariantWhenOn", True),
    ]


CONTEXTS = [
    {},
    {"plan": "pro", "email": "a@example.com"},
    {"plan": "beta", "accountId": "a1"},
    {"plan": "beta", "accountId": 7},
    {"plan": "free", "email": "x@example.com", "accountId": "acct-3"},
    {"plan": "beta"},
]


@pytest.mark.parametrize("attrs", CONTEXTS, ids=[str(i) for i in range(len(CONTEXTS))])
def test_debug_and_plain_agree_and_plain_has_no_trace(flag, attrs):
    context = build_context("user-7", attrs)
    plain = evaluate(flag, context, debug=False)
    traced = evaluate(flag, context, debug=True)
    assert plain.stack_trace == ()
    assert traced.stack_trace
    assert (plain.value, plain.variant, plain.reason, plain.error_code, plain.flag_version) == (
        traced.value,
        traced.variant,
        traced.reason,
        traced.error_code,
        traced.flag_version,
    )


def test_trace_never_fails_on_unprintable_values():
    doc = document(flag_doc(key="f", rules=[rule(constraint("ONE_OF", [1], "n"))]))
    flag = compile_flag_set(doc, SOURCE).flags["f"]
    result = evaluate(flag, {"n": 10**5000, "$userId": "u"}, debug=True)
    assert result.variant == "miss"
    assert "too large" in result.stack_trace[2].detail

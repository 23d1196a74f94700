"""Segments: ANY rule (each an AND of constraints), nesting, empty segments, all/none semantics."""

import pytest

from sidecar.engine import compile_flag_set

from .helpers import SOURCE, compile_one, constraint, document, flag_doc, rule, run, segment


def in_segments(segments, keys, attrs, operation="IS_IN_SEGMENT"):
    doc = document(flag_doc(rules=[rule(constraint(operation, keys, prop=None))]), segments=segments)
    return run(compile_one(doc), attrs).variant == "hit"


# "staff" is nested inside "beta": a user is in beta by plan, or by being staff.
NESTED = [
    segment(
        "beta",
        [constraint("ONE_OF", ["pro", "enterprise"], "plan")],
        [constraint("IS_IN_SEGMENT", ["staff"], prop=None)],
    ),
    segment("staff", [constraint("ENDS_WITH", ["@example.com"], "email")]),
]


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        pytest.param({"plan": "pro"}, True, id="first-rule"),
        pytest.param({"email": "a@example.com"}, True, id="nested-segment-rule"),
        pytest.param({"plan": "free", "email": "a@example.com"}, True, id="nested-only"),
        pytest.param({"plan": "free", "email": "a@other.com"}, False, id="neither"),
        pytest.param({}, False, id="empty-context"),
    ],
)
def test_nested_segment(attrs, expected):
    assert in_segments(NESTED, ["beta"], attrs) is expected


def test_three_levels_of_nesting_listed_in_any_order():
    segments = [
        segment("outer", [constraint("IS_IN_SEGMENT", ["middle"], prop=None)]),
        segment("middle", [constraint("IS_IN_SEGMENT", ["inner"], prop=None)]),
        segment("inner", [constraint("ONE_OF", ["yes"], "deep")]),
    ]
    assert in_segments(segments, ["outer"], {"deep": "yes"})
    assert not in_segments(segments, ["outer"], {"deep": "no"})


def test_nested_isnt_in_segment():
    segments = [
        segment("not-banned", [constraint("ISNT_IN_SEGMENT", ["banned"], prop=None)]),
        segment("banned", [constraint("ONE_OF", ["xx"], "country")]),
    ]
    assert in_segments(segments, ["not-banned"], {"country": "fr"})
    assert not in_segments(segments, ["not-banned"], {"country": "xx"})


def test_segment_rule_is_and_of_constraints_and_segment_is_any_rule():
    segments = [
        segment(
            "s",
            [constraint("ONE_OF", ["pro"], "plan"), constraint("ONE_OF", ["eu"], "region")],
            [constraint("GREATER_OR_EQUAL", [100], "seats")],
        )
    ]
    assert in_segments(segments, ["s"], {"plan": "pro", "region": "eu"})
    assert not in_segments(segments, ["s"], {"plan": "pro", "region": "us"})  # first rule is an AND
    assert in_segments(segments, ["s"], {"plan": "free", "seats": 150})  # second rule alone suffices
    assert not in_segments(segments, ["s"], {"plan": "free", "seats": 10})


def test_segment_with_zero_rules_never_matches():
    segments = [{"key": "empty", "rules": []}, {"key": "no-rules-field"}]
    for key in ("empty", "no-rules-field"):
        assert not in_segments(segments, [key], {"plan": "pro", "x": "anything"})
        assert in_segments(segments, [key], {"plan": "pro"}, operation="ISNT_IN_SEGMENT")


def test_segment_with_zero_rules_is_a_load_warning_not_an_error():
    flag_set = compile_flag_set(document(segments=[{"key": "empty", "rules": []}]), SOURCE)
    assert [(w.segment, "no rules" in w.message) for w in flag_set.warnings] == [("empty", True)]


def test_segment_rule_without_constraints_matches_everyone():
    segments = [{"key": "all", "rules": [{"constraints": []}]}]
    assert in_segments(segments, ["all"], {})


TWO = [
    segment("pro", [constraint("ONE_OF", ["pro"], "plan")]),
    segment("eu", [constraint("ONE_OF", ["eu"], "region")]),
]


@pytest.mark.parametrize(
    ("attrs", "is_in", "isnt_in"),
    [
        pytest.param({"plan": "pro", "region": "eu"}, True, False, id="both"),
        pytest.param({"plan": "pro", "region": "us"}, False, False, id="first-only"),
        pytest.param({"plan": "free", "region": "eu"}, False, False, id="second-only"),
        pytest.param({"plan": "free", "region": "us"}, False, True, id="neither"),
    ],
)
def test_is_in_requires_all_listed_and_isnt_in_requires_none(attrs, is_in, isnt_in):
    assert in_segments(TWO, ["pro", "eu"], attrs) is is_in
    assert in_segments(TWO, ["pro", "eu"], attrs, operation="ISNT_IN_SEGMENT") is isnt_in


def test_segments_are_compiled_and_exposed():
    flag_set = compile_flag_set(document(segments=NESTED), SOURCE)
    beta = flag_set.segments["beta"]
    assert beta.name == "beta"  # defaults to the key
    assert beta.contains({"plan": "pro"})
    assert beta.contains({"email": "x@example.com"})
    assert not beta.contains({})

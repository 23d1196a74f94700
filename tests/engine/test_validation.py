"""Load-time validation (DESIGN.md, "Evaluation semantics" 7): every problem found, located, reported."""

import math

import pytest
import yaml

from sidecar.engine import FlagSetError, Problem, compile_flag_set

from .helpers import SOURCE, compile_one, constraint, document, flag_doc, rule, run, segment, split


def problems_of(doc, source=SOURCE):
    with pytest.raises(FlagSetError) as caught:
        compile_flag_set(doc, source)
    return caught.value.problems


def only_problem(doc):
    problems = problems_of(doc)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def with_constraint(body, segments=()):
    return document(flag_doc(rules=[rule(body)]), segments=segments)


# Each case: a document with exactly one problem, a fragment of its message, and where it is.
CASES = [
    pytest.param(
        with_constraint(constraint("ONE_OFF", ["a"])),
        "unknown operation 'ONE_OFF' (did you mean 'ONE_OF'?)",
        {"flag": "f", "rule": 0, "path": "constraints[0]"},
        id="unknown-operation",
    ),
    pytest.param(
        with_constraint(constraint("FROBNICATE", ["a"])),
        "unknown operation 'FROBNICATE'; expected one of ONE_OF, NOT_ONE_OF",
        {"flag": "f", "rule": 0},
        id="unknown-operation-no-close-match",
    ),
    pytest.param(
        with_constraint(constraint("MATCHES_REGEX", ["ok", "(unclosed"])),
        "invalid regular expression '(unclosed'",
        {"flag": "f", "rule": 0, "path": "constraints[0]"},
        id="bad-regex",
    ),
    pytest.param(
        with_constraint(constraint("DOESNT_MATCH_REGEX", ["a)(?:b"])),
        "invalid regular expression 'a)(?:b'",
        {"flag": "f", "rule": 0},
        id="bad-regex-that-balances-once-joined",
    ),
    pytest.param(
        with_constraint(constraint("MATCHES_REGEX", ["(?<=a)b"])),
        "invalid regular expression",
        {"flag": "f", "rule": 0},
        id="regex-not-in-re2-syntax",
    ),
    pytest.param(
        with_constraint(constraint("IS_IN_NETWORK", ["10.0.0.0/33"])),
        "'10.0.0.0/33' is not an IP address or CIDR network",
        {"flag": "f", "rule": 0, "path": "constraints[0]"},
        id="bad-cidr-prefix",
    ),
    pytest.param(
        with_constraint(constraint("IS_IN_NETWORK", ["10.0.0.0/8", "intranet"])),
        "'intranet' is not an IP address or CIDR network",
        {"flag": "f", "rule": 0},
        id="bad-cidr-text",
    ),
    pytest.param(
        with_constraint(constraint("SEMVER_GREATER", ["1.2.x"])),
        "is not a semantic version: '1.2.x' (expected MAJOR.MINOR.PATCH",
        {"flag": "f", "rule": 0, "path": "constraints[0]"},
        id="bad-version",
    ),
    pytest.param(
        with_constraint(constraint("SEMVER_EQUAL", ["1.0.0", "01.0", "1.0.0.0", "v"])),
        "are not semantic versions: '01.0', '1.0.0.0', 'v'",
        {"flag": "f", "rule": 0, "path": "constraints[0]"},
        id="bad-versions-listed-together",
    ),
    pytest.param(
        with_constraint(constraint("SEMVER_LOWER", [1.2])),
        "SEMVER_LOWER values must each be a string; not 1.2 (quote versions: YAML reads 1.2 as a number",
        {"flag": "f", "rule": 0, "path": "constraints[0]"},
        id="number-for-a-version",
    ),
    pytest.param(
        with_constraint(constraint("SEMVER_SAME_MAJOR", [])),
        "SEMVER_SAME_MAJOR needs at least one value; the list is empty",
        {"flag": "f", "rule": 0, "path": "constraints[0]"},
        id="no-version",
    ),
    pytest.param(
        document(
            flag_doc(rules=[rule(constraint("IS_IN_SEGMENT", ["apps"], prop=None))]),
            segments=[
                segment(
                    "apps", [constraint("EXISTS", prop="v")], [constraint("SEMVER_SAME_MINOR", ["x"], "v")]
                )
            ],
        ),
        "is not a semantic version: 'x'",
        {"segment": "apps", "rule": 1, "path": "constraints[0]"},
        id="bad-version-in-a-segment",
    ),
    pytest.param(
        document(segments=[segment("s", [constraint(["IS_IN_SEGMENT"], ["s"])])]),
        "unknown operation ['IS_IN_SEGMENT']",
        {"segment": "s", "rule": 0, "path": "constraints[0]"},
        id="list-for-an-operation-in-a-segment",
    ),
    pytest.param(
        with_constraint(constraint({"op": "ONE_OF"}, ["a"])),
        "unknown operation {'op': 'ONE_OF'}",
        {"flag": "f", "rule": 0, "path": "constraints[0]"},
        id="mapping-for-an-operation",
    ),
    pytest.param(
        with_constraint(constraint("ONE_OF", [])),
        "ONE_OF needs at least one value; the list is empty",
        {"flag": "f", "rule": 0, "path": "constraints[0]"},
        id="empty-values",
    ),
    pytest.param(
        with_constraint(constraint("STARTS_WITH")),
        "STARTS_WITH needs at least one value",
        {"flag": "f", "rule": 0},
        id="missing-values",
    ),
    pytest.param(
        with_constraint(constraint("IS_IN_SEGMENT", [], prop=None)),
        "IS_IN_SEGMENT needs at least one value",
        {"flag": "f", "rule": 0},
        id="empty-segment-list",
    ),
    pytest.param(
        with_constraint(constraint("EXISTS", ["a"])),
        "EXISTS takes no values, but 1 are listed",
        {"flag": "f", "rule": 0, "path": "constraints[0]"},
        id="exists-with-values",
    ),
    pytest.param(
        with_constraint(constraint("DOESNT_EXIST", ["a", "b"])),
        "DOESNT_EXIST takes no values",
        {"flag": "f", "rule": 0},
        id="doesnt-exist-with-values",
    ),
    pytest.param(
        with_constraint(constraint("GREATER", ["10"])),
        "GREATER values must each be a number; not '10'",
        {"flag": "f", "rule": 0},
        id="string-for-number-op",
    ),
    pytest.param(
        with_constraint(constraint("LOWER", [True])),
        "LOWER values must each be a number; not True",
        {"flag": "f", "rule": 0},
        id="bool-for-number-op",
    ),
    pytest.param(
        with_constraint(constraint("GREATER", [math.inf])),
        "GREATER values must each be a number; not inf",
        {"flag": "f", "rule": 0},
        id="infinite-for-number-op",
    ),
    pytest.param(
        with_constraint(constraint("ONE_OF", [math.nan])),
        "values must each be a string, number or boolean; not nan",
        {"flag": "f", "rule": 0},
        id="nan-in-one-of",
    ),
    pytest.param(
        with_constraint(constraint("ONE_OF", ["a", None])),
        "not None",
        {"flag": "f", "rule": 0},
        id="null-in-one-of",
    ),
    pytest.param(
        with_constraint(constraint("CONTAINS", [5])),
        "CONTAINS values must each be a string; not 5",
        {"flag": "f", "rule": 0},
        id="number-for-string-op",
    ),
    pytest.param(
        with_constraint(constraint("ONE_OF", ["a"], prop=None)),
        "ONE_OF needs a property",
        {"flag": "f", "rule": 0},
        id="missing-property",
    ),
    pytest.param(
        document(flag_doc(on="maybe")),
        "defaultVariantWhenOn names unknown variant 'maybe'; variants are hit, miss",
        {"flag": "f", "rule": None},
        id="unknown-on-default",
    ),
    pytest.param(
        document(flag_doc(off="maybe")),
        "defaultVariantWhenOff names unknown variant 'maybe'",
        {"flag": "f", "rule": None},
        id="unknown-off-default",
    ),
    pytest.param(
        document(flag_doc(rules=[rule(distributions=split(("hit", 50), ("maybe", 50)))])),
        "distribution names unknown variant 'maybe'",
        {"flag": "f", "rule": 0, "path": "distributions[1]"},
        id="unknown-distribution-variant",
    ),
    pytest.param(
        with_constraint(constraint("IS_IN_SEGMENT", ["ghosts"], prop=None)),
        "IS_IN_SEGMENT references unknown segment 'ghosts'",
        {"flag": "f", "rule": 0, "path": "constraints[0]"},
        id="unknown-segment",
    ),
    pytest.param(
        document(segments=[segment("s", [constraint("ISNT_IN_SEGMENT", ["ghosts"], prop=None)])]),
        "ISNT_IN_SEGMENT references unknown segment 'ghosts'",
        {"segment": "s", "rule": 0, "flag": None},
        id="unknown-segment-in-segment",
    ),
    pytest.param(
        document(flag_doc(rules=[rule(distributions=split(("hit", 50), ("miss", 40)))])),
        "distribution percentages sum to 90, not 100",
        {"flag": "f", "rule": 0},
        id="percentages-under-100",
    ),
    pytest.param(
        document(flag_doc(rules=[rule(distributions=split(("hit", 60.5), ("miss", 40)))])),
        "sum to 100.5, not 100",
        {"flag": "f", "rule": 0},
        id="percentages-over-100",
    ),
    pytest.param(
        document(flag_doc(rules=[rule(distributions=split(("hit", 33.333), ("miss", 66.667)))])),
        "percentage 33.333 has more than two decimals",
        {"flag": "f", "rule": 0, "path": "distributions[0]"},
        id="more-than-two-decimals",
    ),
    pytest.param(
        document(flag_doc(rules=[rule(distributions=split(("hit", 150), ("miss", -50)))])),
        "percentage must be a number from 0 to 100, not 150",
        {"flag": "f", "rule": 0},
        id="percentage-out-of-range",
    ),
    pytest.param(
        document(flag_doc(rules=[rule(distributions=split(("hit", "50"), ("miss", 50)))])),
        "percentage must be a number from 0 to 100, not '50'",
        {"flag": "f", "rule": 0},
        id="percentage-as-string",
    ),
    pytest.param(
        document(flag_doc(rules=[rule(distributions=split(("hit", 50), ("hit", 50)))])),
        "variant 'hit' is listed twice in the distributions",
        {"flag": "f", "rule": 0, "path": "distributions[1]"},
        id="variant-twice-in-distributions",
    ),
    pytest.param(
        document(flag_doc(rules=[{"constraints": []}])),
        "a rule needs at least one distribution",
        {"flag": "f", "rule": 0},
        id="rule-without-distributions",
    ),
    pytest.param(
        document(
            flag_doc(variants=[{"key": "a", "value": 1}, {"key": "b", "value": "two"}], on="a", off="a")
        ),
        "variants must all have the same type, but they mix number: a; string: b",
        {"flag": "f", "rule": None},
        id="mixed-variant-types",
    ),
    pytest.param(
        document(flag_doc(variants=[{"key": "a", "value": True}, {"key": "b", "value": 0}], on="a", off="a")),
        "mix boolean: a; number: b",
        {"flag": "f"},
        id="bool-and-number-variants-mixed",
    ),
    pytest.param(
        document(flag_doc(variants=[{"key": "a"}], on="a", off="a")),
        "variant 'a' has no value",
        {"flag": "f", "path": "variants[0]"},
        id="variant-without-value",
    ),
    pytest.param(
        document(flag_doc(variants=[])),
        "a flag needs at least one variant",
        {"flag": "f"},
        id="no-variants",
    ),
    pytest.param(
        document(flag_doc(key="dup", on="hit"), flag_doc(key="dup", on="miss")),
        "duplicate flag key",
        {"flag": "dup", "path": "flags[1]"},
        id="duplicate-flag-key",
    ),
    pytest.param(
        document(flag_doc(variants=[{"key": "a", "value": 1}, {"key": "a", "value": 2}], on="a", off="a")),
        "duplicate variant key 'a'",
        {"flag": "f", "path": "variants[1]"},
        id="duplicate-variant-key",
    ),
    pytest.param(
        document(flag_doc(rules=[rule(rule_id="r"), rule(rule_id="r")])),
        "duplicate rule id 'r'",
        {"flag": "f", "rule": 1},
        id="duplicate-rule-id",
    ),
    pytest.param(
        document(segments=[segment("s"), segment("s")]),
        "duplicate segment key",
        {"segment": "s", "path": "segments[1]"},
        id="duplicate-segment-key",
    ),
    pytest.param(
        document(flag_doc(enabled="yes")),
        "enabled is required and must be true or false",
        {"flag": "f"},
        id="enabled-not-boolean",
    ),
    pytest.param(
        document({"enabled": True, "variants": [{"key": "a", "value": 1}]}),
        "flag key is required",
        {"path": "flags[0]"},
        id="flag-without-key",
    ),
    pytest.param(
        document(flag_doc(defaultVariantWhenOnn="hit", on=None)),
        "unknown field 'defaultVariantWhenOnn' in a flag (did you mean 'defaultVariantWhenOn'?)",
        {"path": "flags[0]"},
        id="unknown-flag-field",
    ),
    pytest.param(
        with_constraint({"propery": "x", "operation": "EXISTS"}),
        "unknown field 'propery' in a constraint (did you mean 'property'?)",
        {"flag": "f", "rule": 0, "path": "constraints[0]"},
        id="unknown-constraint-field",
    ),
    pytest.param(
        document(flag_doc(rules=[{"distributions": split(("hit", 100)), "bucket_by": "x"}])),
        "unknown field 'bucket_by' in a rule (did you mean 'bucketBy'?)",
        {"flag": "f", "rule": 0},
        id="unknown-rule-field",
    ),
    pytest.param(
        document(flag_doc(rules=[rule(distributions=[{"variant": "hit", "percent": 100}])])),
        "unknown field 'percent' in a distribution (did you mean 'percentage'?)",
        {"flag": "f", "rule": 0, "path": "distributions[0]"},
        id="unknown-distribution-field",
    ),
    pytest.param(
        {"flag": [], "segments": []},
        "unknown field 'flag' in the flag document (did you mean 'flags'?)",
        {"flag": None},
        id="unknown-top-level-field",
    ),
]


@pytest.mark.parametrize(("doc", "message", "where"), CASES)
def test_problem_is_reported_and_located(doc, message, where):
    problems = problems_of(doc)
    matching = [p for p in problems if message in p.message]
    assert matching, [str(p) for p in problems]
    problem = matching[0]
    assert problem.source == SOURCE
    for field, expected in where.items():
        assert getattr(problem, field) == expected, (field, str(problem))


@pytest.mark.parametrize(
    ("segments", "cycle"),
    [
        pytest.param(
            [
                segment("a", [constraint("IS_IN_SEGMENT", ["b"], prop=None)]),
                segment("b", [constraint("ISNT_IN_SEGMENT", ["a"], prop=None)]),
            ],
            "a -> b -> a",
            id="two-segments",
        ),
        pytest.param(
            [segment("self", [constraint("IS_IN_SEGMENT", ["self"], prop=None)])],
            "self -> self",
            id="self-reference",
        ),
        pytest.param(
            [
                segment(
                    "a", [constraint("ONE_OF", ["x"], "p")], [constraint("IS_IN_SEGMENT", ["b"], prop=None)]
                ),
                segment("b", [constraint("IS_IN_SEGMENT", ["c"], prop=None)]),
                segment("c", [constraint("IS_IN_SEGMENT", ["a"], prop=None)]),
            ],
            "a -> b -> c -> a",
            id="three-segments-via-second-rule",
        ),
    ],
)
def test_segment_cycles_are_rejected(segments, cycle):
    problems = problems_of(document(segments=segments))
    cycles = [p for p in problems if "cycle" in p.message]
    assert len(cycles) == 1
    assert cycle in cycles[0].message
    assert cycles[0].segment == cycle.split(" -> ")[0]


def chain(length):
    """Segment s0 references s1, which references s2, ... down to s<length - 1>."""
    segments = [
        segment(f"s{i}", [constraint("IS_IN_SEGMENT", [f"s{i + 1}"], prop=None)]) for i in range(length)
    ]
    segments[-1] = segment(f"s{length - 1}", [constraint("EXISTS", prop="x")])
    return segments


def test_segments_may_nest_32_deep_and_evaluate():
    doc = document(flag_doc(rules=[rule(constraint("IS_IN_SEGMENT", ["s0"], prop=None))]), segments=chain(32))
    assert run(compile_one(doc), {"x": 1}).variant == "hit"


@pytest.mark.parametrize("length", [33, 5000])
def test_deeper_nesting_is_one_problem_not_a_recursion_error(length):
    problems = problems_of(document(segments=chain(length)))
    assert [p.message for p in problems] == [
        "segments nest more than 32 deep through IS_IN_SEGMENT references"
    ]


def test_diamond_of_segments_is_not_a_cycle():
    segments = [
        segment("top", [constraint("IS_IN_SEGMENT", ["left", "right"], prop=None)]),
        segment("left", [constraint("IS_IN_SEGMENT", ["base"], prop=None)]),
        segment("right", [constraint("IS_IN_SEGMENT", ["base"], prop=None)]),
        segment("base", [constraint("EXISTS", prop="x")]),
    ]
    flag_set = compile_flag_set(document(segments=segments), SOURCE)
    assert flag_set.segments["top"].contains({"x": 1})


YAML_ON_KEY = """
flags:
  - key: new-checkout
    enabled: true
    variants:
      - {key: on, value: true}
      - {key: "off", value: false}
    defaultVariantWhenOn: "off"
    defaultVariantWhenOff: "off"
"""


def test_yaml_boolean_variant_key_is_explained():
    doc = yaml.safe_load(YAML_ON_KEY)
    assert doc["flags"][0]["variants"][0]["key"] is True  # the real YAML 1.1 behaviour
    problem = only_problem(doc)
    assert problem.flag == "new-checkout"
    assert problem.path == "variants[0]"
    assert "variant key must be a string" in problem.message
    assert "YAML read it as the boolean true" in problem.message
    assert "quote it" in problem.message


@pytest.mark.parametrize(
    ("yaml_text", "word"),
    [
        pytest.param('{key: "on", value: 1}], defaultVariantWhenOn: off', "false", id="default-off"),
        pytest.param('{key: "yes", value: 1}], defaultVariantWhenOn: yes', "true", id="default-yes"),
    ],
)
def test_yaml_boolean_default_reference_is_explained(yaml_text, word):
    doc = yaml.safe_load("flags: [{key: f, enabled: true, variants: [" + yaml_text + "}]")
    problem = only_problem(doc)
    assert f"defaultVariantWhenOn must be a string, but YAML read it as the boolean {word}" in problem.message
    assert "quote it" in problem.message


def test_yaml_boolean_distribution_variant_is_explained():
    doc = yaml.safe_load(
        """
flags:
  - key: f
    enabled: true
    variants: [{key: "on", value: 1}, {key: "off", value: 2}]
    rules:
      - distributions: [{variant: on, percentage: 100}]
"""
    )
    problems = problems_of(doc)
    assert any("YAML read it as the boolean true: quote it" in p.message and p.rule == 0 for p in problems)


def test_values_beyond_the_float_range_load_and_compare_exactly():
    # A JSON/YAML integer too large for a float must not crash the loader.
    doc = with_constraint(constraint("GREATER", [10**400]))
    assert compile_flag_set(doc, SOURCE).flags["f"]
    doc = with_constraint(constraint("ONE_OF", [10**400, 1]))
    assert compile_flag_set(doc, SOURCE).flags["f"]


def test_yaml_infinity_is_rejected():
    doc = yaml.safe_load(
        "flags: [{key: f, enabled: true, variants: [{key: a, value: 1}],"
        " rules: [{constraints: [{property: x, operation: LOWER, values: [.inf]}],"
        " distributions: [{variant: a, percentage: 100}]}]}]"
    )
    assert "LOWER values must each be a number; not inf" in only_problem(doc).message


def test_every_problem_is_reported_at_once():
    doc = {
        "flags": [
            flag_doc(
                key="alpha",
                on="nope",  # unknown variant, no rule
                rules=[
                    rule(constraint("EXISTS", prop="x")),
                    rule(constraint("MATCHES_REGEX", ["("]), constraint("ONE_OF", [])),  # two problems
                    rule(distributions=split(("hit", 70), ("miss", 20))),
                ],
            ),
            flag_doc(key="good", on="hit"),  # valid, but the set is rejected as a whole
            flag_doc(
                key="beta", variants=[{"key": "a", "value": 1}, {"key": "b", "value": "x"}], on="a", off="a"
            ),
        ],
        "segments": [segment("loop", [constraint("IS_IN_SEGMENT", ["loop"], prop=None)])],
    }
    with pytest.raises(FlagSetError) as caught:
        compile_flag_set(doc, "flags/prod.yaml")
    problems = caught.value.problems
    located = {(p.flag, p.segment, p.rule, p.message.split(" ")[0]) for p in problems}
    assert located == {
        ("alpha", None, None, "defaultVariantWhenOn"),
        ("alpha", None, 1, "invalid"),
        ("alpha", None, 1, "ONE_OF"),
        ("alpha", None, 2, "distribution"),
        ("beta", None, None, "variants"),
        (None, "loop", None, "segments"),
    }
    assert all(p.source == "flags/prod.yaml" for p in problems)
    assert len(problems) == 6

    regex = next(p for p in problems if p.message.startswith("invalid regular expression"))
    assert str(regex).startswith(
        "flags/prod.yaml, flag 'alpha', rule 1, constraints[0]: invalid regular expression '('"
    )
    total = next(p for p in problems if "sum to" in p.message)
    assert str(total) == "flags/prod.yaml, flag 'alpha', rule 2: distribution percentages sum to 90, not 100"

    text = str(caught.value)
    assert text.startswith("6 problems in flag set:\n  - flags/prod.yaml, ")
    assert all(f"  - {p}" in text for p in problems)


def test_problem_str_reads_well():
    assert str(Problem("boom")) == "boom"
    assert str(Problem("boom", source="a.yaml")) == "a.yaml: boom"
    assert (
        str(Problem("bad", source="a.yaml", flag="f", rule=2, path="distributions[0]"))
        == "a.yaml, flag 'f', rule 2, distributions[0]: bad"
    )
    assert str(Problem("bad", segment="s", rule=0)) == "segment 's', rule 0: bad"
    assert str(FlagSetError([Problem("x")])) == "1 problem in flag set:\n  - x"


def test_a_valid_set_loads_with_no_problems():
    doc = document(
        flag_doc(key="a", on="hit", rules=[rule(constraint("IS_IN_SEGMENT", ["s"], prop=None))]),
        flag_doc(key="b", on="hit"),
        segments=[segment("s", [constraint("EXISTS", prop="x")])],
    )
    flag_set = compile_flag_set(doc, SOURCE)
    assert list(flag_set.flags) == ["a", "b"]
    assert flag_set.source == SOURCE
    assert flag_set.warnings == ()


@pytest.mark.parametrize("doc", [{}, {"flags": []}], ids=["empty", "no-flags"])
def test_empty_documents_are_empty_sets(doc):
    flag_set = compile_flag_set(doc, SOURCE)
    assert (dict(flag_set.flags), dict(flag_set.segments)) == ({}, {})


def test_a_document_with_nothing_at_all_is_rejected():
    # An empty file is usually a write caught half-way; serving no flags must be asked for.
    [problem] = problems_of(None)
    assert "the document is empty" in str(problem)
    assert "flags: []" in str(problem)


@pytest.mark.parametrize("doc", [[], "flags", {"flags": {"a": 1}}], ids=["list", "string", "flags-mapping"])
def test_wrong_shapes_are_problems_not_crashes(doc):
    assert problems_of(doc)

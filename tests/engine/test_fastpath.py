"""The generated fast path (fastpath.py) answers exactly as the evaluator's rule-by-rule loop."""

from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.engine import (
    answering,
    compile_flag_set,
    evaluate,
    evaluate_plan,
    evaluation_plan,
    reads_reserved,
)
from sidecar.engine.evaluator import evaluate_rules
from sidecar.engine.fastpath import MAX_INLINE_SEGMENT_CONSTRAINTS, _shapes

from .helpers import SOURCE, constraint, document, flag_doc, rule, segment, split
from .test_properties import all_flags, any_text, contexts


def test_enabled_flags_with_rules_get_a_fast_path_and_the_others_do_not():
    for flag in all_flags():
        assert (flag.fast is not None) == (flag.enabled and bool(flag.rules)), flag.key


@settings(max_examples=300, deadline=None)
@given(context=contexts)
def test_fast_path_gives_the_same_answer_object_as_the_loop(context):
    for flag in all_flags():
        if flag.fast is not None:
            assert flag.fast(context) is evaluate_rules(flag, context), flag.key


@settings(max_examples=100, deadline=None)
@given(context=contexts)
def test_a_plan_answers_as_evaluate_does_flag_by_flag(context):
    flags = all_flags()
    answers = evaluate_plan(evaluation_plan(flags), context)
    assert len(answers) == len(flags)
    for flag, answer in zip(flags, answers, strict=True):
        assert answer is evaluate(flag, context), flag.key


MIXED_VALUES = [
    constraint("ONE_OF", ["pro", 5, True], "plan"),
    constraint("NOT_ONE_OF", ["pro", 5.0, False], "plan"),
    constraint("ONE_OF", ["pro", "team"], "plan"),
    constraint("NOT_ONE_OF", ["free"], "plan"),
    constraint("GREATER", [1, 7.5], "n"),
    constraint("LOWER_OR_EQUAL", [10, 3], "n"),
    constraint("CONTAINS", ["a", "b"], "email"),
    constraint("DOESNT_CONTAIN", ["@"], "email"),
    constraint("DOESNT_START_WITH", ["x", "y"], "email"),
    constraint("DOESNT_EXIST", prop="gone"),
]
SAMPLE_CONTEXTS = [
    {},
    {"plan": "pro", "n": 8, "email": "ab", "$userId": "u"},
    {"plan": 5, "n": 3.0, "email": "x@y"},
    {"plan": True, "n": True, "email": None, "gone": 1},
    {"plan": 5.0, "n": 10**400, "email": "yab", "$userId": "v"},
    {"plan": False, "n": float("nan"), "email": "b"},
    {"plan": "team", "n": -1, "email": "ba", "gone": None, "$userId": "w"},
]


def test_every_inline_form_and_fallback_against_the_loop():
    flags = [
        flag_doc(key=f"c{index}", rules=[rule(body), rule(distributions=split(("hit", 50), ("miss", 50)))])
        for index, body in enumerate(MIXED_VALUES)
    ]
    flags.append(flag_doc(key="all", rules=[rule(*MIXED_VALUES)]))
    compiled = compile_flag_set(document(*flags), SOURCE).flags.values()
    for flag in compiled:
        for context in SAMPLE_CONTEXTS:
            assert flag.fast is not None
            assert flag.fast(context) is evaluate_rules(flag, context), (flag.key, context)
            assert evaluate(flag, context) is evaluate_rules(flag, context)


def test_flags_of_one_shape_share_code_and_user_text_never_enters_the_source():
    odd = "pl'an\"\n) or True #"
    flags = [
        flag_doc(key=f"shape-{index}", rules=[rule(constraint("ONE_OF", [f"v{index}", odd], prop))])
        for index, prop in enumerate(["plan", odd, "x"])
    ]
    compiled = list(compile_flag_set(document(*flags), SOURCE).flags.values())
    codes = {flag.fast.__code__ for flag in compiled if flag.fast is not None}
    assert len(codes) == 1
    assert all(odd not in text for text in _shapes)
    assert compiled[1].fast({odd: odd}).variant == "hit"
    assert compiled[1].fast({odd: "v0"}).variant == "miss"
    assert compiled[1].fast({odd: "v1"}).variant == "hit"


def test_segments_and_splits_go_through_the_fast_path():
    in_beta = constraint("IS_IN_SEGMENT", ["beta"], prop=None)
    doc = document(
        flag_doc(
            key="seg-split",
            rules=[
                rule(in_beta, distributions=split(("hit", 30), ("miss", 70)), bucket_by="account"),
                rule(constraint("ISNT_IN_SEGMENT", ["beta"], prop=None)),
            ],
        ),
        segments=[segment("beta", [constraint("ONE_OF", ["pro"], "plan")])],
    )
    flag = compile_flag_set(doc, SOURCE).flags["seg-split"]
    for context in ({"plan": "pro", "account": "a1"}, {"plan": "pro"}, {"plan": "free"}, {}):
        assert flag.fast is not None
        assert flag.fast(context) is evaluate_rules(flag, context)
        assert evaluate(flag, context, debug=True).variant == flag.fast(context).variant


SEGMENT_SHAPES = [
    segment("pro", [constraint("ONE_OF", ["pro"], "plan")]),
    segment("any-of", [constraint("GREATER", [5], "n")], [constraint("ENDS_WITH", ["@x.io"], "email")]),
    segment("nobody"),  # no rules: nobody is in it
    segment("everybody", []),  # one rule without constraints: everybody is in it
    segment("nested", [constraint("IS_IN_SEGMENT", ["pro"], prop=None), constraint("EXISTS", prop="email")]),
    segment(
        "regex",
        [constraint("MATCHES_REGEX", ["^b"], "email"), constraint("ISNT_IN_SEGMENT", ["nested"], prop=None)],
    ),
]
SEGMENT_FLAGS = [
    flag_doc(
        key=f"in-{index}",
        rules=[rule(constraint(operation, keys, prop=None), constraint("EXISTS", prop="plan"))],
    )
    for index, (operation, keys) in enumerate(
        (operation, keys)
        for operation in ("IS_IN_SEGMENT", "ISNT_IN_SEGMENT")
        for keys in (
            ["pro"],
            ["pro", "any-of"],
            ["nobody"],
            ["everybody"],
            ["nested", "regex"],
            ["any-of", "nobody"],
        )
    )
]
segment_contexts = st.fixed_dictionaries(
    {},
    optional={
        "plan": st.sampled_from(["pro", "free", 5, None]),
        "n": st.sampled_from([3, 6, 7.5, "9", True]),
        "email": st.sampled_from(["a@x.io", "b@y.io", "bob", 4]),
    },
)


@settings(max_examples=200, deadline=None)
@given(context=segment_contexts)
def test_segments_written_out_inline_answer_as_the_loop(context):
    compiled = compile_flag_set(document(*SEGMENT_FLAGS, segments=SEGMENT_SHAPES), SOURCE).flags.values()
    for flag in compiled:
        assert flag.fast is not None
        assert flag.fast(context) is evaluate_rules(flag, context), (flag.key, context)


def test_past_the_inline_budget_a_segment_is_one_call_to_its_predicate():
    wide = [
        constraint("ONE_OF", [f"v{index}"], f"p{index}") for index in range(MAX_INLINE_SEGMENT_CONSTRAINTS)
    ]
    doc = document(
        flag_doc(key="small", rules=[rule(constraint("IS_IN_SEGMENT", ["one"], prop=None))]),
        flag_doc(
            key="big",
            rules=[
                rule(
                    constraint("IS_IN_SEGMENT", ["one"], prop=None),
                    constraint("IS_IN_SEGMENT", ["wide"], prop=None),
                )
            ],
        ),
        segments=[segment("one", [constraint("ONE_OF", ["v0"], "p0")]), segment("wide", wide)],
    )
    flags = compile_flag_set(doc, SOURCE).flags

    def called(flag_key: str) -> set[str]:
        """The segments whose compiled predicate the flag's fast path calls."""
        flag = flags[flag_key]
        closure = list(flag.fast.__defaults__)
        return {c.segments[0].key for r in flag.rules for c in r.constraints if c.test in closure}

    assert called("small") == set()  # written out
    assert called("big") == {"wide"}  # "one" fits the budget, "wide" (64 more) does not
    every = {f"p{index}": f"v{index}" for index in range(MAX_INLINE_SEGMENT_CONSTRAINTS)}
    for context in ({}, every, {**every, "p5": "no"}):
        assert flags["big"].fast(context) is evaluate_rules(flags["big"], context)


@settings(max_examples=300, deadline=None)
@given(account=any_text | st.sampled_from(["josé", "ü\U0001f600", "a\udc80b", "\ud800"]))
def test_split_hashes_any_text_as_bucketing_does(account):
    # Inline hashing covers valid text; a lone surrogate takes bucket()'s own path (mmh3 would crash on it).
    doc = document(
        flag_doc(key="k\udc80ey", rules=[rule(distributions=split(("hit", 50), ("miss", 50)), bucket_by="a")])
    )
    flag = compile_flag_set(doc, SOURCE).flags["k\udc80ey"]
    assert flag.fast({"a": account}) is evaluate_rules(flag, {"a": account})


REPEATED_RULES = [
    rule(constraint("ONE_OF", ["pro", "team"], "plan"), constraint("IS_IN_SEGMENT", ["beta"], prop=None)),
    rule(
        constraint("GREATER", [5], "n"), distributions=split(("hit", 30), ("miss", 70)), bucket_by="account"
    ),
]


def _repeated_rule_flags():
    """Flags of the same rules (equal text, as a flag file repeats them) whose own parts differ: keys,
    variant values, split shares, defaults; and two whose rules only look alike."""
    flags = []
    for index in range(6):
        variants = [{"key": "hit", "value": f"h{index}"}, {"key": "miss", "value": f"m{index}"}]
        rules = [
            REPEATED_RULES[0],
            rule(
                *REPEATED_RULES[1]["constraints"],
                bucket_by="account",
                distributions=split(("hit", 10 + 10 * index), ("miss", 90 - 10 * index)),
            ),
        ]
        flags.append(
            flag_doc(key=f"same-{index}", rules=rules, variants=variants, on="hit" if index % 2 else "miss")
        )
    flags.append(
        flag_doc(key="single-not-split", rules=[REPEATED_RULES[0], rule(constraint("GREATER", [5], "n"))])
    )
    flags.append(
        flag_doc(key="other-bucket", rules=[REPEATED_RULES[0], {**REPEATED_RULES[1], "bucketBy": "org"}])
    )
    return flags


@settings(max_examples=200, deadline=None)
@given(context=contexts, account=any_text, plan=st.sampled_from(["pro", "team", "free"]), n=st.integers(0, 9))
def test_flags_of_the_same_rules_reuse_one_plan_and_answer_each_as_the_loop(context, account, plan, n):
    doc = document(
        *_repeated_rule_flags(), segments=[segment("beta", [constraint("EXISTS", prop="account")])]
    )
    flags = compile_flag_set(doc, SOURCE).flags
    same = [flags[f"same-{index}"] for index in range(6)]
    assert len({flag.fast.__code__ for flag in same}) == 1
    context = {**context, "plan": plan, "n": n, "account": account, "org": account[::-1]}
    for flag in flags.values():
        assert flag.fast is not None
        assert flag.fast(context) is evaluate_rules(flag, context), (flag.key, context)


@settings(max_examples=200, deadline=None)
@given(context=contexts)
def test_answering_returns_the_translation_of_the_answer_the_fast_path_gives(context):
    for flag in all_flags():
        if flag.fast is not None:
            translated = answering(flag.fast, lambda answer: ("translated", answer))
            assert translated(context) == ("translated", flag.fast(context)), flag.key


def test_answering_translates_each_answer_once_and_leaves_the_fast_path_as_it_was():
    doc = document(
        flag_doc(
            "s", [rule(constraint("ONE_OF", ["pro"], "plan"), distributions=split(("hit", 50), ("miss", 50)))]
        )
    )
    flag = compile_flag_set(doc, SOURCE).flags["s"]
    made: list[object] = []

    def translate(answer):
        made.append(answer)
        return ("translated", answer)

    translated = answering(flag.fast, translate)
    assert len(made) == len({id(answer) for answer in made})  # each distinct answer once
    for user in ("u1", "u2", "u3", "u4", "u5"):
        context = {"plan": "pro", "$userId": user}
        assert translated(context)[1] is flag.fast(context) is evaluate_rules(flag, context)
        assert translated(context) is translated(context)  # made once, not per call
    assert translated({"plan": "free"}) == ("translated", flag.default_answer)


def test_reads_reserved_is_true_where_a_flag_reads_the_user_id():
    segments = [
        segment("ids", [constraint("ONE_OF", ["u1"], "$userId")]),
        segment("pros", [constraint("ONE_OF", ["pro"], "plan")]),
    ]
    doc = document(
        flag_doc("rules", [rule(constraint("ONE_OF", ["pro"], "plan"), constraint("GREATER", [3], "n"))]),
        flag_doc("by-id", [rule(constraint("ONE_OF", ["u1"], "$userId"))]),
        flag_doc("split", [rule(distributions=split(("hit", 50), ("miss", 50)))]),
        flag_doc(
            "split-by-account", [rule(distributions=split(("hit", 50), ("miss", 50)), bucket_by="accountId")]
        ),
        flag_doc("in-ids", [rule(constraint("IS_IN_SEGMENT", ["ids"], None))]),
        flag_doc("in-pros", [rule(constraint("IS_IN_SEGMENT", ["pros"], None))]),
        flag_doc("off-by-id", [rule(constraint("ONE_OF", ["u1"], "$userId"))], enabled=False),
        segments=segments,
    )
    flags = compile_flag_set(doc, SOURCE).flags
    assert {key: reads_reserved(flag) for key, flag in flags.items()} == {
        "rules": False,
        "by-id": True,
        "split": True,
        "split-by-account": False,
        "in-ids": True,
        "in-pros": False,
        "off-by-id": False,
    }


@settings(max_examples=200, deadline=None)
@given(context=contexts)
def test_a_flag_that_reads_no_reserved_key_answers_the_same_without_the_user_id(context):
    without = {key: value for key, value in context.items() if not key.startswith("$")}
    for flag in all_flags():
        if not reads_reserved(flag):
            assert evaluate(flag, without) is evaluate(flag, {**without, "$userId": "user-1"}), flag.key

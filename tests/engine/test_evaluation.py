"""Evaluation semantics: rule order, reasons, defaults, splits and their bucket attribute."""

import mmh3
import pytest
import yaml

from sidecar.engine import (
    ErrorCode,
    Reason,
    bucket,
    build_context,
    compile_flag_set,
    evaluate,
    evaluate_plan,
    evaluation_plan,
    flag_not_found,
)
from sidecar.engine.evaluator import evaluate_rules

from .helpers import EXAMPLES, SOURCE, compile_one, constraint, document, flag_doc, rule, run, split

COLORS = [
    {"key": "red", "value": "#f00"},
    {"key": "green", "value": "#0f0"},
    {"key": "blue", "value": "#00f"},
]


def expected_bucket(flag_key, text):
    h = mmh3.hash(f"{flag_key}:{text}".encode(), 0, signed=False)
    return (h * 10000) >> 32


# ---------------------------------------------------------------- rule order


ORDERED = document(
    flag_doc(
        variants=COLORS,
        on="blue",
        off="blue",
        rules=[
            rule(constraint("ONE_OF", ["pro"], "plan"), serve="red", rule_id="pro"),
            rule(constraint("ONE_OF", ["eu"], "region"), serve="green", rule_id="eu"),
            rule(constraint("EXISTS", prop="plan"), serve="blue", rule_id="any-plan"),
        ],
    )
)


@pytest.mark.parametrize(
    ("attrs", "variant", "reason"),
    [
        pytest.param({"plan": "pro", "region": "eu"}, "red", Reason.TARGETING_MATCH, id="both-first-wins"),
        pytest.param({"plan": "free", "region": "eu"}, "green", Reason.TARGETING_MATCH, id="second"),
        pytest.param({"plan": "free"}, "blue", Reason.TARGETING_MATCH, id="third"),
        pytest.param({"region": "us"}, "blue", Reason.DEFAULT, id="none-default"),
    ],
)
def test_first_matching_rule_wins(attrs, variant, reason):
    result = run(compile_one(ORDERED), attrs)
    assert (result.variant, result.reason) == (variant, reason)


def test_rule_constraints_are_anded():
    flag = compile_one(
        document(
            flag_doc(rules=[rule(constraint("ONE_OF", ["pro"], "plan"), constraint("EXISTS", prop="x"))])
        )
    )
    assert run(flag, {"plan": "pro", "x": 1}).variant == "hit"
    assert run(flag, {"plan": "pro"}).variant == "miss"
    assert run(flag, {"x": 1}).variant == "miss"


def test_rule_without_constraints_matches_everyone():
    flag = compile_one(document(flag_doc(rules=[rule()])))
    assert run(flag, {}).variant == "hit"


# ---------------------------------------------------------------- reasons


def test_static_when_enabled_without_rules():
    result = run(compile_one(document(flag_doc(on="hit"))))
    assert (result.value, result.variant, result.reason, result.error_code) == (
        True,
        "hit",
        Reason.STATIC,
        None,
    )


def test_default_when_no_rule_matches():
    flag = compile_one(document(flag_doc(rules=[rule(constraint("EXISTS", prop="x"))], on="miss")))
    result = run(flag, {})
    assert (result.value, result.variant, result.reason) == (False, "miss", Reason.DEFAULT)


def test_targeting_match_for_single_variant_at_100():
    flag = compile_one(document(flag_doc(rules=[rule(constraint("EXISTS", prop="x"))])))
    result = run(flag, {"x": 1})
    assert (result.value, result.variant, result.reason) == (True, "hit", Reason.TARGETING_MATCH)


@pytest.mark.parametrize(
    "shares",
    [
        pytest.param([("hit", 100), ("miss", 0)], id="on-100-off-0"),
        pytest.param([("miss", 0), ("hit", 100)], id="off-0-on-100"),
        pytest.param([("miss", 0.0), ("hit", 100.0)], id="floats"),
    ],
)
def test_split_with_one_variant_at_100_is_targeting_match(shares):
    flag = compile_one(document(flag_doc(rules=[rule(distributions=split(*shares))])))
    for user in ("u1", "u2", "u3", "u4"):
        result = run(flag, {}, user_id=user)
        assert (result.variant, result.reason) == ("hit", Reason.TARGETING_MATCH)


def test_split_reason():
    flag = compile_one(document(flag_doc(rules=[rule(distributions=split(("hit", 50), ("miss", 50)))])))
    results = {run(flag, {}, user_id=f"user-{i}").variant for i in range(50)}
    assert results == {"hit", "miss"}
    assert run(flag, {}, user_id="user-1").reason is Reason.SPLIT


def test_disabled_serves_off_default():
    flag = compile_one(
        document(flag_doc(enabled=False, on="hit", off="miss", rules=[rule(constraint("EXISTS", prop="x"))]))
    )
    result = run(flag, {"x": 1})  # rules are not consulted
    assert (result.value, result.variant, result.reason) == (False, "miss", Reason.DISABLED)


@pytest.mark.parametrize(
    ("doc", "reason", "default_name", "warned"),
    [
        pytest.param(
            flag_doc(key="no-on", on=None), Reason.DEFAULT, "defaultVariantWhenOn", True, id="static"
        ),
        pytest.param(
            flag_doc(key="no-on", on=None, rules=[rule(constraint("EXISTS", prop="x"))]),
            Reason.DEFAULT,
            "defaultVariantWhenOn",
            False,  # legitimate when the rules cover everyone
            id="fallthrough",
        ),
        pytest.param(
            # A split on a missing bucket attribute does not match: the fast path's inline hash.
            flag_doc(key="no-on", on=None, rules=[rule(distributions=split(("hit", 50), ("miss", 50)))]),
            Reason.DEFAULT,
            "defaultVariantWhenOn",
            False,
            id="split-without-bucket-value",
        ),
        pytest.param(
            flag_doc(key="no-on", enabled=False, off=None, on="hit"),
            Reason.DISABLED,
            "defaultVariantWhenOff",
            True,
            id="disabled",
        ),
    ],
)
def test_missing_default_answers_no_value_on_every_path(doc, reason, default_name, warned):
    """DESIGN.md, Evaluation semantics 5: no value, no variant, no error; the trace says why."""
    flag_set = compile_flag_set(document(doc), SOURCE)
    assert bool(flag_set.warnings) is warned  # a flag that never has a value is also reported on load
    flag = flag_set.flags["no-on"]
    context = build_context("", {})  # no user id: a split has no bucket value
    answers = [
        evaluate(flag, context),
        evaluate(flag, context, debug=True),
        *evaluate_plan(evaluation_plan([flag]), context),
    ]
    if flag.enabled and flag.rules:
        answers.append(evaluate_rules(flag, context))  # the interpreted loop the fast path replaces
    for answer in answers:
        assert (answer.value, answer.variant, answer.reason) == (None, "", reason)
        assert answer.error_code is None
        assert not answer.has_value
        assert answer.error_message == ""
    last = evaluate(flag, context, debug=True).stack_trace[-1]
    assert (last.type, last.id, last.matched) == ("default", default_name, False)
    assert f"no {default_name} is set" in last.detail
    assert "code default" in last.detail


def test_missing_on_default_is_no_error_when_a_rule_matches():
    flag = compile_one(document(flag_doc(on=None, rules=[rule(constraint("EXISTS", prop="x"))])))
    assert run(flag, {"x": 1}).reason is Reason.TARGETING_MATCH


def test_flag_not_found():
    result = flag_not_found("nope")
    assert (result.reason, result.error_code, result.value, result.variant) == (
        Reason.ERROR,
        ErrorCode.FLAG_NOT_FOUND,
        None,
        "",
    )
    assert "nope" in result.error_message


def test_evaluation_carries_flag_key_version_and_track_events():
    flag = compile_one(document(flag_doc(key="k", on="hit", version=7, trackEvents=False)), key="k")
    result = run(flag)
    assert (result.flag_key, result.flag_version, result.track_events) == ("k", 7, False)
    default = compile_one(document(flag_doc(key="k", on="hit")), key="k")
    assert (default.version, run(default).track_events) == (1, True)


def test_variant_values_of_any_json_type_are_served_as_is():
    variants = [{"key": "a", "value": {"engine": "vector", "n": [1, 2]}}, {"key": "b", "value": {}}]
    flag = compile_one(document(flag_doc(variants=variants, on="a", off="b")))
    assert run(flag).value == {"engine": "vector", "n": [1, 2]}


# ---------------------------------------------------------------- splits and the bucket attribute


def two_way(bucket_by=None, then=()):
    return document(
        flag_doc(
            key="split",
            variants=COLORS,
            on="blue",
            off="blue",
            rules=[
                rule(distributions=split(("red", 50), ("green", 50)), bucket_by=bucket_by, rule_id="split"),
                *then,
            ],
        )
    )


def served_by_bucket(flag_key, text, boundary=5000):
    return "red" if expected_bucket(flag_key, text) < boundary else "green"


def test_split_buckets_on_user_id_by_default():
    flag = compile_one(two_way(), key="split")
    for i in range(40):
        user = f"user-{i}"
        assert run(flag, {}, user_id=user).variant == served_by_bucket("split", user)


def test_bucket_by_custom_attribute():
    flag = compile_one(two_way(bucket_by="accountId"), key="split")
    for i in range(40):
        account = f"acct-{i}"
        variants = {run(flag, {"accountId": account}, user_id=f"user-{j}").variant for j in range(5)}
        assert variants == {served_by_bucket("split", account)}  # every user of an account agrees


@pytest.mark.parametrize(
    "attrs",
    [
        pytest.param({}, id="missing"),
        pytest.param({"accountId": None}, id="null"),
    ],
)
def test_missing_bucket_attribute_falls_to_next_rule(attrs):
    then = [rule(serve="red", rule_id="next")]
    result = run(compile_one(two_way(bucket_by="accountId", then=then), key="split"), attrs)
    assert (result.variant, result.reason) == ("red", Reason.TARGETING_MATCH)


def test_missing_bucket_attribute_falls_to_default():
    result = run(compile_one(two_way(bucket_by="accountId"), key="split"), {"other": "x"})
    assert (result.variant, result.reason) == ("blue", Reason.DEFAULT)


def test_empty_user_id_makes_default_split_not_match():
    result = run(compile_one(two_way(), key="split"), {}, user_id="")
    assert (result.variant, result.reason) == ("blue", Reason.DEFAULT)


@pytest.mark.parametrize("value", [[1], {"a": 1}], ids=["list", "object"])
def test_unbucketable_value_makes_split_not_match(value):
    flag = compile_one(two_way(bucket_by="k"), key="split")
    for debug in (False, True):
        assert evaluate(flag, {"k": value, "$userId": "u"}, debug=debug).reason is Reason.DEFAULT


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(42, "42", id="int"),
        pytest.param(42.0, "42", id="whole-float"),
        pytest.param(-7.0, "-7", id="negative-whole-float"),
        pytest.param(1e16, "10000000000000000", id="large-whole-float"),
        pytest.param(2.5, "2.5", id="fraction"),
        pytest.param(True, "true", id="true"),
        pytest.param(False, "false", id="false"),
        pytest.param("42", "42", id="string"),
        pytest.param("", "", id="empty-string"),
    ],
)
def test_bucket_value_text(value, text):
    flag = compile_one(two_way(bucket_by="n"), key="split")
    result = evaluate(flag, build_context("u", {"n": value}), debug=True)
    [distribution] = [s for s in result.stack_trace if s.type == "distribution"]
    assert distribution.bucket == expected_bucket("split", text)
    assert result.variant == served_by_bucket("split", text)


def test_whole_float_and_int_land_in_the_same_bucket():
    flag = compile_one(two_way(bucket_by="n"), key="split")
    for n in range(100):
        assert run(flag, {"n": n}).variant == run(flag, {"n": float(n)}).variant


def test_boolean_and_string_true_share_a_bucket_text():
    flag = compile_one(two_way(bucket_by="b"), key="split")
    assert run(flag, {"b": True}).variant == run(flag, {"b": "true"}).variant
    assert run(flag, {"b": False}).variant == run(flag, {"b": "false"}).variant


def test_distributions_take_consecutive_ranges_in_listed_order():
    doc = document(
        flag_doc(
            key="three",
            variants=COLORS,
            on="blue",
            off="blue",
            rules=[rule(distributions=split(("red", 10.5), ("green", 0), ("blue", 89.5)))],
        )
    )
    flag = compile_one(doc, key="three")
    for i in range(300):
        user = f"u{i}"
        position = expected_bucket("three", user)
        expected = "red" if position < 1050 else "blue"
        assert run(flag, {}, user_id=user).variant == expected


@pytest.mark.parametrize(
    ("user", "position", "variant"),
    [
        pytest.param("edge-21984", 2499, "red", id="last-bucket-of-first-range"),
        pytest.param("edge-2292", 2500, "green", id="first-bucket-of-second-range"),
    ],
)
def test_bucket_boundaries_are_half_open(user, position, variant):
    doc = document(
        flag_doc(
            key="edge",
            variants=COLORS,
            on="blue",
            off="blue",
            rules=[rule(distributions=split(("red", 25), ("green", 75)))],
        )
    )
    assert bucket("edge", user) == expected_bucket("edge", user) == position
    assert run(compile_one(doc, key="edge"), {}, user_id=user).variant == variant


# ---------------------------------------------------------------- the bundled example


@pytest.fixture(scope="module")
def example():
    return compile_flag_set(yaml.safe_load(EXAMPLES.read_text()), str(EXAMPLES))


def test_example_file_answers(example):
    checkout = example.flags["new-checkout"]
    staff = run(checkout, {"email": "bob@example.com"})
    assert (staff.value, staff.variant, staff.reason) == (True, "on", Reason.TARGETING_MATCH)
    outsider = run(checkout, {"email": "bob@gmail.com", "plan": "pro"})  # beta, but no accountId
    assert (outsider.variant, outsider.reason) == ("off", Reason.DEFAULT)
    beta = run(checkout, {"plan": "pro", "accountId": "acct-1"})
    assert beta.reason is Reason.SPLIT
    assert beta.variant == ("on" if expected_bucket("new-checkout", "acct-1") < 2500 else "off")

    upload = example.flags["max-upload-mb"]
    assert run(upload, {"plan": "pro", "country": "fr"}).value == 100
    assert run(upload, {"plan": "pro", "country": "XX"}).value == 10

    search = example.flags["search-config"]
    assert run(search, {"ip": "10.2.3.4"}).value == {"engine": "vector", "maxResults": 50}
    assert run(search, {"ip": "8.8.8.8"}).variant == "default"

    maintenance = run(example.flags["maintenance-mode"], {})
    assert (maintenance.value, maintenance.reason) == (False, Reason.DISABLED)

    banner = run(example.flags["banner-color"], {}, user_id="alice")
    assert banner.reason is Reason.SPLIT
    position = expected_bucket("banner-color", "alice")
    assert banner.variant == ("red" if position < 3333 else "green" if position < 6666 else "blue")

"""What compiling shares to keep a large flag set small, and the document it may consume."""

import copy

import yaml

from sidecar.engine import build_context, compile_flag_set, evaluate
from sidecar.engine.operators import ValueSets

from .helpers import EXAMPLES, SOURCE, constraint, document, flag_doc, rule


def plans_flag(key):
    return flag_doc(
        key,
        [
            rule(constraint("ONE_OF", ["pro", "enterprise"], prop="plan"), constraint("EXISTS", prop="x")),
            rule(constraint("NOT_ONE_OF", ["pro", "enterprise"], prop="plan")),
        ],
    )


def cells(predicate):
    return [cell.cell_contents for cell in predicate.__closure__ or ()]


def test_value_sets_are_shared_and_kept_apart_by_kind():
    sets = ValueSets()
    assert sets.get("str", ["a", "b"]) is sets.get("str", ("b", "a"))
    assert sets.get("str", []) is sets.get("number", []) is sets.get("bool", [])
    assert sets.get("number", [1]) is not sets.get("bool", [True])  # {1} == {True}, but not the same set
    assert sets.get("number", [1]) == frozenset({1})


def test_equal_one_of_lists_share_one_set_across_flags():
    flag_set = compile_flag_set(document(plans_flag("a"), plans_flag("b")), SOURCE)
    one_of = [flag.rules[0].constraints[0].test for flag in flag_set.flags.values()]
    not_one_of = flag_set.flags["a"].rules[1].constraints[0].test
    shared = [value for value in cells(one_of[0]) if value == frozenset({"pro", "enterprise"})]
    assert len(shared) == 1
    assert any(value is shared[0] for value in cells(one_of[1]))
    assert any(value is shared[0] for value in cells(not_one_of))
    # The fast path tests that same set (its values are the factory's closure).
    assert any(value is shared[0] for value in cells(flag_set.flags["a"].fast))


def test_rules_serving_the_same_variant_share_one_answer():
    rules = [rule(constraint("EXISTS", prop="x")), rule(constraint("EXISTS", prop="y"))]
    flag = compile_flag_set(document(flag_doc("f", rules)), SOURCE).flags["f"]
    assert flag.rules[0].single is flag.rules[1].single
    assert evaluate(flag, build_context("u", {"y": 1})).variant == "hit"


def test_consume_empties_the_flag_list_and_compiles_the_same():
    doc = yaml.safe_load(EXAMPLES.read_text())
    kept = copy.deepcopy(doc)
    plain = compile_flag_set(doc, SOURCE)
    assert doc == kept  # by default the document is left as it was
    consumed = compile_flag_set(doc, SOURCE, consume=True)
    assert doc["flags"] == [None] * len(kept["flags"])
    assert consumed.flags.keys() == plain.flags.keys()
    assert [flag.fingerprint for flag in consumed.flags.values()] == [
        flag.fingerprint for flag in plain.flags.values()
    ]
    context = build_context("user-1", {"plan": "pro", "country": "PT", "email": "a@example.com"})
    for key, flag in plain.flags.items():
        assert evaluate(consumed.flags[key], context) == evaluate(flag, context)

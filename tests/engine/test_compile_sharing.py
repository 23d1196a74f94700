"""What compiling shares to keep a large flag set small, and the document it may consume."""

import copy

import yaml

from sidecar.engine import build_context, compile_flag_set, evaluate
from sidecar.engine.compiler import fingerprint
from sidecar.engine.definitions import flag_document
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
    # The fast path tests that same set (its values are its parameters' defaults).
    assert any(value is shared[0] for value in flag_set.flags["a"].fast.__defaults__)


def test_equal_constraints_and_rules_are_one_object_across_flags():
    flag_set = compile_flag_set(document(plans_flag("a"), plans_flag("b")), SOURCE)
    a, b = flag_set.flags["a"], flag_set.flags["b"]
    # The compiled constraints (and their predicates) are shared, and so are the definitions.
    assert a.rules[0].constraints[0] is b.rules[0].constraints[0]
    assert a.rules[1].constraints[0].test is b.rules[1].constraints[0].test
    assert a.definition.rules[0] is b.definition.rules[0]
    assert a.definition.variants[0] is b.definition.variants[0]
    assert a.variants["hit"] is a.definition.variants[0]  # the compiled flag serves its definitions
    # Equal in Python, different in a document: ONE_OF [1] and ONE_OF [true] stay apart.
    one = flag_doc("one", [rule(constraint("ONE_OF", [1], prop="n"))])
    true = flag_doc("true", [rule(constraint("ONE_OF", [True], prop="n"))])
    both = compile_flag_set(document(one, true), SOURCE).flags
    assert both["one"].definition.rules[0].constraints[0].values == (1,)
    assert both["true"].definition.rules[0].constraints[0].values == (True,)
    assert evaluate(both["one"], build_context("u", {"n": True})).reason.name == "DEFAULT"
    assert evaluate(both["true"], build_context("u", {"n": True})).variant == "hit"


def test_a_fast_path_holds_its_values_in_one_tuple_not_a_cell_each():
    flag = compile_flag_set(document(plans_flag("a")), SOURCE).flags["a"]
    assert flag.fast.__closure__ is None
    assert len(flag.fast.__defaults__) > 3


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


def test_a_fingerprint_is_its_definitions_digest_when_flags_share_rules():
    # The compile writes a shared rule's text once (orjson.Fragment) for every flag that has it; the
    # digest is the one fingerprint(flag_document(...)) gives, which the store's versions are keyed
    # by. An integer beyond 64 bits, which orjson cannot write, takes fingerprint's own way.
    huge = flag_doc("huge", [rule(constraint("GREATER", [2**70], prop="n"))])
    flag_set = compile_flag_set(document(plans_flag("a"), plans_flag("b"), huge), SOURCE)
    assert flag_set.flags["a"].definition.rules[0] is flag_set.flags["b"].definition.rules[0]
    for flag in flag_set.flags.values():
        assert flag.fingerprint == fingerprint(flag_document(flag.definition))
    assert flag_set.flags["a"].fingerprint != flag_set.flags["b"].fingerprint  # the keys differ

"""The operator table (operators.SPECS) is the one place an operation is defined: flag.proto's
Operation enum, the README's operator table, the compiler and the fast path all follow it."""

import re

import semver
from hypothesis import given, settings
from hypothesis import strategies as st

from flagsidecar.v1 import flag_pb2
from sidecar.engine import OPERATIONS, compile_flag_set
from sidecar.engine.evaluator import evaluate_rules
from sidecar.engine.fastpath import _Source
from sidecar.engine.operators import OPERATORS, SPECS, compile_constraint, parse_version

from .helpers import ROOT, SOURCE, constraint, document, flag_doc, rule
from .test_properties import EVERY_OPERATOR_SEGMENTS, values, values_for


def test_every_proto_operation_has_exactly_one_spec_and_back():
    proto = dict(flag_pb2.Operation.items())
    assert proto.pop("OPERATION_UNSPECIFIED") == 0
    assert {spec.name: spec.number for spec in SPECS} == proto
    assert len({spec.number for spec in SPECS}) == len(SPECS) == len(OPERATORS)
    assert tuple(spec.name for spec in sorted(SPECS, key=lambda spec: spec.number)) == OPERATIONS


FLAGGIO = """ONE_OF NOT_ONE_OF GREATER GREATER_OR_EQUAL LOWER LOWER_OR_EQUAL EXISTS DOESNT_EXIST CONTAINS
DOESNT_CONTAIN STARTS_WITH DOESNT_START_WITH ENDS_WITH DOESNT_END_WITH MATCHES_REGEX DOESNT_MATCH_REGEX
IS_IN_SEGMENT ISNT_IN_SEGMENT IS_IN_NETWORK"""


def test_flaggios_nineteen_keep_their_names_and_numbers():
    assert [(spec.number, spec.name) for spec in SPECS[:19]] == list(enumerate(FLAGGIO.split(), start=1))


def readme_operator_rows() -> list[list[str]]:
    """The operation names in each row of the README's operator table."""
    text = (ROOT / "README.md").read_text()
    table = text.split("| operation | holds when |\n|---|---|\n", 1)[1].split("\n\n", 1)[0]
    return [re.findall(r"`([A-Z_]+)`", row.split("|")[1]) for row in table.splitlines()]


def test_the_readme_operator_table_lists_every_spec_once():
    listed = [name for row in readme_operator_rows() for name in row]
    assert sorted(listed) == sorted(OPERATIONS)
    assert all(readme_operator_rows())


def test_every_complement_names_an_operation():
    for spec in SPECS:
        if spec.complement is not None:
            assert OPERATORS[spec.complement].complement is None, spec.name
            assert OPERATORS[spec.complement].values is spec.values, spec.name


def _one_constraint_flags(context_property="x"):
    flags = [
        flag_doc(
            key=spec.name,
            rules=[
                rule(
                    constraint(spec.name, values_for(spec), None if spec.tests_segments else context_property)
                )
            ],
        )
        for spec in SPECS
    ]
    return compile_flag_set(document(*flags, segments=EVERY_OPERATOR_SEGMENTS), SOURCE).flags


def test_the_fast_path_writes_out_exactly_the_specs_with_a_template():
    for name, flag in _one_constraint_flags().items():
        spec, [compiled] = OPERATORS[name], flag.rules[0].constraints
        inlined = spec.inline is not None and spec.inline(_Source(), compiled) is not None
        closure = list(flag.fast.__defaults__)
        assert (compiled.test in closure) is not inlined, name
        assert compiled.arguments is not None or spec.values.accepts is None, name


# Any value the typing rule calls a mismatch: of a type the operation does not read, or null.
@settings(max_examples=200, deadline=None)
@given(value=values)
def test_every_spec_keeps_its_typing_rule(value):
    flags = _one_constraint_flags()
    for spec in SPECS:
        if spec.on_mismatch is None or (spec.reads is not None and type(value) in spec.reads):
            continue
        if spec.reads is None and value is not None:
            continue
        flag = flags[spec.name]
        expected = "hit" if spec.on_mismatch else "miss"
        for context in ({"x": value}, {}):
            assert flag.fast(context).variant == expected, (spec.name, context)
            assert evaluate_rules(flag, context).variant == expected, (spec.name, context)


def test_a_constraint_compiles_from_its_spec_alone():
    built = compile_constraint("v", "SEMVER_GREATER_OR_EQUAL", ["1.2", "v1.10.0"])
    assert built.arguments == parse_version("1.10.0")  # parsed once, at compile time: the highest
    assert built.test({"v": "1.10.0"})
    assert not built.test({"v": "1.9.9"})


# ---------------------------------------------------------------- semantic versions vs the library

numbers = st.integers(0, 12) | st.integers(0, 2**70)
identifiers = st.from_regex(r"(0|[1-9][0-9]{0,3}|[0-9]{0,2}[a-zA-Z-][0-9a-zA-Z-]{0,3})", fullmatch=True)
versions = st.builds(
    lambda major, minor, patch, pre: f"{major}.{minor}.{patch}" + (f"-{'.'.join(pre)}" if pre else ""),
    numbers,
    st.integers(0, 3),
    st.integers(0, 3),
    st.lists(identifiers, max_size=3),
)
spellings = st.tuples(st.sampled_from(["", "v", "V"]), st.sampled_from(["", "+build", "+b.1-x"]))


def spelled(version, spelling):
    prefix, build = spelling
    return f"{prefix}{version}{build}"


@settings(max_examples=300, deadline=None)
@given(user=versions, target=versions, user_spelling=spellings, target_spelling=spellings)
def test_version_comparisons_agree_with_the_semver_library(user, target, user_spelling, target_spelling):
    expected = semver.Version.parse(user).compare(target)
    outcomes = {
        "SEMVER_EQUAL": expected == 0,
        "SEMVER_NOT_EQUAL": expected != 0,
        "SEMVER_LOWER": expected < 0,
        "SEMVER_LOWER_OR_EQUAL": expected <= 0,
        "SEMVER_GREATER": expected > 0,
        "SEMVER_GREATER_OR_EQUAL": expected >= 0,
        "SEMVER_SAME_MAJOR": semver.Version.parse(user).major == semver.Version.parse(target).major,
        "SEMVER_SAME_MINOR": semver.Version.parse(user).to_tuple()[:2]
        == semver.Version.parse(target).to_tuple()[:2],
    }
    context = {"v": spelled(user, user_spelling)}
    for operation, holds in outcomes.items():
        built = compile_constraint("v", operation, [spelled(target, target_spelling)])
        assert built.test(context) is holds, (operation, context, target)

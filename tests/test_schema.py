"""The schema round trips (sidecar/schema.py): document <-> definition <-> flagsidecar.v1 messages
lose nothing, over generated valid definitions (hypothesis)."""

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flagsidecar.v1 import flag_pb2
from sidecar import schema
from sidecar.engine import (
    ConstraintDefinition,
    DistributionDefinition,
    FlagDefinition,
    FlagRuleDefinition,
    FlagSetDefinition,
    FlagSetError,
    SegmentDefinition,
    SegmentRuleDefinition,
    VariantDefinition,
    build_context,
    compile_flag_set,
    evaluate,
)
from sidecar.engine.compiler import fingerprint
from sidecar.engine.definitions import flag_document

# Valid UTF-8 text (a lone surrogate is no text: the document refuses it, protobuf cannot carry it).
TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=8)
WORD = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=8)
INTEGERS = st.integers(-(2**53), 2**53)
# Whole floats are left out: protobuf's one number type reads 1.0 back as 1 (schema's docstring).
FRACTIONS = st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer())
NUMBERS = INTEGERS | FRACTIONS
SCALARS = TEXT | NUMBERS | st.booleans()
JSON = st.recursive(
    st.none() | SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
VARIANT_VALUES = {
    "string": TEXT,
    "number": NUMBERS,
    "boolean": st.booleans(),
    "object": st.dictionaries(TEXT, JSON, max_size=3),
    "array": st.lists(JSON, max_size=3),
}
VALUES = {
    "ONE_OF": st.lists(SCALARS, min_size=1, max_size=4),
    "NOT_ONE_OF": st.lists(SCALARS, min_size=1, max_size=4),
    "GREATER": st.lists(NUMBERS, min_size=1, max_size=2),
    "LOWER_OR_EQUAL": st.lists(NUMBERS, min_size=1, max_size=2),
    "EXISTS": st.just([]),
    "DOESNT_EXIST": st.just([]),
    "CONTAINS": st.lists(TEXT, min_size=1, max_size=3),
    "DOESNT_START_WITH": st.lists(TEXT, min_size=1, max_size=3),
    "ENDS_WITH": st.lists(TEXT, min_size=1, max_size=3),
    "MATCHES_REGEX": st.lists(st.sampled_from(["^a", "b+c", r"\d{3}", "(x|y)z"]), min_size=1, max_size=2),
    "IS_IN_NETWORK": st.lists(st.sampled_from(["10.0.0.0/8", "192.168.1.7", "::1/128"]), min_size=1),
    "SEMVER_GREATER": st.lists(st.sampled_from(["1.2.3", "v2.0.0-rc.1", "0.1.0+build"]), min_size=1),
}


@st.composite
def constraints(draw, segment_keys):
    operations = list(VALUES) + (["IS_IN_SEGMENT", "ISNT_IN_SEGMENT"] if segment_keys else [])
    operation = draw(st.sampled_from(operations))
    if operation.endswith("_SEGMENT"):
        keys = draw(st.lists(st.sampled_from(segment_keys), min_size=1, max_size=2, unique=True))
        return ConstraintDefinition(draw(st.just("") | WORD), operation, tuple(keys))
    return ConstraintDefinition(draw(WORD), operation, tuple(draw(VALUES[operation])))


def rule_ids(count):
    # Unique as the validator counts them: an absent id is named by the rule's index.
    return st.lists(st.just("") | WORD.map(lambda word: f"r-{word}"), min_size=count, max_size=count).filter(
        lambda ids: len({rule_id or str(i) for i, rule_id in enumerate(ids)}) == count
    )


@st.composite
def distributions(draw, variant_keys):
    keys = draw(st.lists(st.sampled_from(variant_keys), min_size=1, unique=True))
    cuts = sorted(draw(st.lists(st.integers(0, 10_000), min_size=len(keys) - 1, max_size=len(keys) - 1)))
    bounds = [0, *cuts, 10_000]
    shares = []
    for key, start, end in zip(keys, bounds, bounds[1:], strict=False):
        basis_points = end - start
        percentage = basis_points // 100 if basis_points % 100 == 0 else basis_points / 100
        shares.append(DistributionDefinition(key, percentage))
    return tuple(shares)


@st.composite
def segments(draw):
    keys = draw(st.lists(WORD, max_size=3, unique=True))
    built = []
    for index, key in enumerate(keys):
        earlier = keys[:index]  # references only to earlier segments: no cycle
        count = draw(st.integers(0, 2))
        ids = draw(st.lists(TEXT, min_size=count, max_size=count))
        rules = tuple(
            SegmentRuleDefinition(rule_id, tuple(draw(st.lists(constraints(earlier), max_size=2))))
            for rule_id in ids
        )
        built.append(SegmentDefinition(key, draw(TEXT), draw(TEXT), rules))
    return built


@st.composite
def flags(draw, key, segment_keys):
    kind = draw(st.sampled_from(sorted(VARIANT_VALUES)))
    variant_keys = draw(st.lists(WORD, min_size=1, max_size=3, unique=True))
    variants = tuple(
        VariantDefinition(variant, draw(VARIANT_VALUES[kind]), draw(TEXT)) for variant in variant_keys
    )
    count = draw(st.integers(0, 3))
    rules = tuple(
        FlagRuleDefinition(
            rule_id,
            tuple(draw(st.lists(constraints(segment_keys), max_size=3))),
            draw(distributions(variant_keys)),
            draw(st.just("") | WORD),
        )
        for rule_id in draw(rule_ids(count))
    )
    default = st.none() | st.sampled_from(variant_keys)
    return FlagDefinition(
        key=key,
        enabled=draw(st.booleans()),
        variants=variants,
        name=draw(TEXT),
        description=draw(TEXT),
        version=draw(st.none() | st.integers(1, 2**53)),
        rules=rules,
        default_variant_when_on=draw(default),
        default_variant_when_off=draw(default),
        track_events=draw(st.booleans()),
        metadata=draw(st.dictionaries(TEXT, JSON, max_size=3)),
    )


@st.composite
def flag_sets(draw):
    segment_list = draw(segments())
    keys = [segment.key for segment in segment_list]
    flag_keys = draw(st.lists(WORD, max_size=3, unique=True))
    return FlagSetDefinition(tuple(draw(flags(key, keys)) for key in flag_keys), tuple(segment_list))


def typed(definitions):
    """The definitions as typed text: 1, 1.0 and true differ (== alone says they are equal)."""
    return json.dumps(schema.to_document(definitions), sort_keys=True)


PROPERTIES = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTIES
@given(flag_sets())
def test_definition_to_document_and_back_is_the_identity(definitions):
    document = schema.to_document(definitions)
    json.dumps(document, allow_nan=False)  # plain JSON values, nothing else
    again = schema.from_document(document, "generated")
    assert again == definitions
    assert typed(again) == typed(definitions)


@PROPERTIES
@given(flag_sets())
def test_definition_to_message_and_back_is_the_identity(definitions):
    message = schema.flag_set_to_message(definitions, revision=7)
    wire = flag_pb2.FlagSet.FromString(message.SerializeToString())  # what a client receives
    again = schema.flag_set_from_message(wire, "generated")
    assert again == definitions
    assert typed(again) == typed(definitions)


# The fields the normalised document leaves out, with their defaults (definitions.py's docstring).
FLAG_DEFAULTS = {"name": "", "description": "", "rules": [], "trackEvents": True, "metadata": {}}
RULE_DEFAULTS = {"id": "", "constraints": [], "bucketBy": ""}
SEGMENT_DEFAULTS = {"name": "", "description": "", "rules": []}


@PROPERTIES
@given(flag_sets(), st.data())
def test_document_to_definition_and_back_keeps_every_field(definitions, data):
    normal = schema.to_document(definitions)
    written = json.loads(json.dumps(normal))
    written.setdefault("segments", [])

    def spell_out(entry, defaults):
        # A document may spell a default out; reading it and writing it back leaves it out again.
        for name, default in defaults.items():
            if name not in entry and data.draw(st.booleans()):
                entry[name] = default

    for flag in written["flags"]:
        spell_out(flag, FLAG_DEFAULTS)
        for variant in flag["variants"]:
            spell_out(variant, {"description": ""})
        for rule in flag.get("rules", []):
            spell_out(rule, RULE_DEFAULTS)
    for segment in written["segments"]:
        spell_out(segment, SEGMENT_DEFAULTS)
        for rule in segment.get("rules", []):
            spell_out(rule, {"id": "", "constraints": []})

    again = schema.to_document(schema.from_document(written, "generated"))
    assert json.dumps(again, sort_keys=True) == json.dumps(normal, sort_keys=True)


@settings(max_examples=20, deadline=None)
@given(flag_sets())
def test_a_flag_set_compiled_from_a_message_answers_as_from_its_document(definitions):
    from_file = compile_flag_set(schema.to_document(definitions), "file")
    message = schema.flag_set_to_message(definitions)
    from_message = compile_flag_set(schema.message_to_document(message), "message")
    assert from_file.definitions == from_message.definitions == definitions
    context = build_context("user-1", {})
    for key, flag in from_file.flags.items():
        assert flag.definition is not None
        assert flag.fingerprint == from_message.flags[key].fingerprint
        assert flag.fingerprint == fingerprint(flag_document(flag.definition))
        assert evaluate(flag, context) == evaluate(from_message.flags[key], context)


def test_a_whole_number_from_a_message_reads_as_an_int():
    flag = FlagDefinition("f", True, (VariantDefinition("a", 2.0), VariantDefinition("b", 2.5)))
    again = schema.flag_set_from_message(schema.flag_set_to_message(FlagSetDefinition((flag,))))
    values = [variant.value for variant in again.flags[0].variants]
    assert values == [2, 2.5]
    assert [type(value) for value in values] == [int, float]
    assert not math.isnan(values[1])


def test_a_bad_message_lists_every_problem_as_a_file_would():
    message = flag_pb2.FlagSet(
        flags=[
            flag_pb2.Flag(
                key="f",
                enabled=True,
                variants=[flag_pb2.Variant(key="on")],  # no value
                default_variant_when_on="nope",
                rules=[
                    flag_pb2.FlagRule(
                        constraints=[flag_pb2.Constraint(property="p")],  # OPERATION_UNSPECIFIED
                        distributions=[flag_pb2.Distribution(variant="on", percentage=50)],
                    )
                ],
            )
        ]
    )
    with pytest.raises(FlagSetError) as error:
        schema.flag_set_from_message(message, "admin")
    text = str(error.value)
    assert "variant 'on' has no value" in text
    assert "unknown operation 'OPERATION_UNSPECIFIED'" in text
    assert "defaultVariantWhenOn names unknown variant 'nope'" in text
    assert all(problem.source == "admin" for problem in error.value.problems)


def test_the_compiled_set_keeps_the_definitions_of_a_consumed_document():
    document = {
        "flags": [
            {"key": "f", "enabled": True, "variants": [{"key": "on", "value": True}], "trackEvents": True}
        ],
        "segments": [{"key": "s", "rules": [{"constraints": [{"operation": "EXISTS", "property": "x"}]}]}],
    }
    flag_set = compile_flag_set(document, "file", consume=True)
    assert document["flags"] == [None]
    assert schema.to_document(flag_set.definitions) == {
        "flags": [{"key": "f", "enabled": True, "variants": [{"key": "on", "value": True}]}],
        "segments": [{"key": "s", "rules": [{"constraints": [{"property": "x", "operation": "EXISTS"}]}]}],
    }
    assert flag_set.flags["f"].definition is flag_set.definitions.flags[0]
    assert flag_set.segments["s"].definition is flag_set.definitions.segments[0]

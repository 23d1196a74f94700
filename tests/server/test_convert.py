"""protobuf <-> engine model translation."""

import math

import pytest
from google.protobuf import struct_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from flagsidecar.v1 import evaluation_pb2
from sidecar.engine import (
    ErrorCode,
    Evaluation,
    InvalidContextError,
    Reason,
    TraceStep,
    build_context,
    flag_not_found,
)
from sidecar.server.convert import EncodedEvaluations, evaluation_to_message
from sidecar.server.edge import plain_context, python_to_value, struct_to_attributes, user_context
from sidecar.server.metrics import evaluation_key


def make_struct(data: dict) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(data)
    return struct


def served(value=True, variant="on", version=3) -> Evaluation:
    return Evaluation("f", value, variant, Reason.TARGETING_MATCH, flag_version=version)


def test_struct_scalars_become_python_values():
    struct = make_struct({"email": "a@example.com", "age": 42, "ratio": 0.5, "beta": True, "gone": None})
    assert struct_to_attributes(struct) == {
        "email": "a@example.com",
        "age": 42.0,
        "ratio": 0.5,
        "beta": True,
        "gone": None,
    }


def test_struct_lists_and_objects_pass_through_for_the_engine_to_reject():
    struct = make_struct({"tags": ["a", 1, None, {"x": [True]}], "address": {"city": "Oslo"}})
    assert struct_to_attributes(struct) == {
        "tags": ["a", 1.0, None, {"x": [True]}],
        "address": {"city": "Oslo"},
    }


def test_a_value_with_nothing_set_reads_as_null():
    struct = struct_pb2.Struct()
    struct.fields["empty"].CopyFrom(struct_pb2.Value())
    assert struct_to_attributes(struct) == {"empty": None}


def _two_step_context(user: evaluation_pb2.User) -> dict | str:
    try:
        return build_context(user.id, struct_to_attributes(user.context))
    except InvalidContextError as error:
        return f"refused: {error}"


def _one_pass_context(user: evaluation_pb2.User) -> dict | str:
    try:
        return user_context(user)
    except InvalidContextError as error:
        return f"refused: {error}"


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"plan": "pro", "age": 34, "beta": True, "gone": None, "ratio": 0.5},
        {"plan": "pro", "tags": ["a"]},
        {"address": {"city": "Oslo"}, "plan": "pro"},
        {"plan": "pro", "$userId": "someone-else"},
        {"": "empty key"},
        {"n": float("nan")},
        {"n": float("inf"), "m": float("-inf")},
        {"big": 1e308, "small": -1e-308},
    ],
)
@pytest.mark.parametrize("user_id", ["u-1", ""])
def test_user_context_is_build_context_of_the_struct_in_one_pass(context, user_id):
    user = evaluation_pb2.User(id=user_id, context=make_struct(context))
    one_pass = _one_pass_context(user)
    assert one_pass == _two_step_context(user)
    if isinstance(one_pass, dict):
        assert list(one_pass) == list(_two_step_context(user))  # same order, "$userId" last


def test_user_context_reads_a_value_with_nothing_set_as_null():
    user = evaluation_pb2.User(id="u")
    user.context.fields["empty"].CopyFrom(struct_pb2.Value())
    assert user_context(user) == {"empty": None, "$userId": "u"}


@pytest.mark.parametrize(
    "context",
    [
        {"plan": "pro", "tags": ["a"]},
        {"address": {"city": "Oslo"}},
        {"$userId": "someone-else"},
        {"": "empty key"},
        {"n": float("nan")},
        {"n": float("-inf")},
    ],
)
def test_plain_context_leaves_anything_unusual_to_the_general_path(context):
    assert plain_context(evaluation_pb2.User(id="u", context=make_struct(context)), 100) is None


def test_plain_context_leaves_an_unset_value_and_too_many_keys_to_the_general_path():
    user = evaluation_pb2.User(id="u", context=make_struct({"a": 1, "b": "x", "c": None, "d": True}))
    assert (
        plain_context(user, 4)
        == user_context(user)
        == {"a": 1.0, "b": "x", "c": None, "d": True, "$userId": "u"}
    )
    assert plain_context(user, 3) is None
    user.context.fields["empty"].CopyFrom(struct_pb2.Value())
    assert plain_context(user, 100) is None


def test_python_values_round_trip_through_protobuf_value():
    for data in [None, True, False, 0, 7, -2.5, "", "text", [], {}, [1, "a", None], {"a": {"b": [1, {}]}}]:
        value = python_to_value(data)
        wrapper = make_struct({})
        wrapper.fields["x"].CopyFrom(value)
        back = struct_to_attributes(wrapper)["x"]
        assert back == data, data
        assert type(back) is type(data) or isinstance(data, int), data  # ints come back as floats


def test_empty_object_and_list_are_set_not_left_unset():
    assert python_to_value({}).WhichOneof("kind") == "struct_value"
    assert python_to_value([]).WhichOneof("kind") == "list_value"
    assert python_to_value(None).WhichOneof("kind") == "null_value"


def test_served_evaluation_message():
    message = evaluation_to_message(served({"engine": "vector", "max": 50}, variant="semantic"))
    assert message.flag_key == "f"
    assert message.variant == "semantic"
    assert message.reason == evaluation_pb2.TARGETING_MATCH
    assert message.error_code == evaluation_pb2.ERROR_CODE_UNSPECIFIED
    assert message.flag_version == 3
    assert message.value.struct_value.fields["engine"].string_value == "vector"
    assert message.value.struct_value.fields["max"].number_value == 50
    assert not message.stack_trace


def test_a_null_variant_value_is_set_to_null_not_unset():
    message = evaluation_to_message(served(None))
    assert message.HasField("value")
    assert message.value.WhichOneof("kind") == "null_value"


def test_error_evaluation_message_has_no_value():
    error = Evaluation(
        "f", None, "", Reason.ERROR, flag_version=2, error_code=ErrorCode.GENERAL, error_message="no default"
    )
    message = evaluation_to_message(error)
    assert message.reason == evaluation_pb2.ERROR
    assert message.error_code == evaluation_pb2.GENERAL
    assert message.error_message == "no default"
    assert not message.HasField("value")
    assert message.variant == ""


def test_engine_enums_match_the_proto_numbers():
    for reason in Reason:
        assert evaluation_pb2.Reason.Value(reason.name) == reason.value
    for code in ErrorCode:
        assert evaluation_pb2.ErrorCode.Value(code.name) == code.value


def test_stack_trace_steps_become_messages():
    trace = (
        TraceStep("flag", "f", True, "flag is enabled"),
        TraceStep("rule", "split", True, "rule 0 matched: split", depth=1),
        TraceStep("distribution", "split", True, "bucket 0", depth=1, answer="red", bucket=0),
    )
    message = evaluation_to_message(
        Evaluation("f", "red", "red", Reason.SPLIT, flag_version=1, stack_trace=trace)
    )
    flag_step, rule_step, distribution_step = message.stack_trace
    assert (flag_step.type, flag_step.id, flag_step.matched, flag_step.detail) == (
        "flag",
        "f",
        True,
        "flag is enabled",
    )
    assert not flag_step.HasField("answer")
    assert not flag_step.HasField("bucket")
    assert rule_step.depth == 1
    assert distribution_step.answer.string_value == "red"
    assert distribution_step.HasField("bucket")
    assert distribution_step.bucket == 0  # bucket 0 is present, not "unset"


def decode_evaluate(encoded: bytes) -> evaluation_pb2.Evaluation:
    return evaluation_pb2.EvaluateResponse.FromString(encoded).evaluation


def test_precomputed_answers_are_encoded_once():
    encoded = EncodedEvaluations()
    answer = served()
    first = encoded.evaluate_response(answer)
    assert encoded.evaluate_response(answer) is first
    assert decode_evaluate(first) == evaluation_to_message(answer)
    assert len(encoded) == 1


def test_equal_but_distinct_answers_get_their_own_entry():
    encoded = EncodedEvaluations()
    old, new = served(version=1), served(value=False, version=2)
    assert decode_evaluate(encoded.evaluate_response(old)).value.bool_value is True
    assert decode_evaluate(encoded.evaluate_response(new)).value.bool_value is False


def test_traced_and_not_found_answers_are_not_cached():
    encoded = EncodedEvaluations()
    traced = Evaluation("f", 1, "a", Reason.STATIC, stack_trace=(TraceStep("flag", "f", True, ""),))
    assert decode_evaluate(encoded.evaluate_response(traced)).stack_trace[0].type == "flag"
    encoded.evaluate_response(flag_not_found("missing"))
    assert len(encoded) == 0


def test_cache_is_bounded_and_can_be_cleared():
    encoded = EncodedEvaluations(max_entries=3)
    answers = [served(version=v) for v in range(10)]
    for answer in answers:
        encoded.evaluate_response(answer)
        assert len(encoded) <= 3
    assert decode_evaluate(encoded.evaluate_response(answers[-1])).flag_version == 9
    encoded.clear()
    assert len(encoded) == 0


def expected_all_response(answers) -> evaluation_pb2.EvaluateAllResponse:
    return evaluation_pb2.EvaluateAllResponse(
        evaluations=[evaluation_to_message(a) for a in answers], total=len(answers)
    )


@pytest.mark.parametrize("count", [0, 1, 2, 127, 128, 300])
def test_evaluate_all_bytes_equal_the_message_protobuf_would_build(count):
    # Long values push message lengths past one varint byte, and 128+ entries do the same to total.
    answers = [served(value="x" * (i * 3), version=i) for i in range(count)]
    encoded = EncodedEvaluations().evaluate_all_entries(answers)[0]
    assert evaluation_pb2.EvaluateAllResponse.FromString(encoded) == expected_all_response(answers)
    assert encoded == expected_all_response(answers).SerializeToString()


def test_entries_carry_the_metrics_key():
    encoded = EncodedEvaluations()
    answers = [served(version=1), served(variant="off", version=1), flag_not_found("zzz"), served(version=1)]
    body, keys = encoded.evaluate_all_entries(answers)
    assert body == encoded.evaluate_all_entries(answers)[0]
    assert keys == [evaluation_key(answer) for answer in answers]
    assert keys[2][0] == "(unknown)"  # the FLAG_NOT_FOUND series, as record_evaluation counts it
    assert encoded.entry(answers[0]) is encoded.entries[id(answers[0])]


def test_evaluate_all_keeps_order_and_reports_errors():
    encoded = EncodedEvaluations()
    answers = [served(version=1), flag_not_found("zzz")]
    response = evaluation_pb2.EvaluateAllResponse.FromString(encoded.evaluate_all_entries(answers)[0])
    assert response.total == 2
    assert [e.flag_key for e in response.evaluations] == ["f", "zzz"]
    assert response.evaluations[1].error_code == evaluation_pb2.FLAG_NOT_FOUND


plain_values = st.one_of(
    st.text(max_size=4), st.floats(), st.booleans(), st.none(), st.lists(st.text(max_size=2), max_size=2)
)


@settings(max_examples=300, deadline=None)
@given(
    context=st.dictionaries(
        st.text(max_size=3) | st.sampled_from(["", "$", "$userId", "plan"]), plain_values
    ),
    user_id=st.sampled_from(["", "u-1"]),
)
def test_plain_context_is_user_context_or_leaves_it_to_the_general_path(context, user_id):
    user = evaluation_pb2.User(id=user_id, context=make_struct(context))
    plain = plain_context(user, 100)
    unusual = any(
        key[:1] in ("", "$")
        or isinstance(value, list)
        or (isinstance(value, float) and not math.isfinite(value))
        for key, value in context.items()
    )
    assert (plain is None) == unusual
    if plain is not None:
        assert plain == user_context(user)
        assert list(plain) == list(user_context(user))

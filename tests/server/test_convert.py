"""protobuf <-> engine model translation."""

from google.protobuf import struct_pb2

from flagsidecar.v1 import evaluation_pb2
from sidecar.engine import ErrorCode, Evaluation, Reason, TraceStep, flag_not_found
from sidecar.server.convert import (
    EvaluationMessages,
    evaluation_to_message,
    python_to_value,
    struct_to_attributes,
)


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


def test_precomputed_answers_are_converted_once():
    messages = EvaluationMessages()
    answer = served()
    first = messages.response(answer)
    assert messages.response(answer) is first
    assert first.evaluation.variant == "on"
    assert len(messages) == 1


def test_equal_but_distinct_answers_get_their_own_entry():
    messages = EvaluationMessages()
    old, new = served(version=1), served(value=False, version=2)
    assert messages.response(old).evaluation.value.bool_value is True
    assert messages.response(new).evaluation.value.bool_value is False


def test_traced_and_not_found_answers_are_not_cached():
    messages = EvaluationMessages()
    traced = Evaluation("f", 1, "a", Reason.STATIC, stack_trace=(TraceStep("flag", "f", True, ""),))
    messages.response(traced)
    messages.response(flag_not_found("missing"))
    assert len(messages) == 0


def test_cache_is_bounded_and_can_be_cleared():
    messages = EvaluationMessages(max_entries=3)
    answers = [served(version=v) for v in range(10)]
    for answer in answers:
        messages.response(answer)
        assert len(messages) <= 3
    assert messages.response(answers[-1]).evaluation.flag_version == 9
    messages.clear()
    assert len(messages) == 0


def test_evaluate_all_response_keeps_order_and_counts():
    messages = EvaluationMessages()
    answers = [served(version=1), flag_not_found("zzz")]
    response = messages.evaluate_all_response(answers)
    assert response.total == 2
    assert [e.flag_key for e in response.evaluations] == ["f", "zzz"]
    assert response.evaluations[1].error_code == evaluation_pb2.FLAG_NOT_FOUND

"""EvaluationService over the wire: a real server on a free port, called through the generated stub."""

import grpc
import pytest
from google.protobuf import struct_pb2

from flagsidecar.v1 import evaluation_pb2
from sidecar.engine import bucket
from tests.conftest import eventually

STAFF = {"email": "dev@example.com"}


def user(user_id: str = "u1", **context) -> evaluation_pb2.User:
    message = evaluation_pb2.User(id=user_id)
    message.context.update(context)
    return message


def evaluate(sidecar, flag_key: str, debug: bool = False, **user_fields) -> evaluation_pb2.Evaluation:
    request = evaluation_pb2.EvaluateRequest(flag_key=flag_key, user=user(**user_fields), debug=debug)
    return sidecar.evaluation_stub.Evaluate(request, timeout=5).evaluation


def rpc_error(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=5)
    return caught.value


# ---------------------------------------------------------------- Evaluate


def test_targeting_match(sidecar):
    evaluation = evaluate(sidecar, "new-checkout", **STAFF)
    assert evaluation.flag_key == "new-checkout"
    assert evaluation.value.bool_value is True
    assert evaluation.variant == "on"
    assert evaluation.reason == evaluation_pb2.TARGETING_MATCH
    assert evaluation.error_code == evaluation_pb2.ERROR_CODE_UNSPECIFIED
    assert evaluation.flag_version == 1
    assert not evaluation.stack_trace


def test_each_reason(sidecar):
    assert evaluate(sidecar, "new-checkout", email="x@elsewhere.org").reason == evaluation_pb2.DEFAULT
    assert evaluate(sidecar, "banner-color").reason == evaluation_pb2.STATIC
    disabled = evaluate(sidecar, "maintenance-mode")
    assert (disabled.reason, disabled.variant, disabled.value.bool_value) == (
        evaluation_pb2.DISABLED,
        "off",
        False,
    )
    split = evaluate(sidecar, "new-checkout", plan="pro", accountId="acct-7")
    assert split.reason == evaluation_pb2.SPLIT
    # The documented algorithm decides the variant: 25% "on" = buckets [0, 2500).
    expected = "on" if bucket("new-checkout", "acct-7") < 2500 else "off"
    assert split.variant == expected


def test_object_values_arrive_as_structs(sidecar):
    evaluation = evaluate(sidecar, "search-config", ip="10.1.2.3")
    assert evaluation.variant == "semantic"
    fields = evaluation.value.struct_value.fields
    assert fields["engine"].string_value == "vector"
    assert fields["maxResults"].number_value == 50
    assert fields["tags"].WhichOneof("kind") == "list_value"


def test_missing_default_answers_default_with_no_value_and_no_variant(sidecar):
    """DESIGN.md, Evaluation semantics 5: the caller's code default applies; it is not an error."""
    for debug in (False, True):
        evaluation = evaluate(sidecar, "upload-limit", debug=debug, plan="free")
        assert evaluation.reason == evaluation_pb2.DEFAULT
        assert evaluation.error_code == evaluation_pb2.ERROR_CODE_UNSPECIFIED
        assert evaluation.error_message == ""
        assert not evaluation.HasField("value")
        assert evaluation.variant == ""
    last = evaluation.stack_trace[-1]
    assert (last.type, last.id, last.matched) == ("default", "defaultVariantWhenOn", False)
    assert "no defaultVariantWhenOn is set" in last.detail


def test_repeated_calls_give_identical_answers(sidecar):
    answers = {
        evaluate(sidecar, "new-checkout", plan="pro", accountId="a1").SerializeToString() for _ in range(5)
    }
    assert len(answers) == 1


def test_unknown_flag_is_not_found(sidecar):
    error = rpc_error(sidecar.evaluation_stub.Evaluate, evaluation_pb2.EvaluateRequest(flag_key="nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "flag 'nope' not found"


def test_empty_flag_key_is_invalid_argument(sidecar):
    error = rpc_error(sidecar.evaluation_stub.Evaluate, evaluation_pb2.EvaluateRequest(user=user()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "flag_key is required"


@pytest.mark.parametrize(
    ("context", "complaint"),
    [
        ({"$userId": "spoofed"}, "'$userId' is reserved"),
        ({"tags": ["a", "b"]}, "'tags' holds a list"),
        ({"address": {"city": "Oslo"}}, "'address' holds a dict"),
    ],
)
def test_malformed_context_is_invalid_argument(sidecar, context, complaint):
    request = evaluation_pb2.EvaluateRequest(flag_key="banner-color", user=user(**context))
    error = rpc_error(sidecar.evaluation_stub.Evaluate, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert complaint in error.details()


def test_non_finite_number_is_invalid_argument(sidecar):
    request = evaluation_pb2.EvaluateRequest(flag_key="banner-color", user=user())
    request.user.context.fields["score"].number_value = float("nan")
    error = rpc_error(sidecar.evaluation_stub.Evaluate, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'score'" in error.details()


def test_no_user_at_all_is_fine(sidecar):
    response = sidecar.evaluation_stub.Evaluate(
        evaluation_pb2.EvaluateRequest(flag_key="banner-color"), timeout=5
    )
    assert response.evaluation.variant == "blue"


def test_unexpected_failure_is_internal_and_the_server_keeps_serving(sidecar, monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(sidecar.store, "view", explode)
    error = rpc_error(
        sidecar.evaluation_stub.Evaluate, evaluation_pb2.EvaluateRequest(flag_key="banner-color")
    )
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "disk on fire" not in error.details()  # internals stay in the log
    assert "disk on fire" in caplog.text
    monkeypatch.undo()
    assert evaluate(sidecar, "banner-color").variant == "blue"


# ---------------------------------------------------------------- debug traces


def test_debug_trace_over_the_wire(sidecar):
    evaluation = evaluate(sidecar, "new-checkout", debug=True, plan="pro", accountId="acct-7")
    steps = list(evaluation.stack_trace)
    assert steps[0].type == "flag"
    assert steps[0].id == "new-checkout"
    staff, beta = (s for s in steps if s.type == "rule")
    assert (staff.id, staff.matched, staff.depth) == ("staff", False, 1)
    assert (beta.id, beta.matched) == ("beta-rollout", True)
    assert any(s.type == "segment" and s.id == "beta" and s.matched for s in steps)
    (distribution,) = (s for s in steps if s.type == "distribution")
    assert distribution.HasField("bucket")
    assert distribution.bucket == bucket("new-checkout", "acct-7")
    assert distribution.answer.bool_value == evaluation.value.bool_value
    assert "murmur3" in distribution.detail


def test_debug_answer_equals_the_plain_answer(sidecar):
    plain = evaluate(sidecar, "new-checkout", plan="pro", accountId="acct-9")
    traced = evaluate(sidecar, "new-checkout", debug=True, plan="pro", accountId="acct-9")
    del traced.stack_trace[:]
    assert traced == plain


# ---------------------------------------------------------------- EvaluateAll


def evaluate_all(sidecar, flag_keys=(), debug=False, **user_fields) -> evaluation_pb2.EvaluateAllResponse:
    request = evaluation_pb2.EvaluateAllRequest(user=user(**user_fields), flag_keys=flag_keys, debug=debug)
    return sidecar.evaluation_stub.EvaluateAll(request, timeout=5)


def test_evaluate_all_returns_every_flag_sorted(sidecar):
    response = evaluate_all(sidecar, **STAFF)
    keys = [e.flag_key for e in response.evaluations]
    assert (
        keys
        == sorted(keys)
        == [
            "banner-color",
            "maintenance-mode",
            "new-checkout",
            "search-config",
            "upload-limit",
        ]
    )
    assert response.total == 5
    by_key = {e.flag_key: e for e in response.evaluations}
    assert by_key["new-checkout"].variant == "on"
    # A flag with no default for this user answers DEFAULT with no value inside the list.
    assert by_key["upload-limit"].reason == evaluation_pb2.DEFAULT
    assert not by_key["upload-limit"].HasField("value")


def test_evaluate_all_answers_match_evaluate(sidecar):
    for evaluation in evaluate_all(sidecar, plan="pro", accountId="a3").evaluations:
        if evaluation.error_code == evaluation_pb2.ERROR_CODE_UNSPECIFIED:
            assert evaluation == evaluate(sidecar, evaluation.flag_key, plan="pro", accountId="a3")


def test_evaluate_all_filter_with_unknown_keys(sidecar):
    response = evaluate_all(sidecar, flag_keys=["zeta-missing", "new-checkout", "banner-color"])
    assert [e.flag_key for e in response.evaluations] == ["banner-color", "new-checkout", "zeta-missing"]
    assert response.total == 3
    missing = response.evaluations[2]
    assert (missing.reason, missing.error_code) == (evaluation_pb2.ERROR, evaluation_pb2.FLAG_NOT_FOUND)
    assert "zeta-missing" in missing.error_message


def test_evaluate_all_with_debug_traces_every_flag(sidecar):
    response = evaluate_all(sidecar, flag_keys=["banner-color", "maintenance-mode"], debug=True)
    for evaluation in response.evaluations:
        assert evaluation.stack_trace[0].type == "flag"


def test_evaluate_all_rejects_a_malformed_context(sidecar):
    request = evaluation_pb2.EvaluateAllRequest(user=user(**{"$userId": "x"}))
    error = rpc_error(sidecar.evaluation_stub.EvaluateAll, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


# ---------------------------------------------------------------- hot reload


def test_flag_file_edit_is_served_within_a_second(sidecar, sample_flags):
    assert evaluate(sidecar, "banner-color").variant == "blue"
    sample_flags["flags"][1]["defaultVariantWhenOn"] = "red"
    sample_flags["flags"].append(
        {
            "key": "brand-new",
            "enabled": True,
            "variants": [{"key": "x", "value": 1}],
            "defaultVariantWhenOn": "x",
        }
    )
    sidecar.rewrite_flags(sample_flags)

    changed = eventually(lambda: evaluate(sidecar, "banner-color").variant == "red", timeout=1.5)
    assert changed
    recolored = evaluate(sidecar, "banner-color")
    assert recolored.value.string_value == "#d62728"
    assert recolored.flag_version == 2  # the changed flag's version went up
    assert evaluate(sidecar, "new-checkout", **STAFF).flag_version == 1  # the others' did not
    assert evaluate(sidecar, "brand-new").value.number_value == 1
    assert evaluate_all(sidecar).total == 6


def test_broken_edit_keeps_serving_the_last_good_set(sidecar, sample_flags):
    sample_flags["flags"][1]["defaultVariantWhenOn"] = "no-such-variant"
    sidecar.rewrite_flags(sample_flags)
    eventually(lambda: sidecar.store.stats["rejected_reloads"] >= 1, timeout=1.5)
    assert evaluate(sidecar, "banner-color").variant == "blue"


def test_removed_flag_becomes_not_found(sidecar, sample_flags):
    sample_flags["flags"] = [f for f in sample_flags["flags"] if f["key"] != "banner-color"]
    sidecar.rewrite_flags(sample_flags)

    def gone() -> bool:
        try:
            evaluate(sidecar, "banner-color")
        except grpc.RpcError as error:
            return error.code() == grpc.StatusCode.NOT_FOUND
        return False

    eventually(gone, timeout=1.5)


def test_struct_helpers_used_by_clients_work(sidecar):
    # Clients often build the context from a dict with Struct.update; numbers become doubles.
    context = struct_pb2.Struct()
    context.update({"plan": "pro", "accountId": 12345})
    request = evaluation_pb2.EvaluateRequest(
        flag_key="new-checkout", user=evaluation_pb2.User(context=context)
    )
    evaluation = sidecar.evaluation_stub.Evaluate(request, timeout=5).evaluation
    # A whole-number double buckets as "12345", as the bucketing algorithm specifies.
    expected = "on" if bucket("new-checkout", "12345") < 2500 else "off"
    assert evaluation.variant == expected

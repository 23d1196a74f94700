"""The one gRPC edge (sidecar/server/edge): every service reads a context the same way, and one
error hierarchy becomes the same statuses on the native and the flagd services."""

from __future__ import annotations

import math
from typing import Any

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct, Value

from flagd.evaluation.v2 import evaluation_pb2 as flagd_v2
from flagd.evaluation.v2 import evaluation_pb2_grpc as flagd_v2_grpc
from flagsidecar.v1 import evaluation_pb2
from sidecar.engine import ErrorCode
from sidecar.server import edge
from tests.conftest import RunningSidecar

TIMEOUT = 5


def _struct(**values: Any) -> Struct:
    struct = Struct()
    for key, value in values.items():
        if isinstance(value, Value):
            struct.fields[key].CopyFrom(value)
        else:
            struct.update({key: value})
    return struct


def _native(sidecar: RunningSidecar, context: Struct, debug: bool = False) -> grpc.StatusCode:
    request = evaluation_pb2.EvaluateRequest(
        flag_key="banner-color", user=evaluation_pb2.User(id="u", context=context), debug=debug
    )
    try:
        sidecar.evaluation_stub.Evaluate(request, timeout=TIMEOUT)
    except grpc.RpcError as error:
        return error.code(), error.details()
    return grpc.StatusCode.OK, ""


def _flagd(sidecar: RunningSidecar, context: Struct) -> tuple[grpc.StatusCode, str]:
    request = flagd_v2.ResolveStringRequest(flag_key="banner-color", context=context)
    try:
        flagd_v2_grpc.ServiceStub(sidecar.channel).ResolveString(request, timeout=TIMEOUT)
    except grpc.RpcError as error:
        return error.code(), error.details()
    return grpc.StatusCode.OK, ""


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_a_number_json_cannot_carry_is_invalid_argument_on_every_service(sidecar, number):
    # flagd's service used to drop it silently; the native one refused it.
    context = _struct(score=number)
    native_code, native_details = _native(sidecar, context)
    flagd_code, flagd_details = _flagd(sidecar, context)
    assert native_code is flagd_code is grpc.StatusCode.INVALID_ARGUMENT
    assert (
        native_details
        == f"invalid user context: context key 'score' holds {number}, which is not a finite number"
    )
    assert (
        flagd_details
        == f"invalid evaluation context: context key 'score' holds {number}, which is not a finite number"
    )


def test_a_value_with_nothing_set_is_null_on_every_service(sidecar):
    context = _struct(empty=Value(), plan="pro")
    assert _native(sidecar, context) == (grpc.StatusCode.OK, "")
    assert _flagd(sidecar, context) == (grpc.StatusCode.OK, "")
    user = evaluation_pb2.User(id="u", context=context)
    assert edge.user_context(user) == {"empty": None, "plan": "pro", "$userId": "u"}
    assert edge.struct_to_attributes(context, structures=False) == {"empty": None, "plan": "pro"}


def test_structures_and_reserved_keys_differ_by_protocol_on_purpose(sidecar):
    # The native User.context is string -> scalar; an OpenFeature context may hold anything.
    for context in (_struct(tags=["a"]), _struct(address={"city": "x"}), _struct(**{"$userId": "evil"})):
        assert _native(sidecar, context)[0] is grpc.StatusCode.INVALID_ARGUMENT
        assert _flagd(sidecar, context) == (grpc.StatusCode.OK, "")


def test_an_unexpected_error_is_the_same_internal_status_on_every_service(sidecar, monkeypatch, caplog):
    def broken(*_args: object) -> object:
        raise RuntimeError("boom: a fault of ours, never shown to the client")

    monkeypatch.setattr(sidecar.store, "view", broken)
    native = _native(sidecar, Struct(), debug=True)  # debug: the general path, which takes a view
    flagd = _flagd(sidecar, Struct())
    assert native == flagd == (grpc.StatusCode.INTERNAL, edge.INTERNAL_ERROR)
    failed = [r.getMessage() for r in caplog.records if "failed on an unexpected error" in r.getMessage()]
    assert failed == [
        "Evaluate failed on an unexpected error",
        "flagd.v2/ResolveString failed on an unexpected error",
    ]


def test_every_error_class_knows_its_status_and_limit():
    assert {cls: cls.code for cls in edge.SidecarError.__subclasses__()} == {
        edge.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
        edge.NotFound: grpc.StatusCode.NOT_FOUND,
        edge.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
        edge.Aborted: grpc.StatusCode.ABORTED,
        edge.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
        edge.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
        edge.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
        edge.Unavailable: grpc.StatusCode.UNAVAILABLE,
        edge.DataLoss: grpc.StatusCode.DATA_LOSS,
        edge.Unknown: grpc.StatusCode.UNKNOWN,
    }
    from sidecar.server.limits import Violation

    over = edge.ResourceExhausted.over(Violation("max_response_bytes", "too big"))
    assert (type(over), over.message, over.limit) == (edge.ResourceExhausted, "too big", "max_response_bytes")
    assert type(edge.evaluation_error(ErrorCode.FLAG_NOT_FOUND, "x")) is edge.NotFound
    assert type(edge.evaluation_error(ErrorCode.PARSE_ERROR, "x")) is edge.DataLoss
    assert type(edge.evaluation_error(None, "x")) is edge.Unknown
    assert {code for code in ErrorCode} <= set(edge.errors.EVALUATION_ERRORS)


def test_python_to_struct_is_one_conversion():
    assert edge.fill_struct(Struct(), {"n": 3, "o": {}, "l": [1, None]}) == _struct(
        n=3.0, o={}, l=[1.0, None]
    )
    with pytest.raises(TypeError, match="cannot express a bytes"):
        edge.python_to_value(b"x")

"""The conformance vectors (tests/conformance) evaluated in-process by flagsidecar_client, fed by a
real control plane over its sync stream: the same answers as the vectors expect of the sidecar's
RPC, and as that very control plane's RPC gives, vector by vector.

RPC statuses become in-process errors: NOT_FOUND is FLAG_NOT_FOUND, INVALID_ARGUMENT is
INVALID_CONTEXT for a bad context and GENERAL for an empty flag key (evaluate never raises)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc
from flagsidecar_client import ErrorCode, Evaluation, FlagSidecarClient
from tests.conformance.test_python import DOCUMENT, HERE, VECTORS, user_message
from tests.inproc.control_plane import ControlPlane

EVALUATIONS = [v for v in VECTORS if v["method"] in ("Evaluate", "EvaluateAll")]


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    plane = ControlPlane(HERE / DOCUMENT["flags"], tmp_path_factory.mktemp("events"))
    yield plane
    plane.stop()


@pytest.fixture(scope="module")
def client(control_plane: ControlPlane) -> Iterator[FlagSidecarClient]:
    with FlagSidecarClient(control_plane.sync_target) as client:
        yield client


@pytest.fixture(scope="module")
def rpc(control_plane: ControlPlane) -> Iterator[evaluation_pb2_grpc.EvaluationServiceStub]:
    with grpc.insecure_channel(control_plane.events_target) as channel:
        yield evaluation_pb2_grpc.EvaluationServiceStub(channel)


def as_vector(evaluation: Evaluation) -> dict[str, Any]:
    """An in-process Evaluation in the vectors' terms (the RPC's message fields)."""
    got: dict[str, Any] = {
        "flag_key": evaluation.flag_key,
        "variant": evaluation.variant,
        "reason": evaluation.reason.name,
        "error_code": "ERROR_CODE_UNSPECIFIED"
        if evaluation.error_code is None
        else evaluation.error_code.name,
        "flag_version": evaluation.flag_version,
    }
    if evaluation.has_value:
        got["value"] = evaluation.value
    return got


def expected(want: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in want.items() if key != "bucket"}


def message_as_vector(message: evaluation_pb2.Evaluation) -> dict[str, Any]:
    got = {
        "flag_key": message.flag_key,
        "variant": message.variant,
        "reason": evaluation_pb2.Reason.Name(message.reason),
        "error_code": evaluation_pb2.ErrorCode.Name(message.error_code),
        "flag_version": message.flag_version,
    }
    if message.HasField("value"):
        got["value"] = json_format.MessageToDict(message.value)
    return got


def error_of(status: str, request: dict[str, Any]) -> ErrorCode:
    if status == "NOT_FOUND":
        return ErrorCode.FLAG_NOT_FOUND
    assert status == "INVALID_ARGUMENT"
    return ErrorCode.GENERAL if request.get("flag_key") == "" else ErrorCode.INVALID_CONTEXT


@pytest.mark.parametrize("vector", EVALUATIONS, ids=[v["name"] for v in EVALUATIONS])
def test_vector_in_process(client: FlagSidecarClient, rpc, vector: dict[str, Any]) -> None:
    request, expect = vector["request"], vector["expect"]
    user = request.get("user") or {}
    user_id, context = user.get("id", ""), user.get("context")
    if vector["method"] == "Evaluate":
        got = client.evaluate(request["flag_key"], user_id, context)
        if expect["status"] != "OK":
            assert got.error_code == error_of(expect["status"], request), got
            assert not got.has_value
            assert got.variant == ""
            return
        assert as_vector(got) == expected(expect["evaluation"])
        # ... and the same as this control plane's own RPC answers, now.
        answer = rpc.Evaluate(
            evaluation_pb2.EvaluateRequest(flag_key=request["flag_key"], user=user_message(user)), timeout=10
        )
        assert as_vector(got) == message_as_vector(answer.evaluation)
        return
    got_all = client.evaluate_all(user_id, context, request.get("flag_keys", ()))
    if expect["status"] != "OK":
        assert got_all
        assert {e.error_code for e in got_all} == {error_of(expect["status"], request)}
        return
    assert [as_vector(e) for e in got_all] == [expected(e) for e in expect["evaluations"]]
    answer_all = rpc.EvaluateAll(
        evaluation_pb2.EvaluateAllRequest(user=user_message(user), flag_keys=request.get("flag_keys", [])),
        timeout=10,
    )
    assert [as_vector(e) for e in got_all] == [message_as_vector(e) for e in answer_all.evaluations]


def test_the_client_serves_the_control_planes_flag_set(client: FlagSidecarClient) -> None:
    every_flag = next(
        v for v in EVALUATIONS if v["method"] == "EvaluateAll" and not v["request"].get("flag_keys")
    )
    assert client.ready
    assert client.connected
    assert client.revision > 0
    assert client.flag_set_name == "default"
    assert sorted(client.flag_keys()) == [e["flag_key"] for e in every_flag["expect"]["evaluations"]]

"""The conformance vectors (vectors.json), run in Python against a real `flag-sidecar serve`.

Every client in clients/<language>/ runs the same vectors with its own generated code and its own
MurmurHash3; this runner proves the vectors against the sidecar through the Python stubs, and
computes each split's bucket with `mmh3` from the documented rule (README, "Percentage splits"),
not with the sidecar's own bucketing module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import mmh3
import pytest
from google.protobuf import json_format, struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc, event_pb2, event_pb2_grpc
from tests.conftest import eventually
from tests.serve_process import ServeProcess

HERE = Path(__file__).resolve().parent
DOCUMENT = json.loads((HERE / "vectors.json").read_text(encoding="utf-8"))
VECTORS: list[dict[str, Any]] = DOCUMENT["vectors"]
EVALUATION_FIELDS = ("flag_key", "variant", "reason", "error_code", "flag_version")


@pytest.fixture(scope="module")
def channel() -> Iterator[grpc.Channel]:
    process = ServeProcess(HERE / DOCUMENT["flags"])
    try:
        with grpc.insecure_channel(process.address()) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            serving = health_pb2.HealthCheckResponse.SERVING
            eventually(lambda: health.Check(health_pb2.HealthCheckRequest()).status == serving, timeout=15)
            yield channel
    finally:
        process.stop()


def bucket_text(value: Any) -> str | None:
    """The documented text of a bucket value; None when the rule cannot split on it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and math.isfinite(value):
        number = float(value)  # protobuf carries every number as a double
        # Whole numbers in decimal with no fraction (-0.0 is 0); others in shortest round-trip form.
        return str(int(number)) if number.is_integer() else repr(number)
    return None


def documented_bucket(flag_key: str, text: str) -> int:
    return (mmh3.hash(f"{flag_key}:{text}".encode(), 0, signed=False) * 10000) >> 32


def user_message(user: dict[str, Any] | None) -> evaluation_pb2.User:
    message = evaluation_pb2.User(id=(user or {}).get("id", ""))
    if user and "context" in user:
        message.context.update(user["context"])
    return message


def _struct(value: dict[str, Any] | None) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    if value:
        message.update(value)
    return message


def check_evaluation(
    got: evaluation_pb2.Evaluation, want: dict[str, Any], user: dict[str, Any], debug: bool
) -> None:
    actual = {
        "flag_key": got.flag_key,
        "variant": got.variant,
        "reason": evaluation_pb2.Reason.Name(got.reason),
        "error_code": evaluation_pb2.ErrorCode.Name(got.error_code),
        "flag_version": got.flag_version,
    }
    assert actual == {field: want[field] for field in EVALUATION_FIELDS}
    # An absent "value" means unset, which differs from a JSON null.
    assert got.HasField("value") == ("value" in want), got
    if "value" in want:
        assert json_format.MessageToDict(got.value) == want["value"]
    buckets = [step.bucket for step in got.stack_trace if step.HasField("bucket")]
    if "bucket" not in want:
        assert not buckets, f"an unexpected split for {got.flag_key}: {buckets}"
        return
    expected = want["bucket"]
    assert debug, "a bucket is only reported with debug=true"
    assert buckets == [expected["bucket"]]
    # Our own bucket from the request's value, by the documented rule.
    context = {"$userId": user.get("id", ""), **user.get("context", {})}
    text = bucket_text(context.get(expected["by"]))
    assert text == expected["text"]
    assert documented_bucket(got.flag_key, text) == expected["bucket"]


def run_vector(channel: grpc.Channel, vector: dict[str, Any]) -> None:
    request, expect = vector["request"], vector["expect"]
    status = grpc.StatusCode.OK
    try:
        if vector["method"] == "Evaluate":
            stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
            response = stub.Evaluate(
                evaluation_pb2.EvaluateRequest(
                    flag_key=request["flag_key"],
                    user=user_message(request.get("user")),
                    debug=request.get("debug", False),
                ),
                timeout=10,
            )
            if "evaluation" in expect:
                check_evaluation(
                    response.evaluation, expect["evaluation"], request["user"], request.get("debug", False)
                )
        elif vector["method"] == "EvaluateAll":
            stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
            answer = stub.EvaluateAll(
                evaluation_pb2.EvaluateAllRequest(
                    user=user_message(request.get("user")),
                    flag_keys=request.get("flag_keys", []),
                    debug=request.get("debug", False),
                ),
                timeout=10,
            )
            if "evaluations" in expect:
                assert answer.total == expect["total"]
                assert [e.flag_key for e in answer.evaluations] == [
                    e["flag_key"] for e in expect["evaluations"]
                ]
                for got, want in zip(answer.evaluations, expect["evaluations"], strict=True):
                    check_evaluation(got, want, request["user"], request.get("debug", False))
        elif vector["method"] == "Track":
            events = event_pb2_grpc.EventServiceStub(channel)
            messages = [
                event_pb2.TrackRequest(
                    name=event["name"],
                    user=user_message(event.get("user")),
                    details=_struct(event.get("details")),
                )
                for event in request["events"]
            ]
            track = events.Track.with_call(iter(messages), timeout=10)
            assert track[0].accepted == expect["accepted"]
        else:
            pytest.fail(f"unknown method {vector['method']!r}")
    except grpc.RpcError as error:
        status = error.code()
        if vector["method"] == "Track":
            trailers = dict(error.trailing_metadata() or ())
            assert int(trailers["accepted-count"]) == expect["accepted"]
    assert status.name == expect["status"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector(channel: grpc.Channel, vector: dict[str, Any]) -> None:
    run_vector(channel, vector)


def test_the_vectors_cover_what_the_suite_promises() -> None:
    # Every split answer names its bucket (and asks with debug, which reports it); the suite has
    # every reason, string, number and boolean bucket values, errors and each method.
    evaluations = [v["expect"]["evaluation"] for v in VECTORS if "evaluation" in v["expect"]]
    evaluations += [e for v in VECTORS for e in v["expect"].get("evaluations", [])]
    for vector in VECTORS:
        for want in [vector["expect"].get("evaluation"), *vector["expect"].get("evaluations", [])]:
            if want and want["reason"] == "SPLIT":
                assert "bucket" in want, vector["name"]
                assert vector["request"].get("debug"), vector["name"]
    assert {e["reason"] for e in evaluations} == {
        "STATIC",
        "DEFAULT",
        "TARGETING_MATCH",
        "SPLIT",
        "DISABLED",
        "ERROR",
    }
    kinds = {
        type(v["request"]["user"].get("context", {}).get(e["bucket"]["by"], v["request"]["user"]["id"]))
        for v in VECTORS
        for e in [v["expect"].get("evaluation") or {}]
        if "bucket" in e
    }
    assert kinds == {str, int, float, bool}
    assert {v["method"] for v in VECTORS} == {"Evaluate", "EvaluateAll", "Track"}
    assert {v["expect"]["status"] for v in VECTORS} >= {"OK", "NOT_FOUND", "INVALID_ARGUMENT"}
    assert len({v["name"] for v in VECTORS}) == len(VECTORS)

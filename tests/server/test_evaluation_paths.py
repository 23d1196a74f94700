"""EvaluationService's two paths give the same results.

grpcio calls evaluate_bytes / evaluate_all_bytes (request bytes in), which serve the common case
in one flat function and hand the rest to Evaluate / EvaluateAll, the general path. Here two
servicers over one store get the same requests, one through each entry point, and must agree on
every response, status and message, metrics count and feature event: over generated requests
(valid and invalid contexts, unknown flags, debug traces, context limits) and over hand-made
encodings of the context that upb re-encodes to a different size (the fast path's byte check
relies on a plain context never growing).
"""

from __future__ import annotations

import copy
import logging
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flagsidecar.v1 import evaluation_pb2
from sidecar.engine import Evaluation
from sidecar.events import EventPipeline
from sidecar.server.convert import (
    EncodedEvaluations,
    _varint,  # the protobuf varint, to hand-make encodings
)
from sidecar.server.evaluation_service import EvaluationService
from sidecar.server.limits import ContextLimits
from sidecar.server.metrics import SidecarMetrics
from sidecar.sources import FileSource
from sidecar.store import FlagStore
from tests.conftest import SAMPLE_FLAGS, write_flag_file

# SAMPLE_FLAGS (every reason, an error answer, a segment, a network rule, a split on accountId)
# and a percentage split on the user id with a numeric rule before it.
DOCUMENT = copy.deepcopy(SAMPLE_FLAGS)
DOCUMENT["flags"].append(
    {
        "key": "rollout",
        "enabled": True,
        "variants": [{"key": k, "value": k} for k in ("a", "b", "c")],
        "defaultVariantWhenOn": "c",
        "rules": [
            {
                "id": "adults",
                "constraints": [{"property": "age", "operation": "GREATER_OR_EQUAL", "values": [18]}],
                "distributions": [
                    {"variant": "a", "percentage": 40},
                    {"variant": "b", "percentage": 30},
                    {"variant": "c", "percentage": 30},
                ],
            }
        ],
    }
)
FLAG_KEYS = [flag["key"] for flag in DOCUMENT["flags"]]
LIMITS = {
    "default": ContextLimits(),
    "tight": ContextLimits(max_keys=3, max_bytes=60),
    "few bytes": ContextLimits(max_keys=0, max_bytes=30),
    "none": ContextLimits(max_keys=0, max_bytes=0),
}


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, details)
        self.code = code
        self.details = details


class Context:
    """The part of grpc.ServicerContext the servicer uses."""

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


class RecordingEvents(EventPipeline):
    """A pipeline that records what the servicer hands it, as an exporter would see it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[Evaluation, str, dict[str, Any]]] = []

    @property
    def enabled(self) -> bool:
        return True

    def add_evaluation(self, evaluation: Evaluation, user_id: str, context: Any = None) -> None:
        self.seen.append((evaluation, user_id, dict(context or {})))

    def add_evaluations(self, evaluations: Any, user_id: str, context: Any = None) -> None:
        for evaluation in evaluations:
            self.add_evaluation(evaluation, user_id, context)


class Side:
    """One servicer with its own metrics, encoded answers and events; counts general-path calls."""

    def __init__(self, store: FlagStore, limits: ContextLimits) -> None:
        self.metrics = SidecarMetrics(store, process_metrics=False)
        self.events = RecordingEvents()
        self.servicer = EvaluationService(store, EncodedEvaluations(), self.metrics, limits, self.events)
        # Every answer the flags can give, encoded as earlier calls would have left them: otherwise
        # a request refused by the general path would never meet the fast path (it serves encoded
        # answers only).
        for flag in store.flag_set.flags.values():
            for rule in flag.rules:
                for answer in (rule.single, *rule.split_answers):
                    if answer is not None:
                        self.servicer._encoded.entry(answer)
            self.servicer._encoded.entry(flag.default_answer)
        self.general_calls = 0
        guarded = self.servicer._guarded

        def counting(*args: Any) -> bytes:
            self.general_calls += 1
            return guarded(*args)

        self.servicer._guarded = counting  # type: ignore[method-assign]

    def state(self) -> tuple[Any, ...]:
        # The latency histogram's sums and buckets depend on timing: compare calls per (method, code).
        calls = {key: sum(entry[:-1]) for key, entry in self.metrics.rpc_histograms().items()}
        return self.metrics.evaluation_counts(), calls, self.events.seen


def outcome(call: Any) -> bytes | tuple[grpc.StatusCode, str]:
    try:
        return call()
    except Aborted as aborted:
        return (aborted.code, aborted.details)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlagStore]:
    path = write_flag_file(tmp_path_factory.mktemp("paths") / "flags.yaml", DOCUMENT)
    store = FlagStore(FileSource(path))
    store._reload(initial=True)  # no watcher: the file is never edited here
    yield store
    store.close()


def compare(store: FlagStore, limits: ContextLimits, requests: list[tuple[str, bytes]]) -> tuple[Side, Side]:
    """Every request twice (the first may encode a new answer on the general path) on each side."""
    fast, general = Side(store, limits), Side(store, limits)
    for method, request_bytes in requests * 2:
        got, expected = outcomes(fast, general, method, request_bytes)
        assert got == expected, (method, request_bytes)
    assert fast.state() == general.state()
    return fast, general


def outcomes(fast: Side, general: Side, method: str, request_bytes: bytes) -> tuple[Any, Any]:
    if method == "Evaluate":
        parsed = evaluation_pb2.EvaluateRequest.FromString(request_bytes)
        return (
            outcome(lambda: fast.servicer.evaluate_bytes(request_bytes, Context())),
            outcome(lambda: general.servicer.Evaluate(parsed, Context())),
        )
    parsed_all = evaluation_pb2.EvaluateAllRequest.FromString(request_bytes)
    return (
        outcome(lambda: fast.servicer.evaluate_all_bytes(request_bytes, Context())),
        outcome(lambda: general.servicer.EvaluateAll(parsed_all, Context())),
    )


# ---------------------------------------------------------------- generated requests

keys = st.sampled_from(["plan", "email", "accountId", "ip", "age", "country", "$userId", "", "x" * 40])
scalar_values = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["pro", "free", "dev@example.com", "10.1.2.3", "acct-7"]),
    st.floats(),  # NaN and infinities included: the general path refuses them
    st.integers(-100, 100).map(float),
    st.booleans(),
    st.none(),
)
values = st.one_of(
    scalar_values,
    st.just("unset"),  # a Value with no kind set
    st.lists(scalar_values, max_size=2),
    st.dictionaries(st.sampled_from(["a", "b"]), scalar_values, max_size=2),
)


def context_struct(attributes: dict[str, Any]) -> struct_pb2.Struct:
    context = struct_pb2.Struct()
    for key, value in attributes.items():
        if value == "unset":
            context.fields[key].CopyFrom(struct_pb2.Value())
        else:
            context.update({key: value})
    return context


users = st.builds(
    lambda user_id, attributes: evaluation_pb2.User(id=user_id, context=context_struct(attributes)),
    st.sampled_from(["", "u1", "user-42", "acct"]),
    st.dictionaries(keys, values, max_size=5),
)
evaluate_requests = st.builds(
    lambda flag_key, user, debug: (
        "Evaluate",
        evaluation_pb2.EvaluateRequest(flag_key=flag_key, user=user, debug=debug).SerializeToString(),
    ),
    st.sampled_from([*FLAG_KEYS, "nope", ""]),
    users,
    st.booleans(),
)
evaluate_all_requests = st.builds(
    lambda flag_keys, user, debug: (
        "EvaluateAll",
        evaluation_pb2.EvaluateAllRequest(flag_keys=flag_keys, user=user, debug=debug).SerializeToString(),
    ),
    st.lists(st.sampled_from([*FLAG_KEYS, "nope"]), max_size=4),
    users,
    st.booleans(),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    requests=st.lists(st.one_of(evaluate_requests, evaluate_all_requests), min_size=1, max_size=6),
    limits=st.sampled_from(sorted(LIMITS)),
)
def test_both_paths_agree_on_generated_requests(store, requests, limits):
    compare(store, LIMITS[limits], requests)


def test_the_common_case_takes_the_fast_path(store):
    user = evaluation_pb2.User(id="user-42", context=context_struct({"plan": "pro", "age": 34, "beta": True}))
    requests = [
        ("Evaluate", evaluation_pb2.EvaluateRequest(flag_key=key, user=user).SerializeToString())
        for key in FLAG_KEYS
    ]
    requests.append(("EvaluateAll", evaluation_pb2.EvaluateAllRequest(user=user).SerializeToString()))
    requests.append(
        (
            "EvaluateAll",
            evaluation_pb2.EvaluateAllRequest(user=user, flag_keys=["nope", "rollout"]).SerializeToString(),
        )
    )
    fast, _general = compare(store, ContextLimits(), requests)
    # The first Evaluate finds the store not yet known to be ready, and each first answer is
    # encoded on the general path; the second round is all fast.
    assert fast.general_calls <= len(FLAG_KEYS) + 1
    fast.general_calls = 0
    for method, request_bytes in requests:
        call = fast.servicer.evaluate_bytes if method == "Evaluate" else fast.servicer.evaluate_all_bytes
        call(request_bytes, Context())
    assert fast.general_calls == 0


def test_debug_logging_is_written_on_the_fast_paths_calls_too(store, caplog):
    request = evaluation_pb2.EvaluateRequest(flag_key="banner-color", user=evaluation_pb2.User(id="ada"))
    side = Side(store, ContextLimits())
    for _ in range(2):
        side.servicer.evaluate_bytes(request.SerializeToString(), Context())
    with caplog.at_level(logging.DEBUG, logger="sidecar.server.evaluation_service"):
        side.servicer.evaluate_bytes(request.SerializeToString(), Context())
    assert "evaluated banner-color for user 'ada': variant 'blue' (STATIC)" in caplog.messages


def test_an_undecodable_request_is_the_clients_error(store, caplog):
    side = Side(store, ContextLimits())
    for name, call in (
        ("Evaluate", side.servicer.evaluate_bytes),
        ("EvaluateAll", side.servicer.evaluate_all_bytes),
    ):
        assert outcome(lambda call=call: call(b"\x0a\x05ab", Context())) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the request is not a valid flagsidecar.v1.{name}Request message "
            "(is the client built from this server's .proto?)",
        )
        assert any(m.startswith(f"{name}: undecodable request (") for m in caplog.messages)
    evaluations, rpcs, events = side.state()
    assert evaluations == {}  # nothing was evaluated
    assert events == []
    assert set(rpcs) == {("Evaluate", "INVALID_ARGUMENT"), ("EvaluateAll", "INVALID_ARGUMENT")}


# ---------------------------------------------------------------- hand-made encodings


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


# The Value of one map entry, as bytes: every kind, and encodings upb reads but writes back
# differently (nothing set, a kind set twice, an unknown field, a non-minimal length).
value_encodings = st.one_of(
    st.text(max_size=20).map(lambda text: _field(3, text.encode())),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda n: b"\x11" + struct.pack("<d", n)),
    st.sampled_from([b"\x20\x01", b"\x20\x00", b"\x20\x05", b"\x08\x00", b"", b"\x1a\x01x\x20\x01"]),
    st.just(b"\x1a\x80\x00"),  # an empty string with a two-byte length
    st.just(b"\x1a\x02hi\x38\x07"),  # a string, then an unknown varint field 7
    st.just(_field(6, _field(1, b"\x20\x01"))),  # a list: refused
)


@st.composite
def map_entries(draw: st.DrawFn, values_left_out: int) -> bytes:
    """One map entry; about one in `values_left_out` has no value at all."""
    key = draw(st.sampled_from(["plan", "age", "email", "", "$userId", *(f"k{i}" for i in range(12))]))
    parts = []
    if draw(st.integers(0, 6)):  # usually a key; sometimes none at all (read as "")
        parts.append(_field(1, key.encode()))
    if draw(st.integers(1, values_left_out)) != 1:
        parts.append(_field(2, draw(value_encodings)))
    if draw(st.integers(0, 6)) == 0:
        parts.reverse()  # value before key
    return _field(1, b"".join(parts))


@st.composite
def raw_evaluate_requests(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        entries = draw(st.lists(map_entries(draw(st.sampled_from([3, 20]))), max_size=16))
    else:  # what grows the most when re-encoded: distinct keys without values (2 bytes each)
        entries = [_field(1, _field(1, f"k{i}".encode())) for i in range(draw(st.integers(1, 14)))]
    # The context in one or two Struct fields, in one or two User fields (protobuf merges them).
    split = draw(st.integers(0, len(entries)))
    contexts = [b"".join(entries[:split]), b"".join(entries[split:])]
    user_id = _field(1, b"user-42") if draw(st.booleans()) else b""
    if draw(st.booleans()):
        users = [_field(2, _field(2, contexts[0]) + user_id), _field(2, _field(2, contexts[1]))]
    else:
        users = [_field(2, user_id + _field(2, contexts[0]) + _field(2, contexts[1]))]
    flag = _field(1, draw(st.sampled_from(["banner-color", "rollout", "new-checkout"])).encode())
    return flag + b"".join(users)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request_bytes=raw_evaluate_requests(), slack=st.integers(-40, 16))
def test_both_paths_agree_on_hand_made_encodings(store, request_bytes, slack):
    # A byte limit near the request's own size: a context that upb re-encodes larger than it
    # arrived would be refused by the general path and served by a careless fast path.
    limits = ContextLimits(max_keys=16, max_bytes=max(1, len(request_bytes) + slack))
    compare(store, limits, [("Evaluate", request_bytes)])


def test_a_missing_value_grows_the_context_past_the_request():
    # Why plain_context leaves an unset Value to the general path: here the context's ByteSize
    # exceeds the request's length, so the fast path's length check alone would miss the limit.
    entries = b"".join(_field(1, _field(1, f"k{i}".encode())) for i in range(10))
    request_bytes = _field(1, b"banner-color") + _field(2, _field(2, entries))
    request = evaluation_pb2.EvaluateRequest.FromString(request_bytes)
    assert request.user.context.ByteSize() > len(request_bytes)


def test_limits_give_the_same_messages_on_both_paths(store):
    many = evaluation_pb2.User(id="u", context=context_struct({f"k{i}": "v" for i in range(5)}))
    big = evaluation_pb2.User(id="u", context=context_struct({"bio": "y" * 100}))
    requests = [
        ("Evaluate", evaluation_pb2.EvaluateRequest(flag_key="banner-color", user=user).SerializeToString())
        for user in (many, big)
    ] + [
        ("EvaluateAll", evaluation_pb2.EvaluateAllRequest(user=user).SerializeToString())
        for user in (many, big)
    ]
    fast, _ = compare(store, LIMITS["tight"], requests)
    counts, calls, _events = fast.state()
    assert calls == {("Evaluate", "INVALID_ARGUMENT"): 4, ("EvaluateAll", "INVALID_ARGUMENT"): 4}
    assert counts == {}


def test_a_store_that_caches_evaluations_is_asked_on_the_fast_path_too(tmp_path: Path):
    # One way into evaluation (FlagStore.answer): the fast path goes through the cache as well,
    # and takes the general path only to encode the first answer.
    store = FlagStore(FileSource(write_flag_file(tmp_path / "flags.yaml", DOCUMENT)), eval_cache_size=100)
    store._reload(initial=True)
    user = evaluation_pb2.User(id="user-42", context=context_struct({"age": 30}))
    request = ("Evaluate", evaluation_pb2.EvaluateRequest(flag_key="rollout", user=user).SerializeToString())
    fast, _ = compare(store, ContextLimits(), [request])
    assert fast.general_calls == 1
    assert store.stats["cache_hits"] + store.stats["cache_misses"] == 4


@pytest.mark.parametrize("method", ["Evaluate", "EvaluateAll"])
def test_an_undecodable_request_over_the_wire(sidecar, method):
    call = sidecar.channel.unary_unary(f"/flagsidecar.v1.EvaluationService/{method}")
    with pytest.raises(grpc.RpcError) as caught:
        call(b"\x0a\x05ab", timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == (
        f"the request is not a valid flagsidecar.v1.{method}Request message "
        "(is the client built from this server's .proto?)"
    )

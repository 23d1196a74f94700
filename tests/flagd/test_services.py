"""flagd.evaluation.v1/v2 over gRPC, with flagd's own message definitions (no OpenFeature client)."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct, Value

from flagd.evaluation.v1 import evaluation_pb2 as v1
from flagd.evaluation.v1 import evaluation_pb2_grpc as v1_grpc
from flagd.evaluation.v2 import evaluation_pb2 as v2
from flagd.evaluation.v2 import evaluation_pb2_grpc as v2_grpc
from sidecar.engine import ErrorCode, Reason

from . import flags as test_flags

TIMEOUT = 5


def ctx(**values) -> Struct:
    struct = Struct()
    struct.update(values)
    return struct


@pytest.fixture
def stub_v1(flagd_server):
    return v1_grpc.ServiceStub(flagd_server.channel)


@pytest.fixture
def stub_v2(flagd_server):
    return v2_grpc.ServiceStub(flagd_server.channel)


def call(stub, method: str, flag_key: str, pb=v2, metadata=None, **context):
    request = getattr(pb, f"{method}Request")(flag_key=flag_key, context=ctx(**context))
    return getattr(stub, method)(request, timeout=TIMEOUT, metadata=metadata)


def error_of(stub, method: str, flag_key: str, pb=v2, **context) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as raised:
        call(stub, method, flag_key, pb, **context)
    return raised.value.code()


# ---------------------------------------------------------------- every type, both versions


@pytest.mark.parametrize(("pb", "stub_name"), [(v1, "stub_v1"), (v2, "stub_v2")])
def test_every_type_resolves_with_reason_and_variant(request, pb, stub_name):
    stub = request.getfixturevalue(stub_name)
    answer = call(stub, "ResolveBoolean", "bool-flag", pb, targetingKey="u")
    assert (answer.value, answer.variant, answer.reason) == (True, "on", "STATIC")
    answer = call(stub, "ResolveString", "string-flag", pb)
    assert (answer.value, answer.variant, answer.reason) == ("hi", "greeting", "STATIC")
    answer = call(stub, "ResolveInt", "int-flag", pb)
    assert (answer.value, answer.variant) == (100, "hundred")
    answer = call(stub, "ResolveFloat", "int-flag", pb)
    assert (answer.value, answer.variant) == (100.0, "hundred")
    answer = call(stub, "ResolveFloat", "float-flag", pb)
    assert (answer.value, answer.variant) == (3.75, "big")
    answer = call(stub, "ResolveObject", "object-flag", pb)
    assert MessageToDict(answer.value) == {
        "color": "red",
        "size": 3,
        "tags": ["a", "b"],
        "nested": {"x": True},
    }
    assert (answer.variant, answer.reason) == ("red", "STATIC")


def test_v2_values_are_present_even_when_they_are_zero_values(start_flagd):
    document = test_flags.flags()
    for flag in document["flags"]:
        if flag["key"] == "bool-flag":
            flag["defaultVariantWhenOn"] = "off"
        if flag["key"] == "object-flag":
            flag["defaultVariantWhenOn"] = "empty"
    stub = v2_grpc.ServiceStub(start_flagd(document).channel)
    answer = call(stub, "ResolveBoolean", "bool-flag")
    assert answer.HasField("value")
    assert answer.value is False
    assert answer.HasField("variant")
    assert answer.variant == "off"
    answer = call(stub, "ResolveObject", "object-flag")
    assert answer.HasField("value")
    assert MessageToDict(answer.value) == {}


def test_reasons(stub_v2):
    assert call(stub_v2, "ResolveString", "targeted-flag", email="a@example.com").reason == "TARGETING_MATCH"
    answer = call(stub_v2, "ResolveString", "targeted-flag", email="a@elsewhere.org")
    assert (answer.value, answer.variant, answer.reason) == ("external", "public", "DEFAULT")
    split = call(stub_v2, "ResolveString", "split-flag", targetingKey="someone")
    assert split.reason == "SPLIT"
    assert split.variant in {"a", "b"}
    # Deterministic: the same user lands in the same half every time.
    assert {
        call(stub_v2, "ResolveString", "split-flag", targetingKey="someone").variant for _ in range(5)
    } == {split.variant}


def test_targeting_key_is_the_user_id(flagd_server, stub_v2):
    assert call(stub_v2, "ResolveBoolean", "user-flag", targetingKey="user-1").value is True
    assert call(stub_v2, "ResolveBoolean", "user-flag", targetingKey="user-2").value is False
    assert call(stub_v2, "ResolveBoolean", "user-flag").value is False  # no key: anonymous
    # The Python provider always sends targetingKey, as null when there is none.
    request = v2.ResolveBooleanRequest(flag_key="user-flag", context=ctx(targetingKey=None, plan="x"))
    assert stub_v2.ResolveBoolean(request, timeout=TIMEOUT).value is False
    last = flagd_server.recorded[-1]
    assert last.user_id == ""
    assert last.context == {"plan": "x", "injected": "set"}


def test_split_buckets_on_the_targeting_key_like_the_native_api(flagd_server, stub_v2):
    from sidecar.engine import build_context

    for user in ("alice", "bob", "carol", "dave"):
        native = flagd_server.store.evaluate("split-flag", build_context(user, {}))
        assert call(stub_v2, "ResolveString", "split-flag", targetingKey=user).variant == native.variant


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("pb", [v1, v2])
def test_error_status_codes(flagd_server, pb):
    stub = (v1_grpc if pb is v1 else v2_grpc).ServiceStub(flagd_server.channel)
    assert error_of(stub, "ResolveBoolean", "no-such-flag", pb) == grpc.StatusCode.NOT_FOUND
    assert error_of(stub, "ResolveBoolean", "string-flag", pb) == grpc.StatusCode.INVALID_ARGUMENT
    assert error_of(stub, "ResolveString", "bool-flag", pb) == grpc.StatusCode.INVALID_ARGUMENT
    assert error_of(stub, "ResolveInt", "object-flag", pb) == grpc.StatusCode.INVALID_ARGUMENT
    assert error_of(stub, "ResolveObject", "int-flag", pb) == grpc.StatusCode.INVALID_ARGUMENT
    assert error_of(stub, "ResolveFloat", "bool-flag", pb) == grpc.StatusCode.INVALID_ARGUMENT


def test_type_mismatch_is_checked_before_the_disabled_state(stub_v2):
    assert error_of(stub_v2, "ResolveString", "disabled-flag") == grpc.StatusCode.INVALID_ARGUMENT


def test_resolve_int_truncates_like_flagd(stub_v2):
    answer = call(stub_v2, "ResolveInt", "float-flag")
    assert (answer.value, answer.variant) == (3, "big")


def test_error_answers_are_recorded_as_errors(flagd_server, stub_v2):
    error_of(stub_v2, "ResolveBoolean", "string-flag", targetingKey="u")
    mismatch = flagd_server.recorded[-1].evaluation
    assert mismatch.error_code is ErrorCode.TYPE_MISMATCH
    assert mismatch.flag_key == "string-flag"
    error_of(stub_v2, "ResolveBoolean", "no-such-flag")
    assert flagd_server.recorded[-1].evaluation.error_code is ErrorCode.FLAG_NOT_FOUND


# ---------------------------------------------------------------- no default set (flagd 0.16)


def test_no_default_v2_answers_default_with_no_value_and_no_variant(flagd_server, stub_v2):
    """As flagd with a null defaultVariant: not UNKNOWN, which providers retry to their deadline."""
    answer = call(stub_v2, "ResolveString", "no-default-flag", targetingKey="u")
    assert answer.reason == "DEFAULT"
    assert not answer.HasField("value")
    assert not answer.HasField("variant")
    recorded = flagd_server.recorded[-1].evaluation
    assert (recorded.reason, recorded.variant, recorded.error_code) == (Reason.DEFAULT, "", None)


def test_no_default_v1_has_the_zero_value_and_an_empty_variant(stub_v1):
    answer = call(stub_v1, "ResolveString", "no-default-flag", v1)
    assert (answer.value, answer.variant, answer.reason) == ("", "", "DEFAULT")


def test_no_default_still_checks_the_type(stub_v2):
    assert error_of(stub_v2, "ResolveBoolean", "no-default-flag") == grpc.StatusCode.INVALID_ARGUMENT


# ---------------------------------------------------------------- disabled (flagd 0.16)


def test_disabled_v2_has_no_value_and_no_variant(stub_v2):
    answer = call(stub_v2, "ResolveBoolean", "disabled-flag")
    assert answer.reason == "DISABLED"
    assert not answer.HasField("value")
    assert not answer.HasField("variant")


def test_disabled_v1_has_the_zero_value_and_an_empty_variant(stub_v1):
    answer = call(stub_v1, "ResolveBoolean", "disabled-flag", v1)
    assert (answer.value, answer.variant, answer.reason) == (False, "", "DISABLED")


def test_disabled_evaluation_is_recorded_as_the_native_api_answers_it(flagd_server, stub_v2):
    call(stub_v2, "ResolveBoolean", "disabled-flag", targetingKey="u")
    recorded = flagd_server.recorded[-1]
    assert recorded.evaluation.reason is Reason.DISABLED
    assert (recorded.evaluation.variant, recorded.user_id) == ("off", "u")


# ---------------------------------------------------------------- context


def test_static_context_values_are_merged(stub_v1, stub_v2):
    assert call(stub_v2, "ResolveString", "injected-flag").value == "INTERNAL"
    assert call(stub_v1, "ResolveString", "injected-flag", v1).value == "INTERNAL"
    # The static value wins over the request's.
    assert call(stub_v2, "ResolveString", "injected-flag", injected="no").value == "INTERNAL"


def test_header_values_are_mapped_into_the_context_and_win(stub_v1, stub_v2):
    assert call(stub_v2, "ResolveBoolean", "header-flag").value is False
    assert call(stub_v2, "ResolveBoolean", "header-flag", metadata=[("x-tenant", "acme")]).value is True
    assert call(stub_v1, "ResolveBoolean", "header-flag", v1, metadata=[("x-tenant", "acme")]).value is True
    # The header wins over the request body; an absent header leaves the body's value alone.
    assert call(stub_v2, "ResolveBoolean", "header-flag", metadata=[("x-tenant", "acme")], tenant="x").value
    assert call(stub_v2, "ResolveBoolean", "header-flag", tenant="acme").value is True


def test_header_can_carry_the_targeting_key(start_flagd):
    server = start_flagd(header_to_context={"x-user": "targetingKey"})
    stub = v2_grpc.ServiceStub(server.channel)
    assert call(stub, "ResolveBoolean", "user-flag", metadata=[("x-user", "user-1")]).value is True


def test_reserved_and_nested_context_values_are_dropped(flagd_server, stub_v2):
    request = v2.ResolveBooleanRequest(
        flag_key="bool-flag",
        context=ctx(**{"$flagd": {"flagKey": "x"}, "$userId": "evil", "obj": {"a": 1}, "list": [1], "ok": 1}),
    )
    assert stub_v2.ResolveBoolean(request, timeout=TIMEOUT).value is True
    assert flagd_server.recorded[-1].context == {"ok": 1.0, "injected": "set"}
    assert flagd_server.recorded[-1].user_id == ""


def test_a_context_value_with_nothing_set_is_null_as_in_the_native_api(flagd_server, stub_v2):
    # As protobuf's json_format and Go's structpb read it (sidecar.server.edge.context); it was dropped.
    context = ctx(ok=1)
    context.fields["empty"].CopyFrom(Value())
    request = v2.ResolveBooleanRequest(flag_key="bool-flag", context=context)
    assert stub_v2.ResolveBoolean(request, timeout=TIMEOUT).value is True
    assert flagd_server.recorded[-1].context == {"ok": 1.0, "empty": None, "injected": "set"}


def test_context_rules_reject_bad_options():
    with pytest.raises(ValueError, match="reserved"):
        flagd_rules(static=["$x=1"])
    with pytest.raises(ValueError, match="binary"):
        flagd_rules(headers=["x-b-bin=k"])
    assert flagd_rules(static=["a=1", "b=x=y", "a=2"]).static_values == {"a": "2", "b": "x=y"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        flagd_rules(static=["novalue"])


def flagd_rules(static=(), headers=()):
    from sidecar.server.flagd.service import FlagdSettings

    return FlagdSettings.from_options(static, headers).context


# ---------------------------------------------------------------- ResolveAll (v1)


def test_resolve_all_answers_every_successful_flag(flagd_server, stub_v1):
    answer = stub_v1.ResolveAll(v1.ResolveAllRequest(context=ctx(targetingKey="user-1")), timeout=TIMEOUT)
    flags = {key: MessageToDict(flag, preserving_proto_field_name=True) for key, flag in answer.flags.items()}
    assert flags["bool-flag"] == {"reason": "STATIC", "variant": "on", "bool_value": True}
    assert flags["int-flag"] == {"reason": "STATIC", "variant": "hundred", "double_value": 100.0}
    assert flags["object-flag"]["object_value"]["color"] == "red"
    assert flags["user-flag"]["bool_value"] is True
    assert flags["injected-flag"]["string_value"] == "INTERNAL"
    # Like flagd: disabled flags, failing flags and flags with no value are left out.
    assert "disabled-flag" not in flags
    assert "no-default-flag" not in flags
    # ...but every evaluation still produces its event, as EvaluateAll does.
    recorded = {r.evaluation.flag_key for r in flagd_server.recorded}
    assert {"disabled-flag", "no-default-flag", "bool-flag"} <= recorded


def test_metadata_is_sent(start_flagd):
    document = test_flags.flags()
    document["flags"][0]["metadata"] = {"owner": "team-a", "ticket": 42}
    server = start_flagd(document)
    answer = call(v2_grpc.ServiceStub(server.channel), "ResolveBoolean", "bool-flag")
    assert MessageToDict(answer.metadata) == {"owner": "team-a", "ticket": 42}
    all_flags = v1_grpc.ServiceStub(server.channel).ResolveAll(v1.ResolveAllRequest(), timeout=TIMEOUT)
    assert MessageToDict(all_flags.flags["bool-flag"].metadata) == {"owner": "team-a", "ticket": 42}


def test_unavailable_before_the_first_flag_set(start_flagd):
    server = start_flagd(start_store=False)
    assert error_of(v2_grpc.ServiceStub(server.channel), "ResolveBoolean", "bool-flag") == (
        grpc.StatusCode.UNAVAILABLE
    )


def test_an_empty_object_inside_a_value_stays_an_object(start_flagd):
    # One Python -> Struct conversion (sidecar.server.edge.context): flagd's own left a nested {}
    # as a Value with nothing set, which clients read as null.
    value = {"empty": {}, "list": [{}], "n": 3}
    document = {
        "flags": [
            {
                "key": "nested-empty",
                "enabled": True,
                "variants": [{"key": "only", "value": value}],
                "defaultVariantWhenOn": "only",
                "defaultVariantWhenOff": "only",
                "metadata": {"owner": {}},
            }
        ]
    }
    stub = v2_grpc.ServiceStub(start_flagd(document).channel)
    response = call(stub, "ResolveObject", "nested-empty")
    assert MessageToDict(response.value) == {"empty": {}, "list": [{}], "n": 3.0}
    assert response.value.fields["empty"].WhichOneof("kind") == "struct_value"
    assert response.metadata.fields["owner"].WhichOneof("kind") == "struct_value"

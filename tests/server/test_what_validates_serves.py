"""What validates, serves: any flag document `validate` accepts is answered by every API without
INTERNAL or UNKNOWN, and its events encode as strict JSON; any document it rejects is rejected with
listed problems, no traceback, and counted, also on reload.

Documents are generated, hostile ones included: values of every JSON type (and a few that JSON
has no type for), wrong field types, unknown references, odd percentages, YAML-only constructs
appended as text.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from flagd.evaluation.v1 import evaluation_pb2 as flagd_v1
from flagd.evaluation.v1 import evaluation_pb2_grpc as flagd_v1_grpc
from flagd.evaluation.v2 import evaluation_pb2 as flagd_v2
from flagd.evaluation.v2 import evaluation_pb2_grpc as flagd_v2_grpc
from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc
from sidecar.engine import OPERATIONS, FlagSetError, compile_flag_set
from sidecar.events import FeatureEvent
from sidecar.store import parse_flag_document
from tests.conftest import SAMPLE_FLAGS

# Statuses that mean "the server broke", never an answer to a request.
BROKEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAVAILABLE}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
finite = st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)


def values_of(scalar: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalar,
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
        ),
        max_leaves=8,
    )


hostile_values = values_of(scalars)
json_values = values_of(st.none() | st.booleans() | finite | st.text(max_size=12))
properties = st.sampled_from(["plan", "email", "age", "ip", "$userId", "version", "missing"])
# Values that fit each kind of operation, for documents meant to validate.
FITTING: dict[str, st.SearchStrategy[Any]] = {
    "GREATER": st.lists(finite, min_size=1, max_size=2),
    "IS_IN_NETWORK": st.lists(st.sampled_from(["10.0.0.0/8", "192.168.1.1", "::1/128"]), min_size=1),
    "MATCHES_REGEX": st.lists(st.sampled_from(["^a", "x.com$", "[0-9]+"]), min_size=1),
    "EXISTS": st.just([]),
}
FITTING.update(
    {
        name: FITTING[like]
        for like, names in {
            "GREATER": ["GREATER_OR_EQUAL", "LOWER", "LOWER_OR_EQUAL"],
            "MATCHES_REGEX": ["DOESNT_MATCH_REGEX"],
            "EXISTS": ["DOESNT_EXIST"],
        }.items()
        for name in names
    }
)
# String tests take strings; ONE_OF / NOT_ONE_OF any scalars; others (semantic versions) versions.
STRINGS = st.lists(st.sampled_from(["pro", "@x.com", "a", ""]) | st.text(max_size=5), min_size=1, max_size=3)
for name in (
    "CONTAINS",
    "STARTS_WITH",
    "ENDS_WITH",
    "DOESNT_CONTAIN",
    "DOESNT_START_WITH",
    "DOESNT_END_WITH",
):
    FITTING[name] = STRINGS
FITTING["ONE_OF"] = FITTING["NOT_ONE_OF"] = st.lists(
    st.sampled_from(["pro", "a"]) | finite | st.booleans(), min_size=1, max_size=3
)
VERSIONS = st.lists(st.sampled_from(["1.2.3", "v2.0.0", "0.1.0-rc.1+build.5"]), min_size=1, max_size=2)


@st.composite
def constraints(draw: st.DrawFn, segments: list[str], hostile: bool) -> dict[str, Any]:
    if hostile:
        operation = draw(st.sampled_from(sorted(OPERATIONS)) | st.text(max_size=6))
        values: Any = draw(
            st.lists(st.sampled_from(["pro", "(", "10.0.0.0/33"]) | scalars, max_size=3) | scalars
        )
    else:
        operation = draw(st.sampled_from(sorted(OPERATIONS)))
        if "SEGMENT" in operation:
            if not segments:
                operation = "EXISTS"
            values = draw(st.lists(st.sampled_from(segments), min_size=1, max_size=2)) if segments else []
        else:
            values = draw(FITTING.get(operation, VERSIONS))
    constraint: dict[str, Any] = {"operation": operation, "values": values}
    if "SEGMENT" not in operation:
        constraint["property"] = draw(properties | scalars) if hostile else draw(properties)
    return constraint


@st.composite
def flag_documents(draw: st.DrawFn) -> dict[str, Any]:
    hostile = draw(st.sampled_from([False, False, True]))
    segment_keys = draw(st.lists(st.sampled_from(["beta", "staff", "s3"]), max_size=3, unique=True))
    segments = [
        {
            "key": key,
            # A segment references only those after it: no cycles unless hostile.
            "rules": [
                {
                    "constraints": draw(
                        st.lists(
                            constraints(segment_keys[i + 1 :] if not hostile else segment_keys, hostile),
                            max_size=2,
                        )
                    )
                }
            ],
        }
        for i, key in enumerate(segment_keys)
    ]
    flags = []
    for index in range(draw(st.integers(1, 4))):
        names = st.text(max_size=8) if hostile else st.sampled_from(["a", "b", "c", "on", "off"])
        variant_keys = draw(st.lists(names, min_size=0 if hostile else 1, max_size=3, unique=True))
        kind = draw(st.sampled_from(["bool", "str", "num", "obj"]))
        value_of = {
            "bool": st.booleans(),
            "str": st.text(max_size=10),
            "num": finite,
            "obj": st.dictionaries(
                st.text(max_size=4), hostile_values if hostile else json_values, max_size=3
            ),
        }[kind]
        variants = [{"key": key, "value": draw(value_of)} for key in variant_keys]
        rules = []
        for _ in range(draw(st.integers(0, 3))):
            rule: dict[str, Any] = {
                "constraints": draw(st.lists(constraints(segment_keys, hostile), max_size=3))
            }
            if variant_keys:
                valid = [[100], [50, 50], [33.33, 33.33, 33.34], [25, 75]]
                fitting = [shares for shares in valid if len(shares) <= len(variant_keys)]
                percentages = draw(
                    st.sampled_from(fitting)
                    if not hostile
                    else st.sampled_from([[60], [100.001], [-10, 110], [100], [50, 50]])
                )
                shares = draw(
                    st.lists(
                        st.sampled_from(variant_keys),
                        min_size=len(percentages),
                        max_size=len(percentages),
                        unique=not hostile,
                    )
                )
                rule["distributions"] = [
                    {"variant": variant, "percentage": percentage}
                    for variant, percentage in zip(shares, percentages, strict=True)
                ]
            if draw(st.booleans()):
                rule["bucketBy"] = draw(properties)
            rules.append(rule)
        flag: dict[str, Any] = {
            "key": f"flag-{index}",
            "enabled": draw(st.booleans() | st.none()) if hostile else draw(st.booleans()),
            "variants": variants,
            "rules": rules,
        }
        for field in ("defaultVariantWhenOn", "defaultVariantWhenOff"):
            if variant_keys and draw(st.booleans()):
                flag[field] = draw(st.sampled_from([*variant_keys, "nope"] if hostile else variant_keys))
        flags.append(flag)
    return {"flags": flags, "segments": segments}


YAML_EXTRAS = [
    "",
    "extra: 2026-01-02\n",
    "extra: !!binary aGVsbG8=\n",
    "extra: &a [*a]\n",
    "flags: []\n",  # a duplicate top-level key
    "extra: .nan\n",
]


def as_text(document: dict[str, Any], form: str, extra: str) -> tuple[str, bytes]:
    if form == "json":
        return "flags.json", json.dumps(document).encode()
    return "flags.yaml", (yaml.safe_dump(document, allow_unicode=True) + extra).encode(
        "utf-8", "surrogatepass"
    )


CONTEXTS = [
    {},
    {"plan": "pro", "email": "a@x.com", "age": 34, "ip": "10.1.2.3", "version": "1.2.3"},
    {"plan": 5, "email": None, "age": "old", "ip": "not-an-ip", "version": True},
]


def struct(context: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(context)
    return message


def call(method: Any, request: Any) -> Any:
    try:
        return method(request, timeout=10)
    except grpc.RpcError as error:
        status, details = error.code(), error.details()
    assert status not in BROKEN, (status, details)
    return None


def serve_everything(sidecar: Any, flag_keys: list[str]) -> None:
    native = evaluation_pb2_grpc.EvaluationServiceStub(sidecar.channel)
    v1 = flagd_v1_grpc.ServiceStub(sidecar.channel)
    v2 = flagd_v2_grpc.ServiceStub(sidecar.channel)
    for context in CONTEXTS:
        user = evaluation_pb2.User(id="user-1", context=struct(context))
        for debug in (False, True):
            call(native.EvaluateAll, evaluation_pb2.EvaluateAllRequest(user=user, debug=debug))
            for key in flag_keys:
                call(native.Evaluate, evaluation_pb2.EvaluateRequest(flag_key=key, user=user, debug=debug))
        flagd_context = struct({**context, "targetingKey": "user-1"})
        call(v1.ResolveAll, flagd_v1.ResolveAllRequest(context=flagd_context))
        for key in flag_keys:
            for method, request in (
                (v1.ResolveBoolean, flagd_v1.ResolveBooleanRequest),
                (v1.ResolveString, flagd_v1.ResolveStringRequest),
                (v1.ResolveFloat, flagd_v1.ResolveFloatRequest),
                (v1.ResolveInt, flagd_v1.ResolveIntRequest),
                (v1.ResolveObject, flagd_v1.ResolveObjectRequest),
                (v2.ResolveBoolean, flagd_v2.ResolveBooleanRequest),
                (v2.ResolveString, flagd_v2.ResolveStringRequest),
                (v2.ResolveFloat, flagd_v2.ResolveFloatRequest),
                (v2.ResolveInt, flagd_v2.ResolveIntRequest),
                (v2.ResolveObject, flagd_v2.ResolveObjectRequest),
            ):
                call(method, request(flag_key=key, context=flagd_context))


@pytest.fixture(scope="module")
def one_sidecar(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One server for every generated document (started once: hypothesis runs many examples)."""
    from sidecar.server.app import SidecarServer
    from sidecar.sources import FileSource
    from sidecar.store import FlagStore
    from tests.conftest import RunningSidecar, write_flag_file

    class UnwatchedFileSource(FileSource):
        """The file source, reloaded only when the test says so (a watcher's reload would race it)."""

        def watch(self, events: Any) -> None:
            pass

    flag_file = write_flag_file(tmp_path_factory.mktemp("serves") / "flags.yaml", SAMPLE_FLAGS)
    store = FlagStore(UnwatchedFileSource(flag_file))
    store.start()
    server = SidecarServer(store, "127.0.0.1:0")
    server.start()
    sidecar = RunningSidecar(server, store, flag_file, grpc.insecure_channel(server.address))
    yield sidecar
    sidecar.channel.close()
    server.stop(grace=0)
    store.close()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    document=flag_documents(),
    form=st.sampled_from(["yaml", "json"]),
    extra=st.just("") | st.sampled_from(YAML_EXTRAS),
)
def test_what_validates_serves_and_what_is_rejected_is_listed(one_sidecar, document, form, extra) -> None:
    source, data = as_text(document, form, extra if form == "yaml" else "")
    try:
        flag_set = compile_flag_set(parse_flag_document(data, source), source)
    except FlagSetError as error:
        problems = error.problems
    else:
        problems = []
    accepted = not problems
    assert all(str(problem) for problem in problems)

    event("accepted" if accepted else "rejected")
    # The same bytes as the served file, reloaded: applied exactly when validate accepts them.
    path = one_sidecar.flag_file.with_name(source)
    path.write_bytes(data)
    one_sidecar.store.source.path = path
    rejected_before = one_sidecar.store.stats["rejected_reloads"]
    assert one_sidecar.store.reload() is accepted
    assert one_sidecar.store.stats["rejected_reloads"] == rejected_before + (not accepted)
    if not accepted:
        return

    serve_everything(one_sidecar, [*flag_set.flags, "no-such-flag"])
    for flag in flag_set.flags.values():
        for context in CONTEXTS:
            evaluation = one_sidecar.store.evaluate(flag.key, {**context, "$userId": "user-1"})
            feature_event = FeatureEvent.from_evaluation(evaluation, "user-1")
            json.dumps(feature_event.to_json(), allow_nan=False)  # strict JSON: what every exporter sends

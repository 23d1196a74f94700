"""The translation to flagd's flag definitions, checked against the real flagd evaluator.

For each translated operation, every context of CONTEXTS (strings, other strings, "", numbers,
booleans, null, a missing property, lists and objects; with and without a targeting key) gets
the same value, variant and reason from openfeature-flagd-core's FlagdCore (the evaluator inside
the Python in-process provider; pyproject's bench extra) on the translated document as from our
engine on the context the sidecar's flagd RPC services build from the same request
(ContextRules.merge: numbers through a Struct, lists and objects dropped). FlagdCore imports none
of flagd's protobuf modules, so it can share this process with the sidecar (proto/flagd/README.md).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from google.protobuf.struct_pb2 import Struct
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import FlagNotFoundError

from sidecar.engine import build_context, compile_flag_set, evaluate
from sidecar.engine.operators import OPERATIONS
from sidecar.server.edge import fill_struct
from sidecar.server.flagd import ContextRules
from sidecar.server.flagd.mapping import to_int64
from sidecar.server.sync.flagd_translation import (
    OPERATION_REASONS,
    SPLIT_REASON,
    TRANSLATED_OPERATIONS,
    Translator,
    translate,
)

VALUES: list[Any] = ["pro", "Pro", "pro-plus", "x-pro", "", "0", "enterprise", 5, 5.0, 0, True, False, None]
STRUCTURES: list[Any] = [["pro"], {"plan": "pro"}]
MISSING = object()
CONTEXTS: list[tuple[str | None, Any]] = [
    (key, value) for key in (None, "", "0", "u1", "pro") for value in [*VALUES, *STRUCTURES, MISSING]
]


def rule_flag(key: str, *constraints: dict[str, Any], default: str | None = "no") -> dict[str, Any]:
    flag: dict[str, Any] = {
        "key": key,
        "enabled": True,
        "variants": [{"key": "yes", "value": "yes"}, {"key": "no", "value": "no"}],
        "rules": [
            {"constraints": list(constraints), "distributions": [{"variant": "yes", "percentage": 100}]}
        ],
    }
    if default is not None:
        flag["defaultVariantWhenOn"] = default
    return flag


def constraint(operation: str, *values: Any, prop: str = "plan") -> dict[str, Any]:
    return {"property": prop, "operation": operation, "values": list(values)}


SEGMENTS = [
    {"key": "paying", "rules": [{"constraints": [constraint("ONE_OF", "pro", "enterprise")]}]},
    {
        "key": "beta",
        "rules": [
            {"constraints": [{"operation": "IS_IN_SEGMENT", "values": ["paying"]}]},
            {"constraints": [constraint("STARTS_WITH", "x-")]},
        ],
    },
    {"key": "nobody"},
]

TRANSLATED_FLAGS = [
    rule_flag("one-of", constraint("ONE_OF", "pro", "enterprise", "")),
    rule_flag("one-of-empty-string", constraint("ONE_OF", "")),
    rule_flag("not-one-of", constraint("NOT_ONE_OF", "pro", "")),
    rule_flag("starts-with", constraint("STARTS_WITH", "pro", "x-")),
    rule_flag("starts-with-empty", constraint("STARTS_WITH", "")),
    rule_flag("doesnt-start-with", constraint("DOESNT_START_WITH", "pro")),
    rule_flag("ends-with", constraint("ENDS_WITH", "pro", "prise")),
    rule_flag("doesnt-end-with", constraint("DOESNT_END_WITH", "pro")),
    rule_flag("user-id-one-of", constraint("ONE_OF", "u1", "", prop="$userId")),
    rule_flag("user-id-not-one-of", constraint("NOT_ONE_OF", "u1", prop="$userId")),
    rule_flag("user-id-starts-with", constraint("STARTS_WITH", "", prop="$userId")),
    rule_flag("in-segment", {"operation": "IS_IN_SEGMENT", "values": ["beta"]}),
    rule_flag("in-every-segment", {"operation": "IS_IN_SEGMENT", "values": ["beta", "paying"]}),
    rule_flag("in-no-segment", {"operation": "ISNT_IN_SEGMENT", "values": ["paying", "nobody"]}),
    rule_flag("in-empty-segment", {"operation": "IS_IN_SEGMENT", "values": ["nobody"]}),
    rule_flag("two-constraints", constraint("STARTS_WITH", "pro"), constraint("NOT_ONE_OF", "pro")),
    rule_flag("no-default", constraint("ONE_OF", "pro"), default=None),
    {
        "key": "rules-in-order",
        "enabled": True,
        "variants": [{"key": "a", "value": 1}, {"key": "b", "value": 2}, {"key": "c", "value": 3}],
        "defaultVariantWhenOn": "c",
        "rules": [
            {
                "constraints": [constraint("ENDS_WITH", "pro")],
                "distributions": [{"variant": "a", "percentage": 100}],
            },
            # A share of 0 % serves nothing: this rule answers "b" alone.
            {
                "distributions": [
                    {"variant": "a", "percentage": 0},
                    {"variant": "b", "percentage": 100},
                ]
            },
        ],
    },
]
STATIC_FLAGS = [
    {
        "key": "static-bool",
        "enabled": True,
        "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
        "defaultVariantWhenOn": "on",
        "defaultVariantWhenOff": "off",
    },
    {
        "key": "static-no-default",
        "enabled": True,
        "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
    },
    {
        "key": "disabled-with-off-default",
        "enabled": False,
        "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
        "defaultVariantWhenOn": "on",
        "defaultVariantWhenOff": "off",
        "rules": [{"distributions": [{"variant": "on", "percentage": 100}]}],
    },
    {
        "key": "static-integral-float",
        "enabled": True,
        "variants": [{"key": "two", "value": 2.0}, {"key": "three", "value": 3}],
        "defaultVariantWhenOn": "two",
    },
    {
        "key": "static-object",
        "enabled": True,
        "variants": [{"key": "o", "value": {"tier": "gold", "limits": [1, 2.5], "nested": {"a": None}}}],
        "defaultVariantWhenOn": "o",
        "metadata": {"owner": "payments", "ticket": 12, "live": True, "tags": ["a"], "extra": {"x": 1}},
    },
]


def document() -> dict[str, Any]:
    return copy.deepcopy({"flags": [*TRANSLATED_FLAGS, *STATIC_FLAGS], "segments": SEGMENTS})


@pytest.fixture(scope="module")
def compiled():
    flag_set = compile_flag_set(document())
    flags = {key: flag.definition for key, flag in flag_set.flags.items()}
    segments = {key: segment.definition for key, segment in flag_set.segments.items()}
    translation = translate(flags, segments)
    core = FlagdCore()
    core.set_flags(json.dumps(translation.document()))
    return flag_set, translation, core


def rpc_answer(flag, targeting_key: str | None, attributes: dict[str, Any], kind: str):
    """What the sidecar's flagd RPC services answer a Resolve<kind> (value None: the caller's
    default), as sidecar.server.flagd.service does."""
    request = fill_struct(Struct(), {"targetingKey": targeting_key, **attributes})
    user_id, merged = ContextRules().merge(request, None)
    evaluation = evaluate(flag, build_context(user_id, merged))
    if evaluation.reason.name == "DISABLED" or not evaluation.has_value:
        return None, None, evaluation.reason.name
    value = evaluation.value
    if kind == "integer":
        value = to_int64(value)
    elif kind == "float":
        value = float(value)
    return value, evaluation.variant, evaluation.reason.name


def in_process_answer(
    core: FlagdCore, key: str, targeting_key: str | None, attributes: dict[str, Any], kind: str
):
    resolve = {
        "string": core.resolve_string_value,
        "boolean": core.resolve_boolean_value,
        "integer": core.resolve_integer_value,
        "float": core.resolve_float_value,
        "object": core.resolve_object_value,
    }[kind]
    details = resolve(key, None, EvaluationContext(targeting_key, attributes))  # type: ignore[arg-type]
    return details.value, details.variant, str(details.reason)


def kinds(core: FlagdCore, key: str) -> tuple[str, ...]:
    """The Resolve calls a flag of this type answers."""
    flag = core._flag_store.get_flag(key)
    assert flag is not None
    value = next(iter(flag.variants.values()))
    if isinstance(value, bool):
        return ("boolean",)
    if isinstance(value, str):
        return ("string",)
    if isinstance(value, int | float):
        return ("integer", "float")
    return ("object",)


def test_the_translated_flags_are_all_served(compiled):
    _, translation, _ = compiled
    assert translation.left_out == {}
    assert set(translation.flags) == {f["key"] for f in TRANSLATED_FLAGS + STATIC_FLAGS}


@pytest.mark.parametrize("key", [f["key"] for f in TRANSLATED_FLAGS + STATIC_FLAGS])
def test_flagd_evaluates_every_context_as_the_sidecar_does(compiled, key):
    flag_set, _, core = compiled
    flag = flag_set.flags[key]
    for targeting_key, value in CONTEXTS:
        attributes = {} if value is MISSING else {"plan": value}
        for kind in kinds(core, key):
            expected = rpc_answer(flag, targeting_key, attributes, kind)
            actual = in_process_answer(core, key, targeting_key, attributes, kind)
            where = f"{key} Resolve{kind} targetingKey={targeting_key!r} plan={value!r}"
            assert actual == expected, where
            assert [type(v) for v in actual] == [type(v) for v in expected], where


def test_a_disabled_flag_is_disabled_whatever_its_off_default(compiled):
    _, translation, _ = compiled
    assert translation.flags["disabled-with-off-default"] == {
        "state": "DISABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "on",
    }


def test_integral_floats_are_written_as_integers_and_metadata_keeps_scalars(compiled):
    _, translation, core = compiled
    assert translation.flags["static-integral-float"]["variants"] == {"two": 2, "three": 3}
    assert core.resolve_integer_value("static-integral-float", 0).value == 2
    assert translation.flags["static-object"]["metadata"] == {"owner": "payments", "ticket": 12, "live": True}


def left_out(*flags: dict[str, Any], header_properties: frozenset[str] = frozenset()) -> dict[str, str]:
    regexes = {"key": "regexes", "rules": [{"constraints": [constraint("MATCHES_REGEX", "^p")]}]}
    flag_set = compile_flag_set({"flags": list(flags), "segments": copy.deepcopy([*SEGMENTS, regexes])})
    translation = translate(
        {key: flag.definition for key, flag in flag_set.flags.items()},
        {key: segment.definition for key, segment in flag_set.segments.items()},
        header_properties=header_properties,
    )
    assert not set(translation.flags) & set(translation.left_out)
    return dict(translation.left_out)


@pytest.mark.parametrize(
    ("flag", "why"),
    [
        (rule_flag("numbers", constraint("ONE_OF", 5)), "true == 1"),
        (rule_flag("booleans", constraint("NOT_ONE_OF", True)), "true == 1"),
        (rule_flag("mixed", constraint("ONE_OF", "5", 5)), "true == 1"),
        (rule_flag("greater", constraint("GREATER", 18, prop="age")), "'30' >= 18 holds"),
        (rule_flag("exists", constraint("EXISTS", prop="banned")), "existence test"),
        (rule_flag("contains", constraint("CONTAINS", "pro")), "substring test"),
        (rule_flag("regex", constraint("MATCHES_REGEX", "^p")), "regular expression"),
        (rule_flag("network", constraint("IS_IN_NETWORK", "10.0.0.0/8", prop="ip")), "network test"),
        (rule_flag("semver", constraint("SEMVER_GREATER", "1.2.0", prop="v")), "version test"),
        (rule_flag("dotted", constraint("ONE_OF", "x", prop="user.plan")), "as a path"),
        (rule_flag("targeting-key", constraint("ONE_OF", "x", prop="targetingKey")), "targeting key"),
        (
            rule_flag("segment-with-regex", {"operation": "IS_IN_SEGMENT", "values": ["regexes"]}),
            "regular expression",
        ),
        (
            {
                "key": "split",
                "enabled": True,
                "variants": [{"key": "a", "value": "a"}, {"key": "b", "value": "b"}],
                "defaultVariantWhenOn": "a",
                "rules": [
                    {
                        "distributions": [
                            {"variant": "a", "percentage": 50},
                            {"variant": "b", "percentage": 50},
                        ]
                    }
                ],
            },
            SPLIT_REASON,
        ),
        (
            {
                "key": "fractional-number",
                "enabled": True,
                "variants": [{"key": "a", "value": 1.5}],
                "defaultVariantWhenOn": "a",
            },
            "ResolveInt truncates it",
        ),
        (
            {
                "key": "huge",
                "enabled": True,
                "variants": [{"key": "a", "value": 2**64}],
                "defaultVariantWhenOn": "a",
            },
            "outside int64",
        ),
        (
            {"key": "list", "enabled": False, "variants": [{"key": "a", "value": [1]}]},
            "cannot carry it",
        ),
    ],
)
def test_what_flagd_cannot_evaluate_exactly_is_left_out_with_the_reason(flag, why):
    reasons = left_out(flag)
    assert list(reasons) == [flag["key"]]
    assert why in reasons[flag["key"]]


def test_a_property_filled_from_a_header_is_left_out():
    reasons = left_out(
        rule_flag("tenant", constraint("ONE_OF", "a", prop="tenant")), header_properties=frozenset({"tenant"})
    )
    assert "--context-from-header" in reasons["tenant"]


def test_every_operation_is_translated_or_has_a_reason():
    assert set(OPERATIONS) == TRANSLATED_OPERATIONS | set(OPERATION_REASONS)
    assert not TRANSLATED_OPERATIONS & set(OPERATION_REASONS)


def test_a_left_out_flag_is_not_found_in_process():
    flag_set = compile_flag_set({"flags": [rule_flag("regex", constraint("MATCHES_REGEX", "^p"))]})
    translation = translate({k: f.definition for k, f in flag_set.flags.items()}, {})
    core = FlagdCore()
    core.set_flags(json.dumps(translation.document()))
    with pytest.raises(FlagNotFoundError):
        core.resolve_string_value("regex", "default")


def test_fractional_v3_buckets_differ_from_ours_so_splits_stay_out():
    """The closest fractional to our split (our bucketing string, weights of percentage x 100) still
    hashes CBOR's header with the text, so users land elsewhere: why splits are left out."""
    split = {
        "key": "split-user",
        "enabled": True,
        "variants": [{"key": k, "value": k} for k in "abc"],
        "defaultVariantWhenOn": "a",
        "rules": [
            {
                "distributions": [
                    {"variant": "a", "percentage": 33.33},
                    {"variant": "b", "percentage": 33.33},
                    {"variant": "c", "percentage": 33.34},
                ]
            }
        ],
    }
    flag = compile_flag_set({"flags": [split]}).flags["split-user"]
    fractional = {
        "fractional": [
            {"cat": ["split-user:", {"var": "targetingKey"}]},
            ["a", 3333],
            ["b", 3333],
            ["c", 3334],
        ]
    }
    core = FlagdCore()
    core.set_flags(
        {
            "flags": {
                "split-user": {
                    "state": "ENABLED",
                    "variants": {k: k for k in "abc"},
                    "defaultVariant": "a",
                    "targeting": fractional,
                }
            }
        }
    )
    users = [f"user-{n}" for n in range(200)]
    ours = [evaluate(flag, build_context(user)).variant for user in users]
    theirs = [core.resolve_string_value("split-user", "", EvaluationContext(user)).variant for user in users]
    assert sum(a != b for a, b in zip(ours, theirs, strict=True)) > 50


def test_the_translator_reuses_unchanged_flags_and_retranslates_on_a_segment_change():
    flag_set = compile_flag_set(document())
    flags = {key: flag.definition for key, flag in flag_set.flags.items()}
    segments = {key: segment.definition for key, segment in flag_set.segments.items()}
    translator = Translator()
    first = translator.translate(flags, segments)
    assert json.loads(first.document_text()) == first.document()
    again = translator.translate(dict(flags), dict(segments))
    assert all(again.flags[key] is first.flags[key] for key in first.flags)  # reused, not rebuilt
    # A segment's change reaches the flags that inline it.
    changed = compile_flag_set({**document(), "segments": [*SEGMENTS[:2], {"key": "nobody", "rules": [{}]}]})
    after = translator.translate(
        flags, {key: segment.definition for key, segment in changed.segments.items()}
    )
    assert after.flags["in-empty-segment"]["targeting"] != first.flags["in-empty-segment"]["targeting"]
    assert after.flags["static-bool"] == first.flags["static-bool"]

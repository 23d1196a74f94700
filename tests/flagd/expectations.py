"""What every OpenFeature flagd client must see for the checks in clients/checks.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sidecar.engine import build_context, compile_flag_set, evaluate

from . import flags as test_flags

CHECKS = json.loads((Path(__file__).parent / "clients" / "checks.json").read_text())


def ok(value: Any, variant: str, reason: str) -> dict[str, Any]:
    return {"value": value, "reason": reason, "variant": variant, "errorCode": None}


def error(default: Any, code: str) -> dict[str, Any]:
    return {"value": default, "reason": "ERROR", "variant": None, "errorCode": code}


def _split_answer() -> dict[str, Any]:
    """The split is deterministic: the engine says which half "someone" is in."""
    flag = compile_flag_set(test_flags.flags()).flags["split-flag"]
    answer = evaluate(flag, build_context("someone", {}))
    return ok(answer.value, answer.variant, "SPLIT")


def results() -> dict[str, dict[str, Any]]:
    return {
        "boolean": ok(True, "on", "STATIC"),
        # Both providers cache STATIC answers and report a cache hit as CACHED.
        "boolean-again": ok(True, "on", "CACHED"),
        "string": ok("hi", "greeting", "STATIC"),
        "integer": ok(100, "hundred", "STATIC"),
        "integer-as-float": ok(7, "seven", "STATIC"),
        "float": ok(3.75, "big", "STATIC"),
        "object": ok(test_flags.OBJECT_VALUE, "red", "STATIC"),
        "targeting-match": ok("internal", "staff", "TARGETING_MATCH"),
        "default": ok("external", "public", "DEFAULT"),
        "split": _split_answer(),
        "targeting-key": ok(True, "on", "TARGETING_MATCH"),
        "other-targeting-key": ok(False, "off", "DEFAULT"),
        # injected=set comes from the server's --context-value.
        "static-context": ok("INTERNAL", "internal", "TARGETING_MATCH"),
        # flagd 0.16: DISABLED with no variant; the SDK hands back the caller's default.
        "disabled": {"value": True, "reason": "DISABLED", "variant": None, "errorCode": None},
        "not-found": error(True, "FLAG_NOT_FOUND"),
        "type-mismatch": error(True, "TYPE_MISMATCH"),
        # No default set: DEFAULT with no value or variant, so the SDK hands back the caller's default.
        "no-default": {"value": "fallback", "reason": "DEFAULT", "variant": None, "errorCode": None},
        "changing-before": ok("foo", "foo", "STATIC"),
    }


# The Java provider (flagd 0.11.15, the newest Maven Central serves here) reads an answer that
# carries no value (flagd's and ours for a disabled flag or no default variant) as the message's
# zero value with an empty variant, not as the caller's default; java-sdk-contrib changed that
# in d732c35 (flagd provider 0.14.0).
JAVA_PROVIDER_NO_VALUE: dict[str, dict[str, Any]] = {
    "disabled": {"value": False, "reason": "DISABLED", "variant": "", "errorCode": None},
    "no-default": {"value": "", "reason": "DEFAULT", "variant": "", "errorCode": None},
}


def after_change() -> dict[str, dict[str, Any]]:
    # Not CACHED: the configuration_change evicted the provider's cached "foo".
    return {"changing-after": ok("bar", "bar", "STATIC")}

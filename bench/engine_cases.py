"""Equivalent flags for our engine and for openfeature-flagd-core, case by case.

Both sides are timed from raw input (user id + attribute dict) to answer, so each includes building
its own evaluation context.
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sidecar.engine import build_context, compile_flag_set, evaluate

ATTRIBUTES: dict[str, str | int] = {"plan": "pro", "email": "ana@example.com", "age": 34, "country": "PT"}

OURS: dict[str, Any] = {
    "flags": [
        {
            "key": "static",
            "enabled": True,
            "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
            "defaultVariantWhenOn": "on",
        },
        {
            "key": "targeting",
            "enabled": True,
            "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
            "defaultVariantWhenOn": "off",
            "rules": [
                {
                    "constraints": [
                        {"property": "plan", "operation": "ONE_OF", "values": ["pro"]},
                        {"property": "email", "operation": "ENDS_WITH", "values": ["@example.com"]},
                        {"property": "age", "operation": "GREATER_OR_EQUAL", "values": [18]},
                    ],
                    "distributions": [{"variant": "on", "percentage": 100}],
                }
            ],
        },
        {
            "key": "split",
            "enabled": True,
            "variants": [{"key": k, "value": k} for k in ("red", "green", "blue")],
            "defaultVariantWhenOn": "blue",
            "rules": [
                {
                    "distributions": [
                        {"variant": "red", "percentage": 33.33},
                        {"variant": "green", "percentage": 33.33},
                        {"variant": "blue", "percentage": 33.34},
                    ]
                }
            ],
        },
    ]
}

FLAGD: dict[str, Any] = {
    "flags": {
        "static": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on",
        },
        "targeting": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {
                "if": [
                    {
                        "and": [
                            {"in": [{"var": "plan"}, ["pro"]]},
                            {"ends_with": [{"var": "email"}, "@example.com"]},
                            {">=": [{"var": "age"}, 18]},
                        ]
                    },
                    "on",
                    "off",
                ]
            },
        },
        "split": {
            "state": "ENABLED",
            "variants": {"red": "red", "green": "green", "blue": "blue"},
            "defaultVariant": "blue",
            "targeting": {"fractional": [["red", 3333], ["green", 3333], ["blue", 3334]]},
        },
    }
}

# (case, flag key, expected answer for user "user-42")
CASES = (
    ("static flag", "static", True),
    ("three-condition targeting", "targeting", True),
    ("three-way split", "split", None),
)


@dataclass
class EngineResult:
    """µs per evaluation; "prebuilt" gives each engine its own context object built beforehand,
    "end to end" builds it from the raw attributes on every call."""

    case: str
    ours_us: list[float]
    flagd_us: list[float]
    ours_prebuilt_us: list[float]
    flagd_prebuilt_us: list[float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.flagd_us) / statistics.median(self.ours_us)

    @property
    def prebuilt_ratio(self) -> float:
        return statistics.median(self.flagd_prebuilt_us) / statistics.median(self.ours_prebuilt_us)


def _per_call_us(func: Callable[[], object], repeats: int, number: int) -> list[float]:
    return [t / number * 1e6 for t in timeit.repeat(func, repeat=repeats, number=number)]


def run(repeats: int = 7, number: int = 20_000) -> list[EngineResult]:
    from openfeature.contrib.tools.flagd.core import FlagdCore
    from openfeature.evaluation_context import EvaluationContext

    flags = compile_flag_set(OURS, "bench").flags
    core = FlagdCore()
    core.set_flags(FLAGD)
    context = build_context("user-42", ATTRIBUTES)
    flagd_context = EvaluationContext("user-42", ATTRIBUTES)
    results = []
    for case, key, expected in CASES:
        flag = flags[key]

        def ours(flag: Any = flag) -> Any:
            return evaluate(flag, build_context("user-42", ATTRIBUTES)).value

        resolve = core.resolve_boolean_value if isinstance(expected, bool) else core.resolve_string_value
        default: Any = False if isinstance(expected, bool) else ""

        def flagd(key: str = key, resolve: Any = resolve, default: Any = default) -> Any:
            return resolve(key, default, EvaluationContext("user-42", ATTRIBUTES)).value

        def ours_prebuilt(flag: Any = flag) -> Any:
            return evaluate(flag, context).value

        def flagd_prebuilt(key: str = key, resolve: Any = resolve, default: Any = default) -> Any:
            return resolve(key, default, flagd_context).value

        if expected is not None:
            assert ours() == expected == flagd(), (case, ours(), flagd())
        results.append(
            EngineResult(
                case,
                _per_call_us(ours, repeats, number),
                _per_call_us(flagd, repeats, number // 4),
                _per_call_us(ours_prebuilt, repeats, number),
                _per_call_us(flagd_prebuilt, repeats, number // 4),
            )
        )
    return results


if __name__ == "__main__":
    for result in run():
        print(
            f"{result.case:28} prebuilt: ours {statistics.median(result.ours_prebuilt_us):5.2f} us "
            f"flagd-core {statistics.median(result.flagd_prebuilt_us):6.2f} us {result.prebuilt_ratio:5.1f}x"
            f" | end to end: ours {statistics.median(result.ours_us):5.2f} us "
            f"flagd-core {statistics.median(result.flagd_us):6.2f} us {result.ratio:5.1f}x"
        )

"""Percentage splits as flagd's `fractional`, for providers that hash as fractional v2.

flagd core 0.16 (Go; the Go provider in-process) buckets `{"fractional": [s, [variant, weight], ...]}`
as `(murmur3_x86_32(UTF-8 of s) * total weight) >> 32` over consecutive weight ranges: our
bucketing (sidecar/engine/bucketing.py) when s is "<flag key>:<bucket text>" and the weights are
the rules' bucket widths (percentage * 100, 10,000 in all). Only a provider that asked for it
(provider_id `fractional=v2`, flagd_service.py) gets these: the Python provider hashes as v3.

The bucket text is built in JsonLogic as diegoholiveira/jsonlogic 3.9 (flagd core's) evaluates it:
- `cat` of a boolean fails, so booleans are written "true"/"false" by `===` tests;
- `cat` trims the whitespace around its result, so a "|" closes the text and `substr` drops it;
- `cat` writes a number in Go's shortest fixed notation: ours for a whole number within 2^53
  except -0 (tested as `=== 0`, written "0") and for another number from 1e-4 up (1.5), not for
  a whole number beyond 2^53 (2^60, 1e20: Go writes its shortest digits padded with zeros, we its
  exact value) nor below 1e-4 (1e-05: Python's repr writes an exponent).
A value that can be bucketed on but whose text could differ answers a variant no flag has, which
flagd reports as an error (the caller's default), never another user's bucket. What cannot be
bucketed on (missing, null, a list, an object) makes the rule not match, as ours.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, Final

from sidecar.engine.bucketing import bucket, bucket_text
from sidecar.engine.definitions import FlagRuleDefinition
from sidecar.engine.model import BUCKET_COUNT

Json = Any

INEXACT_VARIANT: Final = "$inexact-bucket"  # answered for a value whose text may differ from ours
_EXACT_INTEGER: Final = 2**53
_MAX_DOUBLE: Final = sys.float_info.max
_FIXED_FROM: Final = 1e-4  # Python's repr writes smaller numbers with an exponent, Go's cat never


class NotSplittable(Exception):
    """This split cannot be written as fractional v2; str() says why."""


def widths(rule: FlagRuleDefinition) -> list[tuple[str, int]]:
    """Each distribution's variant and bucket width, as the compiler lays them out."""
    out = [(d.variant, round(d.percentage * 100)) for d in rule.distributions]
    if sum(width for _, width in out) != BUCKET_COUNT:
        raise NotSplittable(f"bucket widths that do not add up to {BUCKET_COUNT}")
    return out


def split(
    flag_key: str, variant_keys: Sequence[str], rule: FlagRuleDefinition, value: Json
) -> tuple[Json, Json]:
    """(when the rule applies besides its constraints, what it answers) for a split rule whose
    bucket value is the JsonLogic `value`, or a constant string (a --context-value property)."""
    if flag_key != flag_key.lstrip():
        raise NotSplittable("a flag key starting with whitespace, which flagd's cat trims")
    shares = widths(rule)
    if isinstance(value, str):  # a constant: the bucket is known now
        text = bucket_text(value)
        assert text is not None
        chosen = bucket(flag_key, text)
        end = 0
        for variant, width in shares:
            end += width
            if chosen < end:
                return True, variant
        raise NotSplittable("no distribution serves the bucket")  # widths() makes this unreachable
    prefix = f"{flag_key}:"
    is_true, is_false = {"===": [value, True]}, {"===": [value, False]}
    bucketable = {
        "and": [
            {"!==": [value, None]},
            {
                "or": [
                    is_true,
                    is_false,
                    {"<=": [-_MAX_DOUBLE, value, _MAX_DOUBLE]},  # a number (or a numeric string)
                    {"in": ["", value]},  # a string (or a list holding "": inexact below)
                ]
            },
        ]
    }
    exact = {
        "or": [
            is_true,
            is_false,
            {"===": [value, {"cat": [value]}]},  # a string (a list fails: an error, not a bucket)
            {  # a whole number within 2^53: its digits, as ours
                "and": [
                    {"===": [{"%": [value, 1]}, 0]},
                    {"<=": [-_EXACT_INTEGER, value, _EXACT_INTEGER]},
                ]
            },
            {  # another number from 1e-4 up: the shortest round-trip digits, as Python's repr
                "and": [
                    {"!==": [{"%": [value, 1]}, 0]},
                    {"or": [{">=": [value, _FIXED_FROM]}, {"<=": [value, -_FIXED_FROM]}]},
                ]
            },
        ]
    }
    bucket_by: Json = {
        "if": [
            is_true,
            f"{prefix}true",
            is_false,
            f"{prefix}false",
            {"===": [value, 0]},  # 0 and -0 (a number: the string "0" is another kind)
            f"{prefix}0",
            {"substr": [{"cat": [prefix, value, "|"]}, 0, -1]},
        ]
    }
    inexact = INEXACT_VARIANT
    while inexact in variant_keys:
        inexact += "_"
    fractional = {"fractional": [bucket_by, *([variant, width] for variant, width in shares)]}
    return bucketable, {"if": [exact, fractional, inexact]}


__all__ = ["INEXACT_VARIANT", "NotSplittable", "split", "widths"]

"""Deterministic percentage bucketing (DESIGN.md, "Evaluation semantics" 6).

bucket = (murmur3_x86_32("<flag key>:<bucket value>", seed 0, unsigned) * 10000) >> 32
The documented algorithm lets a client in any language reproduce a user's bucket bit for bit.
"""

from __future__ import annotations

from typing import Any

import mmh3

from .model import BUCKET_COUNT

# Integers beyond this are not exact as doubles; every wire format carries a number as a double.
_EXACT_INTEGER = 2**53


def bucket_text(value: Any) -> str | None:
    """The text a context value is hashed as, or None when it cannot be bucketed on."""
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        if -_EXACT_INTEGER <= value <= _EXACT_INTEGER:
            return str(value)
        # Only an in-process caller can hand over such an integer exactly; over the RPC (protobuf's
        # Value) it arrives as the nearest double. Bucket that double, so both land alike.
        try:
            return str(int(float(value)))
        except OverflowError:  # beyond any double: the RPC could not carry it either
            return None
    if kind is float:
        # Whole numbers read as integers (42.0 -> "42"): protobuf Structs carry every number as a double.
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def bucket(flag_key: str, text: str) -> int:
    """The bucket in [0, 10000) of a bucket value for a flag. fastpath.py writes this out inline
    for string values; tests/engine/test_fastpath.py keeps the two in step."""
    key = f"{flag_key}:{text}"
    try:
        data = key.encode()
    except UnicodeEncodeError:  # a lone surrogate (not valid text): hash it rather than fail
        data = key.encode("utf-8", "surrogatepass")
    digest = mmh3.hash(data, 0, signed=False)
    return (digest * BUCKET_COUNT) >> 32

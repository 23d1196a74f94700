"""Translate between protobuf messages and the engine's model, at the edge of the server.

The hot path is one request in, one answer out: `plain_context` reads a request's context in one
pass without json_format, and `EncodedEvaluations` hands out ready-serialized responses (and
metrics keys) for the engine's precomputed answers, so a steady-state call converts and
serializes nothing.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import struct_pb2

from flagsidecar.v1 import evaluation_pb2
from sidecar.engine import ErrorCode, Evaluation, TraceStep, build_context
from sidecar.engine.model import USER_ID_PROPERTY

from .metrics import EvalKey, evaluation_key

# ---------------------------------------------------------------- requests

_INF = math.inf


def plain_context(user: evaluation_pb2.User, max_keys: int) -> dict[str, Any] | None:
    """`user_context(user)` when the context is plain: at most `max_keys` keys, none empty or
    reserved, every value a string, finite number, boolean or null_value. Otherwise None, and the
    caller takes the general path (the context limits, then user_context).

    One pass over the Struct: reading it costs per key (BENCHMARKS.md). A Value with no kind set is
    not plain either (user_context reads it as null): it is the one value that grows when upb
    encodes the Struct again, by the `12 00` of a map entry's missing value, so only a plain
    context is certain to be no larger than the request that carried it (EvaluationService's
    fast path relies on that instead of paying for ByteSize).
    """
    fields = user.context.fields
    if len(fields) > max_keys:
        return None
    context: dict[str, Any] = {}
    for key in fields:  # not .items(): upb's map has no C items(), and the abc one is a generator
        if key[:1] in ("$", ""):
            return None
        value = fields[key]
        text = value.string_value
        if text:  # set, so the oneof holds nothing else: one C call fewer for the usual value
            context[key] = text
            continue
        kind = value.WhichOneof("kind")
        if kind == "string_value":
            context[key] = text
        elif kind == "number_value":
            number = value.number_value
            if not -_INF < number < _INF:  # NaN or infinite
                return None
            context[key] = number
        elif kind == "bool_value":
            context[key] = value.bool_value
        elif kind == "null_value":
            context[key] = None
        else:  # struct_value, list_value, or nothing set
            return None
    user_id = user.id
    if user_id:
        context[USER_ID_PROPERTY] = user_id
    return context


def user_context(user: evaluation_pb2.User) -> dict[str, Any]:
    """The engine's context for a request's user: `build_context(user.id,
    struct_to_attributes(user.context))`, in one pass over the Struct when it is plain.

    Anything else (a list or object value, a reserved or empty key, NaN or infinity, a Value with
    nothing set) goes down that two-step path, which raises InvalidContextError with its usual
    message, or reads an unset Value as null.
    """
    context = plain_context(user, sys.maxsize)
    if context is None:
        return build_context(user.id, struct_to_attributes(user.context))
    return context


def struct_to_attributes(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain Python values.

    Lists and nested structs come out as lists and dicts, not flattened or rejected here: the
    engine's build_context refuses them with a message naming the key.
    """
    attributes: dict[str, Any] = {}
    for key, value in struct.fields.items():
        kind = value.WhichOneof("kind")
        if kind == "string_value":
            attributes[key] = value.string_value
        elif kind == "number_value":
            attributes[key] = value.number_value
        elif kind == "bool_value":
            attributes[key] = value.bool_value
        elif kind == "struct_value":
            attributes[key] = struct_to_attributes(value.struct_value)
        elif kind == "list_value":
            attributes[key] = [_value_to_python(item) for item in value.list_value.values]
        else:  # null_value, or a Value with nothing set
            attributes[key] = None
    return attributes


def _value_to_python(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return struct_to_attributes(value.struct_value)
    if kind == "list_value":
        return [_value_to_python(item) for item in value.list_value.values]
    if kind is None or kind == "null_value":
        return None
    return getattr(value, kind)


# ---------------------------------------------------------------- answers


def python_to_value(data: Any) -> struct_pb2.Value:
    """Any JSON value (as the engine holds variant values) as a google.protobuf.Value."""
    value = struct_pb2.Value()
    _fill_value(value, data)
    return value


def _fill_value(value: struct_pb2.Value, data: Any) -> None:
    # bool before int/float: bool is an int subclass in Python.
    if data is None:
        value.null_value = struct_pb2.NULL_VALUE
    elif isinstance(data, bool):
        value.bool_value = data
    elif isinstance(data, int | float):
        value.number_value = data
    elif isinstance(data, str):
        value.string_value = data
    elif isinstance(data, Mapping):
        fields = value.struct_value.fields
        value.struct_value.SetInParent()  # an empty object is still an object, not unset
        for key, item in data.items():
            _fill_value(fields[str(key)], item)
    elif isinstance(data, Sequence):
        items = value.list_value
        items.SetInParent()
        for item in data:
            _fill_value(items.values.add(), item)
    else:
        raise TypeError(f"cannot express a {type(data).__name__} as a protobuf Value")


def evaluation_to_message(evaluation: Evaluation) -> evaluation_pb2.Evaluation:
    """A new flagsidecar.v1.Evaluation for an engine Evaluation (Reason/ErrorCode numbers match)."""
    message = evaluation_pb2.Evaluation(
        flag_key=evaluation.flag_key,
        variant=evaluation.variant,
        reason=int(evaluation.reason),  # type: ignore[arg-type]
        flag_version=evaluation.flag_version,
    )
    if evaluation.error_code is None:
        # Only a served variant has a value; on error, or when the default needed is not set,
        # `value` stays unset (not null).
        if evaluation.has_value:
            _fill_value(message.value, evaluation.value)
    else:
        message.error_code = int(evaluation.error_code)  # type: ignore[assignment]
        message.error_message = evaluation.error_message
    if evaluation.stack_trace:
        message.stack_trace.extend(trace_step_to_message(step) for step in evaluation.stack_trace)
    return message


def trace_step_to_message(step: TraceStep) -> evaluation_pb2.StackTrace:
    message = evaluation_pb2.StackTrace(
        type=step.type, id=step.id, matched=step.matched, detail=step.detail, depth=step.depth
    )
    if step.answer is not None:
        _fill_value(message.answer, step.answer)
    if step.bucket is not None:
        message.bucket = step.bucket
    return message


# Both EvaluateResponse.evaluation and EvaluateAllResponse.evaluations are field 1 of type
# Evaluation, so one encoded field entry (tag, length, message) is a complete EvaluateResponse and
# also one element of an EvaluateAllResponse: responses are assembled by joining bytes.
_EVALUATION_FIELD_TAG = b"\x0a"  # field 1, wire type 2 (length-delimited)
_TOTAL_FIELD_TAG = b"\x10"  # EvaluateAllResponse.total: field 2, wire type 0 (varint)


def _varint(number: int) -> bytes:
    encoded = bytearray()
    while number > 0x7F:
        encoded.append((number & 0x7F) | 0x80)
        number >>= 7
    encoded.append(number)
    return bytes(encoded)


def encode_evaluation_field(evaluation: Evaluation) -> bytes:
    """`evaluation` as an encoded field-1 entry: a serialized EvaluateResponse as it stands."""
    body = evaluation_to_message(evaluation).SerializeToString()
    return _EVALUATION_FIELD_TAG + _varint(len(body)) + body


# An answer, its serialized EvaluateResponse and its metrics key (metrics.evaluation_key).
Entry = tuple[Evaluation, bytes, EvalKey]


class EncodedEvaluations:
    """Serialized responses and metrics keys for the engine's answers, built once per precomputed
    answer.

    Without a debug trace the engine returns the same immutable Evaluation object for the same
    (flag version, variant, reason), so its encoding is computed once and reused: a steady-state
    call converts and serializes nothing. `entries` is keyed by id() and each entry keeps its
    Evaluation alive, so an id cannot be recycled for another object while its entry exists; the
    identity check on lookup (`entry[0] is evaluation`) makes that explicit. The cache is emptied
    when the flag set changes (old answers are dead) and when it is full (a crude bound, but
    lookups stay a lock-free dict read: the servicers' fast paths read `entries` directly).
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max_entries = max_entries
        self.entries: dict[int, Entry] = {}  # emptied in place, never replaced
        # Writers only: readers rely on dict operations being atomic.
        self._write_lock = threading.Lock()

    def entry(self, evaluation: Evaluation) -> Entry:
        """`evaluation` with its serialized EvaluateResponse and its metrics key."""
        entry = self.entries.get(id(evaluation))
        if entry is not None and entry[0] is evaluation:
            return entry
        entry = (evaluation, encode_evaluation_field(evaluation), evaluation_key(evaluation))
        if self._is_reusable(evaluation):
            with self._write_lock:
                if len(self.entries) >= self._max_entries:
                    self.entries.clear()
                self.entries[id(evaluation)] = entry
        return entry

    def evaluate_response(self, evaluation: Evaluation) -> bytes:
        """A serialized flagsidecar.v1.EvaluateResponse."""
        return self.entry(evaluation)[1]

    def evaluate_all_entries(self, evaluations: Sequence[Evaluation]) -> tuple[bytes, list[EvalKey]]:
        """A serialized flagsidecar.v1.EvaluateAllResponse listing `evaluations` in order, and the
        evaluations' metrics keys (in one pass over them)."""
        get, entry_of = self.entries.get, self.entry  # entry()'s lookup, inlined
        entries = [
            entry if (entry := get(id(answer))) is not None and entry[0] is answer else entry_of(answer)
            for answer in evaluations
        ]
        parts = [entry[1] for entry in entries]
        if evaluations:  # proto3 leaves a zero total out
            parts.append(_TOTAL_FIELD_TAG + _varint(len(evaluations)))
        return b"".join(parts), [entry[2] for entry in entries]

    def clear(self) -> None:
        with self._write_lock:
            self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)

    @staticmethod
    def _is_reusable(evaluation: Evaluation) -> bool:
        # Traced answers and "flag not found" are built per request: caching them would only
        # fill the cache with objects nobody asks for again.
        return not evaluation.stack_trace and evaluation.error_code is not ErrorCode.FLAG_NOT_FOUND

"""Struct <-> Python, and context admission: the one way every service reads a request's context.

Reading (README, "Request contexts"): a Struct's scalars as they are, a null or a Value with nothing
set as None (as protobuf's json_format and Go's structpb read it), a NaN or infinite number refused
(JSON, events and every exporter have none). The protocols differ in one place, and on purpose:

- the native API's `User.context` is declared string -> JSON scalar, so an object, a list or a
  reserved key ("$...") is the client's error, INVALID_ARGUMENT naming the key;
- flagd's `context` is an OpenFeature EvaluationContext, where structures are legal and which the
  providers fill freely: objects, lists and "$" keys are left out (flagd itself reserves `$flagd`),
  since no constraint of ours could target them.

Writing: any JSON value (variant values, flag metadata, stream data) as a Value; integers become
doubles, as the Value type requires, and anything that is not JSON is a TypeError (a fault of ours:
every such value was checked when its flag set loaded).

Admission (`admit_user`, `admit_attributes`): the limits first (ContextLimits.context_violation),
then the conversion, then the engine's build_context; every refusal is InvalidArgument, a limit's
with its label.

The hot path is one request in, one answer out: `plain_context` reads a native request's context in
one pass without json_format.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import struct_pb2

from flagsidecar.v1 import evaluation_pb2

from ...engine import InvalidContextError, build_context
from ...engine.model import RESERVED_PREFIX, USER_ID_PROPERTY
from ..limits import ContextLimits
from .errors import InvalidArgument

_INF = math.inf
NATIVE = "user context"  # what the refusal calls the context, in each protocol's words
FLAGD = "evaluation context"

# ---------------------------------------------------------------- Struct -> Python


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
    """The engine's context for a native request's user: `build_context(user.id,
    struct_to_attributes(user.context))`, in one pass over the Struct when it is plain.

    Anything else (a list or object value, a reserved or empty key, NaN or infinity, a Value with
    nothing set) goes down that two-step path, which raises InvalidContextError with its usual
    message, or reads an unset Value as null.
    """
    context = plain_context(user, sys.maxsize)
    if context is None:
        return build_context(user.id, struct_to_attributes(user.context))
    return context


def struct_to_attributes(struct: struct_pb2.Struct, structures: bool = True) -> dict[str, Any]:
    """A Struct as plain Python values.

    With `structures`, lists and nested structs come out as lists and dicts, not flattened or
    rejected here (build_context refuses them in a context, with a message naming the key);
    without, they and the reserved "$" keys are left out (flagd's contexts, the module docstring).
    """
    attributes: dict[str, Any] = {}
    for key, value in struct.fields.items():
        if not structures and key.startswith(RESERVED_PREFIX):
            continue
        kind = value.WhichOneof("kind")
        if kind == "string_value":
            attributes[key] = value.string_value
        elif kind == "number_value":
            attributes[key] = value.number_value
        elif kind == "bool_value":
            attributes[key] = value.bool_value
        elif not structures and kind in ("struct_value", "list_value"):
            continue
        elif kind == "struct_value":
            attributes[key] = struct_to_attributes(value.struct_value)
        elif kind == "list_value":
            attributes[key] = [value_to_python(item) for item in value.list_value.values]
        else:  # null_value, or a Value with nothing set
            attributes[key] = None
    return attributes


def value_to_python(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return struct_to_attributes(value.struct_value)
    if kind == "list_value":
        return [value_to_python(item) for item in value.list_value.values]
    if kind is None or kind == "null_value":
        return None
    return getattr(value, kind)


# ---------------------------------------------------------------- admission


def admit_user(limits: ContextLimits, user: evaluation_pb2.User) -> dict[str, Any]:
    """The engine's context for a native request's user (with "$userId"), admitted as every
    native service admits one (Evaluate, EvaluateAll, Track). Raises InvalidArgument."""
    violated = limits.context_violation(user.context)
    if violated is not None:
        raise InvalidArgument.over(violated)
    try:
        return user_context(user)
    except InvalidContextError as error:
        raise InvalidArgument(f"invalid {NATIVE}: {error}") from None


def check_limits(limits: ContextLimits, context: struct_pb2.Struct) -> None:
    """InvalidArgument (counted under its limit) for a context over --max-context-keys/-bytes."""
    violated = limits.context_violation(context)
    if violated is not None:
        raise InvalidArgument.over(violated)


def admit_attributes(user_id: str, attributes: Mapping[str, Any], what: str = FLAGD) -> dict[str, Any]:
    """build_context(user_id, attributes), its refusal InvalidArgument ("invalid <what>: ...")."""
    try:
        return build_context(user_id, attributes)
    except InvalidContextError as error:
        raise InvalidArgument(f"invalid {what}: {error}") from None


# ---------------------------------------------------------------- Python -> Struct


def python_to_value(data: Any) -> struct_pb2.Value:
    """Any JSON value (as the engine holds variant values) as a google.protobuf.Value."""
    value = struct_pb2.Value()
    fill_value(value, data)
    return value


def fill_struct(struct: struct_pb2.Struct, data: Mapping[str, Any]) -> struct_pb2.Struct:
    """Write `data` (a JSON object) into `struct`, which is returned."""
    fields = struct.fields
    for key, item in data.items():
        fill_value(fields[str(key)], item)
    return struct


def fill_value(value: struct_pb2.Value, data: Any) -> None:
    """Write one JSON value into `value`; anything else is a TypeError."""
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
        value.struct_value.SetInParent()  # an empty object is still an object, not unset
        fill_struct(value.struct_value, data)
    elif isinstance(data, Sequence) and not isinstance(data, bytes | bytearray):  # no JSON bytes
        items = value.list_value
        items.SetInParent()
        for item in data:
            fill_value(items.values.add(), item)
    else:
        raise TypeError(f"cannot express a {type(data).__name__} as a protobuf Value")

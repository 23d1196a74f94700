"""How our model maps onto flagd's evaluation protocol (README: "Using OpenFeature flagd providers").

- Reasons: our `Reason` names are OpenFeature reason strings already, so they go out as they are:
  STATIC, DEFAULT, TARGETING_MATCH, SPLIT, DISABLED, ERROR. flagd itself never emits SPLIT (its
  fractional splits report TARGETING_MATCH), but SPLIT is a standard OpenFeature reason that
  flagd's model defines and the providers pass through untouched; only STATIC is special to them
  (it is the only reason they cache), and our STATIC, like flagd's, means "no rules at all".
- Errors become gRPC status codes, as flagd's `errFormat` does: FLAG_NOT_FOUND -> NOT_FOUND,
  TYPE_MISMATCH -> INVALID_ARGUMENT, PARSE_ERROR -> DATA_LOSS, GENERAL -> UNKNOWN; our
  INVALID_CONTEXT and TARGETING_KEY_MISSING (no flagd equivalent) -> INVALID_ARGUMENT
  (sidecar.server.edge.errors.EVALUATION_ERRORS).
- Types: a flag's type is the JSON type of its variants. Booleans only through ResolveBoolean,
  strings only through ResolveString, numbers through ResolveFloat or ResolveInt, objects through
  ResolveObject; anything else is TYPE_MISMATCH, checked before the disabled state so that a wrong
  call fails the same way whatever the flag's state. ResolveInt truncates a fractional number
  toward zero, as flagd does (`int64(float)`): 3.9 -> 3, -3.9 -> -3; a number outside int64 is
  TYPE_MISMATCH. List- or null-valued flags cannot be expressed by the protocol (its object value
  is a Struct): every Resolve call reports TYPE_MISMATCH and ResolveAll leaves them out.
- No default set (the engine answers no value and no variant): reason DEFAULT (DISABLED for a
  disabled flag) with no value and no variant, as flagd 0.16 answers a null defaultVariant, so the
  provider returns the caller's code default; ResolveAll leaves such flags out.
- Context: the request's Struct, then the static `--context-value` pairs, then the
  `--context-from-header` mappings (later wins; header names match case-insensitively; an empty
  header is ignored), exactly flagd's order. `targetingKey` becomes the user id and leaves the
  attributes. Keys starting with "$" are reserved for the server in both flagd (which overwrites
  `$flagd` and warns) and here, so they are dropped from the request; flagd's `$flagd.flagKey` and
  `$flagd.timestamp` are not provided (our rules read the flag key from the flag, and a timestamp
  would make every answer uncacheable). Objects and lists in the context are dropped as well: the
  OpenFeature SDKs send them freely and flagd accepts them, but our constraints only ever target
  scalars, so they could not match anything anyway (the native API rejects them instead). The
  rest is read as every service reads a context (sidecar.server.edge.context): an unset Value is
  null, and a NaN or infinite number is INVALID_ARGUMENT.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from google.protobuf.struct_pb2 import Struct

from ...engine import Flag, Reason
from ..edge import struct_to_attributes

REASONS: Final[Mapping[Reason, str]] = {reason: reason.name for reason in Reason}

TARGETING_KEY: Final = "targetingKey"
RESERVED_PREFIX: Final = "$"

# The JSON types a flag can have, as far as the protocol is concerned.
BOOLEAN: Final = "boolean"
STRING: Final = "string"
NUMBER: Final = "number"
OBJECT: Final = "object"
UNSUPPORTED: Final = "unsupported"  # lists and nulls

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


def value_type(value: Any) -> str:
    """The protocol type of one variant value."""
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, str):
        return STRING
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, Mapping):
        return OBJECT
    return UNSUPPORTED


def flag_type(flag: Flag) -> str:
    """A flag's type: all its variants share one, so the first one tells."""
    for variant in flag.variants.values():
        return value_type(variant.value)
    return UNSUPPORTED


def to_int64(value: Any) -> int | None:
    """A number as ResolveInt sends it (truncated toward zero), or None when it cannot be one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else None
    if isinstance(value, float) and math.isfinite(value):
        truncated = int(value)
        return truncated if INT64_MIN <= truncated <= INT64_MAX else None
    return None


# ---------------------------------------------------------------- context


@dataclass(frozen=True, slots=True)
class ContextRules:
    """flagd's context enrichment: static values (-X) and header mappings (-H)."""

    static_values: Mapping[str, str] = field(default_factory=dict)
    # lower-case gRPC metadata key -> context key
    header_keys: Mapping[str, str] = field(default_factory=dict)

    def merge(
        self, request_context: Struct, metadata: Iterable[tuple[str, str | bytes]] | None
    ) -> tuple[str, dict[str, Any]]:
        """(user id, attributes) for one request, flagd's layers applied in order (later wins)."""
        attributes = struct_to_attributes(request_context, structures=False)  # see the docstring
        if self.static_values:
            attributes.update(self.static_values)
        if self.header_keys and metadata:
            for name, header_value in metadata:
                attribute = self.header_keys.get(name.lower())
                if attribute is not None and isinstance(header_value, str) and header_value:
                    attributes[attribute] = header_value
        return _user_id(attributes.pop(TARGETING_KEY, None)), attributes


def _user_id(raw: Any) -> str:
    if raw is None or isinstance(raw, str):
        return raw or ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        return str(int(raw)) if raw.is_integer() else repr(raw)
    return str(raw)


def parse_context_value(text: str) -> tuple[str, str]:
    """One --context-value KEY=VALUE (flagd's -X). Raises ValueError."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError("expected KEY=VALUE, for example region=eu")
    if key.startswith(RESERVED_PREFIX):
        raise ValueError(f"context keys starting with '$' are reserved, so {key!r} cannot be set")
    return key, value


def parse_header_mapping(text: str) -> tuple[str, str]:
    """One --context-from-header HEADER=KEY (flagd's -H): (lower-case header, key). Raises ValueError."""
    header, sep, key = text.partition("=")
    header, key = header.strip().lower(), key.strip()
    if not sep or not header or not key:
        raise ValueError("expected HEADER=KEY, for example x-tenant=tenant")
    if any(c.isspace() or c == ":" for c in header):
        raise ValueError(f"{header!r} is not a header name")
    if header.endswith("-bin"):
        raise ValueError(f"{header!r} is a binary header; only text headers can be mapped")
    if key.startswith(RESERVED_PREFIX):
        raise ValueError(f"context keys starting with '$' are reserved, so {key!r} cannot be set")
    return header, key

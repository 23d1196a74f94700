"""OTLP log records written straight as protobuf wire bytes, for the otlp exporter's batches.

Filling opentelemetry-proto's message classes took a dozen C calls per attribute and then
SerializeToString, on the exporter's thread: CPU that competes with the server on a small machine
(bench/notes.md). Here a record is a join of byte strings: the attributes that are the same for every
event of an exporter (provider, set) are encoded once, those of one flag's answer (key, variant,
value, reason, version) once per distinct answer (`RecordEncoder`'s cache), and only the time,
context id and event id per event. Complex values (objects, arrays) and Track bodies still go
through the message classes (`any_value`), whose depth limit applies as before.

Field numbers are opentelemetry-proto's (logs/v1, common/v1); a test decodes what this writes
with those classes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

# Tags: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited).
_TIME = b"\x09"  # LogRecord.time_unix_nano, fixed64
_OBSERVED = b"\x59"  # LogRecord.observed_time_unix_nano (11), fixed64
_BODY = b"\x2a"  # LogRecord.body (5)
_ATTRIBUTE = b"\x32"  # LogRecord.attributes (6)
_EVENT_NAME = b"\x62"  # LogRecord.event_name (12)
_FIRST = b"\x0a"  # field 1, length-delimited: KeyValue.key, AnyValue.string_value, the containers'
_SECOND = b"\x12"  # field 2, length-delimited: KeyValue.value, ScopeLogs.log_records, ResourceLogs.scope_logs
_BOOL = (b"\x10\x00", b"\x10\x01")  # AnyValue.bool_value (2): a oneof member is written even when false
_INT = b"\x18"  # AnyValue.int_value (3), varint (two's complement for a negative)
_DOUBLE = b"\x21"  # AnyValue.double_value (4), fixed64
_INT64 = (-(2**63), 2**63 - 1)
_EXACT = (str, int, bool)
_fixed64 = struct.Struct("<Q").pack
_double = struct.Struct("<d").pack
_BYTES = tuple(bytes((n,)) for n in range(0x80))
CACHE_LIMIT = 4096  # distinct answers kept encoded; past it the cache starts again


def varint(n: int) -> bytes:
    if n < 0x80:
        return _BYTES[n]
    if n < 0x4000:
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return tag + varint(len(payload)) + payload


def string_value(text: str) -> bytes:
    """An AnyValue holding a string."""
    return field(_FIRST, text.encode())


def attribute(name: str, value: bytes) -> bytes:
    """One LogRecord.attributes entry (the KeyValue framed with its tag): `value` an AnyValue's bytes."""
    return field(_ATTRIBUTE, field(_FIRST, name.encode()) + field(_SECOND, value))


def string_attribute(name: str) -> Callable[[str], bytes]:
    """A writer of one named string attribute (as `attribute`), for the attributes of every event:
    the common case (everything shorter than 128 bytes, single-byte lengths) in one formatting."""
    key = field(_FIRST, name.encode())
    room = 0x80 - len(key) - 4

    def write(text: str) -> bytes:
        value = text.encode()
        n = len(value)
        if n < room:
            return b"\x32%c%s\x12%c\x0a%c%s" % (n + len(key) + 4, key, n + 2, n, value)
        return field(_ATTRIBUTE, key + field(_SECOND, field(_FIRST, value)))

    return write


def scalar_value(value: Any) -> bytes | None:
    """A JSON scalar as AnyValue bytes as the message classes write it; None for anything else."""
    if value is None:
        return b""  # the empty AnyValue: null
    kind = type(value)
    if kind is str:
        return string_value(value)
    if kind is bool:
        return _BOOL[value]
    if kind is int:
        if _INT64[0] <= value <= _INT64[1]:
            return _INT + varint(value & 0xFFFFFFFFFFFFFFFF)
        return _DOUBLE + _double(float(value))
    if kind is float:
        return _DOUBLE + _double(value)
    return None


class RecordEncoder:
    """Feature-flag evaluation records as framed ScopeLogs.log_records entries.

    `answer(event)` is the encoded attributes of one answer; identical answers (same flag, variant,
    reason, version and the same value object, or an equal scalar) share one encoding. Used by one
    exporter's export thread only: the cache has no lock."""

    def __init__(self, event_name: str, per_exporter: bytes, value_bytes: Callable[[Any], bytes]) -> None:
        self._event_name = field(_EVENT_NAME, event_name.encode())
        self._per_exporter = per_exporter
        self._value_bytes = value_bytes  # a complex value's AnyValue bytes
        self._answers: dict[tuple[Any, ...], tuple[Any, bytes]] = {}

    def answer(self, key: tuple[Any, ...], value: Any, build: Callable[[], bytes]) -> bytes:
        """The cached bytes for `key` if they were built for this value, else `build()`'s."""
        cached = self._answers.get(key)
        if cached is not None:
            held = cached[0]
            # Equal strings, integers and booleans encode alike; a float only by identity (-0.0 == 0.0).
            if held is value or (type(held) is type(value) and type(value) in _EXACT and held == value):
                return cached[1]
        encoded = build()
        if len(self._answers) >= CACHE_LIMIT:
            self._answers.clear()
        # The value object is held, so an identical object is never a reused id.
        self._answers[key] = (value, encoded)
        return encoded

    def record(self, nanos: int, answer: bytes, per_event: bytes, body: bytes = b"") -> bytes:
        """A framed LogRecord: times, attributes (answer, per-event, per-exporter), body, event name."""
        stamp = _fixed64(nanos)
        payload = b"".join(
            (_TIME, stamp, body, answer, per_event, self._per_exporter, _OBSERVED, stamp, self._event_name)
        )
        return _SECOND + varint(len(payload)) + payload

    def value(self, value: Any) -> bytes:
        scalar = scalar_value(value)
        return scalar if scalar is not None else self._value_bytes(value)


def body_field(value: bytes) -> bytes:
    return field(_BODY, value)


def request(head: bytes, scope: bytes, records: list[bytes]) -> bytes:
    """An ExportLogsServiceRequest: one ResourceLogs (`head`: its encoded Resource) with one ScopeLogs
    (`scope`: its encoded InstrumentationScope) holding the framed records."""
    scope_logs = field(_FIRST, scope) + b"".join(records)
    resource_logs = field(_FIRST, head) + field(_SECOND, scope_logs)
    return field(_FIRST, resource_logs)

"""Seeded fuzz cases for every gRPC method a running server lists by reflection, and their runner.

The methods, and their request messages, come from the server itself (grpc.reflection), so a service
added to the sidecar is fuzzed without a change here. Requests are built on the wire by hand (the
`_Wire` helpers) from the method's input descriptor, because the interesting inputs are the ones a
protobuf library refuses to build: invalid UTF-8 in a string field, nesting past the parser's
recursion limit, a length prefix pointing past the end, the wrong wire type for a field. Every call
sends raw bytes (identity serializers), so the client never judges or rejects a request itself.

Case `i` of a test is generated from `random.Random(f"{seed}:{test}:{i}")` alone: a failing case can
be reproduced by its label, whatever the cases before it did.
"""

from __future__ import annotations

import math
import random
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

CALL_TIMEOUT = 10.0  # seconds: an answer later than this is a hang (a case's own short deadline aside)
MAX_DEPTH = 6  # nesting of generated messages, deliberately deep ones aside
_LENGTH_DELIMITED, _VARINT, _FIXED64, _FIXED32 = 2, 0, 1, 5
_F = FieldDescriptor
_PACKABLE = {
    _F.TYPE_DOUBLE, _F.TYPE_FLOAT, _F.TYPE_INT64, _F.TYPE_UINT64, _F.TYPE_INT32, _F.TYPE_FIXED64,
    _F.TYPE_FIXED32, _F.TYPE_BOOL, _F.TYPE_UINT32, _F.TYPE_ENUM, _F.TYPE_SFIXED32, _F.TYPE_SFIXED64,
    _F.TYPE_SINT32, _F.TYPE_SINT64,
}  # fmt: skip
_STRUCT_TYPES = {"google.protobuf.Value", "google.protobuf.Struct", "google.protobuf.ListValue"}


# ---------------------------------------------------------------- the methods, from the server


@dataclass(frozen=True)
class Method:
    service: str  # "grpc.health.v1.Health"
    name: str  # "Check"
    input: Descriptor
    client_streaming: bool
    server_streaming: bool

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"

    @property
    def streaming(self) -> bool:
        return self.client_streaming or self.server_streaming


def reflected_methods(channel: grpc.Channel) -> list[Method]:
    """Every method of every service the server lists through reflection, in a descriptor pool of its
    own (so the server's messages never meet the generated classes imported by other tests)."""
    database = ProtoReflectionDescriptorDatabase(channel)
    pool = DescriptorPool(database)
    methods = []
    for service_name in sorted(database.get_services()):
        service = pool.FindServiceByName(service_name)
        methods.extend(
            Method(service_name, m.name, m.input_type, m.client_streaming, m.server_streaming)
            for m in service.methods
        )
    return methods


def vocabulary(methods: Sequence[Method], words: Sequence[str]) -> list[str]:
    """Strings the server knows (names it serves, plus `words`: flag keys, context attributes), so
    that generated requests also reach past "not found" into real evaluations and lookups."""
    names = {*words, "", "targetingKey", "$userId", "$flagd", "liveness"}
    for method in methods:
        names.update((method.service, method.path[1:], method.input.full_name, method.input.file.name))
        names.add(method.service.rsplit(".", 1)[0])
    return sorted(names)


# ---------------------------------------------------------------- the wire


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # a negative int32/int64 goes out as ten bytes, as protobuf sends it
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _delimited(number: int, payload: bytes) -> bytes:
    return _tag(number, _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


# ---------------------------------------------------------------- values

_INTS = (0, 1, -1, 2**31 - 1, -(2**31), 2**32 - 1, 2**63 - 1, -(2**63), 2**64 - 1, 10**15)
_DOUBLES = (
    math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308, -1e308, 1e-300, 0.1,
    2.0**53 + 1, 9.223372036854776e18, -9.223372036854776e18, 1e19, 3.9, -3.9,
)  # fmt: skip
_NAN_PAYLOADS = (0x7FF0000000000001, 0xFFF8000000000000, 0x7FF8DEADBEEF0000)  # signalling, -NaN, payload
_ODD_TEXT = (
    "\x00", "a\x00b", "é", "😀" * 3, "\u202eevil", "\ufeffbom", "A\u0301", "\U0010ffff", "%s%n%x",
    "{0}{1}", "'; DROP TABLE flags; --", "../../etc/passwd", "\r\n\r\n", "${jndi:ldap://x/a}",
    "1e309", "NaN", "-0", "true", "null", "{\"a\": 1}", "[1,2]", " ", "\t", "$", "$userId",
)  # fmt: skip
_INVALID_UTF8 = (
    b"\xff", b"\xfe\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"abc\x80", b"\xe2\x82",
    b"\xf8\x88\x80\x80\x80",
)  # fmt: skip


class Generator:
    """Messages for one case, driven by one seeded `random.Random`."""

    def __init__(self, rng: random.Random, words: Sequence[str]) -> None:
        self.rng = rng
        self.words = words

    # ------------------------------------------------------------ well-formed messages

    def message(self, descriptor: Descriptor, *, hostile: bool, utf8: bool = True, depth: int = 0) -> bytes:
        """A message of `descriptor`'s type: every field present or not, one member of each oneof.
        `hostile`: extreme values, huge strings and repeated fields, deep Structs, unknown fields;
        `utf8=False`: string fields may hold invalid UTF-8 (the wire allows it; parsers must refuse)."""
        rng = self.rng
        if hostile and descriptor.full_name in _STRUCT_TYPES and rng.random() < 0.1:
            return self._deep(descriptor.full_name, rng.choice((20, 64, 98, 99, 100, 101, 150, 1000, 5000)))
        chosen: list[FieldDescriptor] = []
        for oneof in descriptor.oneofs:
            if rng.random() < 0.8:
                chosen.append(rng.choice(oneof.fields))
        chosen += [f for f in descriptor.fields if f.containing_oneof is None and rng.random() < 0.75]
        if hostile and rng.random() < 0.1:
            chosen += [rng.choice(descriptor.fields)] if descriptor.fields else []  # a field sent twice
        rng.shuffle(chosen)  # fields in any order, as the wire allows
        out = b"".join(self._field(f, hostile=hostile, utf8=utf8, depth=depth) for f in chosen)
        if hostile and rng.random() < 0.15:
            out += self._unknown_field()
        return out

    def _field(self, f: FieldDescriptor, *, hostile: bool, utf8: bool, depth: int) -> bytes:
        rng = self.rng
        if not f.is_repeated:
            return self._one(f, hostile=hostile, utf8=utf8, depth=depth)
        if hostile and depth <= 1 and rng.random() < 0.03:
            count = rng.choice((1_000, 10_000, 60_000))  # many elements, within the request limit mostly
            pool = [self._one(f, hostile=False, utf8=utf8, depth=MAX_DEPTH - 1) for _ in range(8)]
            return b"".join(pool[i % len(pool)] for i in range(count))
        count = rng.choice((0, 1, 1, 2, 3, 5)) if depth < MAX_DEPTH else 0
        if f.type in _PACKABLE and count and rng.random() < 0.5:
            payload = b"".join(self._scalar(f, hostile=hostile, utf8=utf8)[1] for _ in range(count))
            return _delimited(f.number, payload)
        return b"".join(self._one(f, hostile=hostile, utf8=utf8, depth=depth) for _ in range(count))

    def _one(self, f: FieldDescriptor, *, hostile: bool, utf8: bool, depth: int) -> bytes:
        if f.type == _F.TYPE_MESSAGE:
            if depth >= MAX_DEPTH:
                return _delimited(f.number, b"")
            return _delimited(
                f.number, self.message(f.message_type, hostile=hostile, utf8=utf8, depth=depth + 1)
            )
        if f.type == _F.TYPE_GROUP:  # proto2 only; none of ours, but a new service might have one
            return _tag(f.number, 3) + _tag(f.number, 4)
        wire_type, payload = self._scalar(f, hostile=hostile, utf8=utf8)
        if wire_type == _LENGTH_DELIMITED:
            return _delimited(f.number, payload)
        return _tag(f.number, wire_type) + payload

    def _scalar(self, f: FieldDescriptor, *, hostile: bool, utf8: bool) -> tuple[int, bytes]:
        rng, t = self.rng, f.type
        if t == _F.TYPE_STRING:
            return _LENGTH_DELIMITED, self.text(hostile=hostile, utf8=utf8)
        if t == _F.TYPE_BYTES:
            return _LENGTH_DELIMITED, rng.randbytes(rng.choice((0, 1, 16, 300)))
        if t in (_F.TYPE_DOUBLE, _F.TYPE_FLOAT):
            if hostile and rng.random() < 0.2:
                bits = rng.choice(_NAN_PAYLOADS)
                return (
                    (_FIXED64, struct.pack("<Q", bits))
                    if t == _F.TYPE_DOUBLE
                    else (_FIXED32, b"\x01\x00\x80\x7f")
                )
            value = rng.choice(_DOUBLES) if hostile else rng.uniform(-100, 100)
            if t == _F.TYPE_DOUBLE:
                return _FIXED64, struct.pack("<d", value)
            return _FIXED32, struct.pack(
                "<f", value if abs(value) < 3e38 or not math.isfinite(value) else math.inf
            )
        if t == _F.TYPE_BOOL:
            return _VARINT, _varint(rng.choice((0, 1, 2, 2**64 - 1) if hostile else (0, 1)))
        if t == _F.TYPE_ENUM:
            known = [v.number for v in f.enum_type.values]
            odd = (-1, 99, 2**31 - 1, -(2**31))
            return _VARINT, _varint(rng.choice(known + list(odd)) if hostile else rng.choice(known))
        value = rng.choice(_INTS) if hostile else rng.randint(0, 100)
        if t in (_F.TYPE_SINT32, _F.TYPE_SINT64):
            return _VARINT, _varint(_zigzag(value))
        if t in (_F.TYPE_FIXED64, _F.TYPE_SFIXED64):
            return _FIXED64, struct.pack("<Q", value & (2**64 - 1))
        if t in (_F.TYPE_FIXED32, _F.TYPE_SFIXED32):
            return _FIXED32, struct.pack("<I", value & (2**32 - 1))
        return _VARINT, _varint(value)

    def text(self, *, hostile: bool, utf8: bool = True) -> bytes:
        rng = self.rng
        roll = rng.random()
        if not utf8 and roll < 0.5:
            return rng.choice(self.words).encode() + rng.choice(_INVALID_UTF8)
        if roll < 0.55 or not hostile:
            return rng.choice(self.words).encode()
        if roll < 0.8:
            return rng.choice(_ODD_TEXT).encode()
        if roll < 0.99:
            return (rng.choice(self.words) or "k").encode() * rng.choice((10, 100, 1_000))
        return b"x" * rng.choice((100_000, 900_000, 1_100_000))  # the last: over --max-request-bytes

    def _unknown_field(self) -> bytes:
        rng = self.rng
        number = rng.choice((99, 1000, 19_000, 2**29 - 1))  # 19000: reserved for protobuf, legal on the wire
        wire_type = rng.choice((_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32))
        payload = {
            _VARINT: _varint(rng.choice(_INTS)),
            _FIXED64: rng.randbytes(8),
            _LENGTH_DELIMITED: _varint(5) + rng.randbytes(5),
            _FIXED32: rng.randbytes(4),
        }[wire_type]
        return _tag(number, wire_type) + payload

    def _deep(self, type_name: str, levels: int) -> bytes:
        """A Value/Struct/ListValue nested `levels` times (protobuf's parsers stop at 100 levels)."""
        value = _tag(2, _FIXED64) + struct.pack("<d", 1.0)  # Value.number_value
        for _ in range(levels):
            if self.rng.random() < 0.5:  # Value.list_value = ListValue{values: [value]}
                value = _delimited(6, _delimited(1, value))
            else:  # Value.struct_value = Struct{fields: {"k": value}}
                value = _delimited(5, _delimited(1, _delimited(1, b"k") + _delimited(2, value)))
        if type_name == "google.protobuf.Struct":
            return _delimited(1, _delimited(1, b"k") + _delimited(2, value))
        if type_name == "google.protobuf.ListValue":
            return _delimited(1, value)
        return value

    # ------------------------------------------------------------ malformed messages

    def malformed(self, descriptor: Descriptor) -> bytes:
        """Bytes that are, most of the time, not a valid message of `descriptor`'s type: random bytes,
        a valid message truncated or mutated, invalid UTF-8, a field of the wrong wire type..."""
        rng = self.rng
        kind = rng.randrange(9)
        valid = self.message(descriptor, hostile=False)
        if kind == 0:
            return rng.randbytes(rng.choice((1, 2, 3, 8, 64, 512, 4096)))
        if kind == 1 and valid:
            return valid[: rng.randrange(len(valid))]
        if kind == 2 and valid:
            mutated = bytearray(valid)
            for _ in range(rng.randint(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            return bytes(mutated)
        if kind == 3:
            at = rng.randrange(len(valid) + 1)
            return valid[:at] + rng.randbytes(rng.randint(1, 16)) + valid[at:]
        if kind == 4:
            return self.message(descriptor, hostile=rng.random() < 0.5, utf8=False)
        if kind == 5:  # a length prefix far past the end of the message
            number = rng.choice(descriptor.fields).number if descriptor.fields else 1
            return valid + _tag(number, 2) + _varint(rng.choice((2**31 - 1, 2**32, 2**63))) + b"abc"
        if kind == 6 and descriptor.fields:  # a known field with a wire type it does not have
            known = rng.choice(descriptor.fields)
            return valid + _tag(known.number, rng.choice((0, 1, 2, 5))) + rng.randbytes(rng.randint(0, 9))
        if kind == 7:  # field number 0, an over-long varint, an end-group with no start
            return valid + rng.choice((b"\x00\x01", b"\x08" + b"\xff" * 11, _tag(3, 4), _tag(2**29 - 1, 3)))
        return rng.randbytes(rng.randint(0, 40))


# ---------------------------------------------------------------- cases and their outcome


@dataclass(frozen=True)
class Case:
    label: str  # "<kind>[<group>]#<index> <method path> (detail)": with the seed, enough to regenerate it
    method: Method
    messages: tuple[bytes, ...]  # one for a unary request; a client stream sends each
    metadata: tuple[tuple[str, str | bytes], ...] = ()
    # Responses to read before the client cancels (with `cancel`); None reads the stream to its end.
    read: int | None = None
    cancel: bool = False
    hold: bool = False  # a client stream stays open after its last message (until the call ends)
    timeout: float = CALL_TIMEOUT

    def __post_init__(self) -> None:
        # A stream read to its end must end: the client half-closes, or a short deadline ends it.
        endless = (
            self.method.server_streaming
            and self.read is None
            and (self.hold or not self.method.client_streaming)
        )
        assert not endless or self.timeout < CALL_TIMEOUT, f"{self.label}: would wait for its deadline"
        assert self.read is None or self.cancel, f"{self.label}: stops reading without cancelling"

    def problem(self, outcome: Outcome) -> str | None:
        """What is wrong with `outcome`, or None."""
        code = outcome.code
        if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
            return f"{code.name}: {outcome.details}"
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and self.timeout >= CALL_TIMEOUT:
            return f"no answer within {CALL_TIMEOUT} s: {outcome.details}"
        if code == grpc.StatusCode.CANCELLED and not self.cancel:
            return f"CANCELLED, though the client did not cancel: {outcome.details}"
        if code == grpc.StatusCode.UNAVAILABLE:
            return f"UNAVAILABLE (the server is gone?): {outcome.details}"
        return None


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    details: str = ""
    responses: int = 0


class Requests:
    """A client stream's request iterator; with `hold`, it stays open after the last message (until
    `release`) so that the client can abandon the call mid-stream."""

    def __init__(self, messages: Sequence[bytes], hold: bool) -> None:
        self._messages = messages
        self._hold = hold
        self.sent = threading.Event()
        self._released = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield from self._messages
        self.sent.set()
        if self._hold:
            self._released.wait(CALL_TIMEOUT)

    def release(self) -> None:
        self._released.set()


def run(channel: grpc.Channel, case: Case) -> Outcome:
    """Make the call `case` describes and return how it ended."""
    method = case.method
    options: dict[str, Any] = {"timeout": case.timeout, "metadata": case.metadata or None}
    requests = Requests(case.messages, hold=case.hold)
    try:
        if not method.client_streaming and not method.server_streaming:
            future = channel.unary_unary(method.path).future(case.messages[0], **options)
            if case.cancel:
                future.cancel()
            return _result(future.exception, future.code, future.details)
        if not method.client_streaming:
            return _drain(channel.unary_stream(method.path)(case.messages[0], **options), case)
        if not method.server_streaming:
            future = channel.stream_unary(method.path).future(iter(requests), **options)
            if case.cancel:
                future.add_done_callback(lambda _: requests.sent.set())  # the server may end it first
                requests.sent.wait(case.timeout)  # every message handed to gRPC, then abandoned
                future.cancel()
            return _result(future.exception, future.code, future.details)
        return _drain(channel.stream_stream(method.path)(iter(requests), **options), case)
    finally:
        requests.release()


def _result(exception: Callable[[], Any], code: Callable[[], Any], details: Callable[[], Any]) -> Outcome:
    try:
        exception()
    except grpc.FutureCancelledError:
        return Outcome(grpc.StatusCode.CANCELLED, "cancelled by the client")
    return Outcome(code(), details() or "")


def _drain(call: Any, case: Case) -> Outcome:
    """Read a response stream as `case` says; cancel it if `case.cancel`."""
    received = 0
    try:
        while case.read is None or received < case.read:
            next(call)
            received += 1
    except StopIteration:
        pass
    except grpc.RpcError as error:
        return Outcome(error.code(), error.details() or "", received)
    if case.cancel:
        call.cancel()
    return Outcome(call.code(), call.details() or "", received)


@dataclass
class Report:
    """What a run of cases got: the status codes by method, and every case that went wrong."""

    codes: dict[tuple[str, str], int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, case: Case, outcome: Outcome) -> None:
        key = (case.method.path, outcome.code.name)
        self.codes[key] = self.codes.get(key, 0) + 1
        problem = case.problem(outcome)
        if problem is not None:
            self.problems.append(f"{case.label}: {problem}")


# ---------------------------------------------------------------- the kinds of case

# Metadata keys a server might read: flagd's selector (ignored by the sidecar), the header the test
# server maps into the flagd context, and others it should not care about.
_METADATA_KEYS = (
    "flagd-selector",
    "x-tenant",
    "authorization",
    "x-request-id",
    "traceparent",
    "x-b3-traceid",
)
_METADATA_TEXT = (
    "",
    "x",
    "source=../../etc/passwd",
    "flagSetKey=a,flagSetKey=b",
    "a,b,,c",
    "null",
    '{"json": 1}',
    "%00%ff",
    "targetingKey",
    "$userId",
    "Bearer \\x00",
    "; DROP",
    "=",
    " padded ",
    "~!@#$%^&*()",
)  # fmt: skip  (text values: printable ASCII only, or the client itself refuses the call with INTERNAL)


def _streams(method: Method, rng: random.Random, make: Callable[[], bytes], **case: Any) -> dict[str, Any]:
    """The messages, and how to end the call, for a call that runs to its natural end (a server
    stream: its first answer, then the client cancels)."""
    if method.client_streaming:
        return {"messages": tuple(make() for _ in range(rng.choice((0, 1, 2, 3, 8)))), **case}
    if method.server_streaming:
        return {"messages": (make(),), "read": 1, "cancel": True, **case}
    return {"messages": (make(),), **case}


def malformed_case(label: str, method: Method, gen: Generator) -> Case:
    """Bytes that are mostly not the method's message; a client stream sends one among valid ones."""
    rng, descriptor = gen.rng, method.input
    if method.client_streaming:
        count = rng.randint(1, 5)
        bad = rng.randrange(count)
        messages = tuple(
            gen.malformed(descriptor) if i == bad else gen.message(descriptor, hostile=False)
            for i in range(count)
        )
        return Case(f"{label} (message {bad + 1} of {count})", method, messages)
    return Case(label, method, **_streams(method, rng, lambda: gen.malformed(descriptor)))


def hostile_case(label: str, method: Method, gen: Generator) -> Case:
    """Well-formed messages with hostile values (valid UTF-8: the message parses, unless a Struct is
    nested deeper than protobuf parses or the request is over the size limit)."""
    fields = _streams(method, gen.rng, lambda: gen.message(method.input, hostile=True))
    return Case(label, method, **fields)


def abandoned_case(label: str, method: Method, gen: Generator) -> Case:
    """A call the client gives up on: cancelled after k messages either way, or a short deadline."""
    rng = gen.rng
    messages = tuple(gen.message(method.input, hostile=rng.random() < 0.3) for _ in range(rng.randint(1, 4)))
    if not method.client_streaming:
        messages = messages[:1]
    if rng.random() < 0.3:
        timeout = rng.choice((0.001, 0.01, 0.05, 0.2))
        return Case(f"{label} (deadline {timeout} s)", method, messages, hold=True, timeout=timeout)
    read = rng.randint(0, len(messages)) if method.server_streaming else None
    return Case(
        f"{label} cancelled after reading {read}", method, messages, read=read, cancel=True, hold=True
    )


def metadata_case(label: str, method: Method, gen: Generator) -> Case:
    """A valid request with odd metadata: empty, long, repeated and binary values, many headers; now
    and then more than gRPC's 16 KiB limit on metadata (RESOURCE_EXHAUSTED, and a new connection)."""
    rng = gen.rng
    oversized = rng.random() < 0.03
    metadata: list[tuple[str, str | bytes]] = []
    size, count = 0, rng.choice((1, 1, 2, 3, 10, 60))
    while len(metadata) < count:
        key = rng.choice(_METADATA_KEYS)
        value: str | bytes
        if rng.random() < 0.15:
            key, value = f"{key}-bin", rng.randbytes(rng.choice((0, 1, 64, 2000)))
        elif rng.random() < 0.1:
            value = "v" * rng.choice((200, 2_000, 6_000, 20_000))
        else:
            value = rng.choice((*_METADATA_TEXT, *gen.words))
        size += len(key) + len(value)
        if size > 6_000 and not oversized:  # within grpc's soft limit (8 KiB), past which it may refuse
            break
        metadata.append((key, value))
    fields = _streams(method, rng, lambda: gen.message(method.input, hostile=False), metadata=tuple(metadata))
    return Case(f"{label}{' (oversized)' if oversized else ''}", method, **fields)


CaseFactory = Callable[[str, Method, Generator], Case]


def cases(
    test: str, factory: CaseFactory, methods: Sequence[Method], count: int, seed: int, words: Sequence[str]
) -> Iterator[Case]:
    """`count` cases from `factory`, the methods taking turns; case i depends on (seed, test, i) only."""
    for i in range(count):
        method = methods[i % len(methods)]
        gen = Generator(random.Random(f"{seed}:{test}:{i}"), words)
        yield factory(f"{test}#{i} {method.path}", method, gen)

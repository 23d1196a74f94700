"""Per-request limits the servicers check (the others are grpcio's own), and `bounded`, which keeps
client input echoed into a status message or log line short.

grpcio enforces --max-request-bytes (RESOURCE_EXHAUSTED "Received message larger than max
(N vs. LIMIT)") and --max-concurrent-calls (RESOURCE_EXHAUSTED "Concurrent RPC limit exceeded!",
before any handler runs). The context limits live here: a context is the one part of a request
whose size drives evaluation cost (hashing for the cache key, every constraint lookup), and a
message naming the limit and its flag tells a client author exactly what to change.
Checking is cheap, but ByteSize() re-encodes the Struct and costs more than the check itself
(BENCHMARKS.md): EvaluationService's fast paths count keys as they read a plain context and
skip the byte count when the whole request is within the limit (edge.plain_context says why
that is exact), and call `violation` only for the requests they hand to the general path.

Besides the context, ContextLimits holds the limits on what a request asks for and what it gets:
the length of a flag key (a key longer than that which names no flag of the loaded set is
INVALID_ARGUMENT: it could only be FLAG_NOT_FOUND, and echoing a huge key into that status would
overflow grpcio's metadata size limit), the number of distinct keys EvaluateAll may list, and the
size of an EvaluateAll / ResolveAll answer, debug traces included (RESOURCE_EXHAUSTED). Each
rejection is counted in flag_sidecar_limit_rejections_total{limit} (SidecarMetrics.count_limit).
The services admit contexts and raise the rejections through the edge (sidecar.server.edge).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass

from google.protobuf import struct_pb2

DEFAULT_MAX_CONTEXT_KEYS = 256
DEFAULT_MAX_CONTEXT_BYTES = 64 * 1024
DEFAULT_MAX_FLAG_KEY_BYTES = 1024
DEFAULT_MAX_EVALUATE_ALL_KEYS = 1000
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
# A status message travels in a grpc-message header (percent-encoded, a non-ASCII character up to 9
# bytes) and grpcio refuses metadata over its size limit (16 KiB by default): client text is cut
# well below that.
MAX_STATUS_MESSAGE = 1024


def bounded(text: str, limit: int = MAX_STATUS_MESSAGE) -> str:
    """`text` as it is up to `limit` characters, else its start, an ellipsis and its full length:
    for a status message or log line that may carry client input."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (cut; {len(text)} characters in all)"


@dataclass(frozen=True, slots=True)
class Violation:
    """A request over a limit: the option that sets it (the metric's label) and the status message."""

    limit: str  # e.g. "max_context_keys"
    message: str


@dataclass(frozen=True, slots=True)
class ContextLimits:
    max_keys: int = DEFAULT_MAX_CONTEXT_KEYS  # 0: no limit
    max_bytes: int = DEFAULT_MAX_CONTEXT_BYTES  # 0: no limit
    max_flag_key_bytes: int = DEFAULT_MAX_FLAG_KEY_BYTES  # 0: no limit
    max_evaluate_all_keys: int = DEFAULT_MAX_EVALUATE_ALL_KEYS  # 0: no limit
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES  # 0: no limit

    def violation(self, context: struct_pb2.Struct) -> str | None:
        """Why `context` is over a limit (an INVALID_ARGUMENT message), or None if it is within."""
        violated = self.context_violation(context)
        return None if violated is None else violated.message

    def context_violation(self, context: struct_pb2.Struct) -> Violation | None:
        keys = len(context.fields)
        if not keys:
            return None
        if self.max_keys and keys > self.max_keys:
            message = f"context has {keys} keys; the limit is {self.max_keys} (--max-context-keys)"
            return Violation("max_context_keys", message)
        if self.max_bytes:
            size = context.ByteSize()
            if size > self.max_bytes:
                return Violation(
                    "max_context_bytes",
                    f"context is {size} bytes; the limit is {self.max_bytes} bytes (--max-context-bytes)",
                )
        return None

    def flag_key_too_long(self, flag_key: str) -> Violation | None:
        """INVALID_ARGUMENT for a key over --max-flag-key-bytes (the caller exempts the loaded set's keys)."""
        limit = self.max_flag_key_bytes
        # UTF-8 takes 1 to 4 bytes a character: most keys need no encoding to be judged.
        if not limit or len(flag_key) * 4 <= limit:
            return None
        size = len(flag_key.encode("utf-8", "surrogatepass"))
        if size <= limit:
            return None
        shown = bounded(flag_key, 64)
        message = f"flag key {shown!r} is {size} bytes; the limit is {limit} (--max-flag-key-bytes)"
        return Violation("max_flag_key_bytes", message)

    def flag_keys_violation(self, flag_keys: Sequence[str], known: Container[str]) -> Violation | None:
        """INVALID_ARGUMENT for an EvaluateAll key list: more distinct keys than
        --max-evaluate-all-keys, or a key over --max-flag-key-bytes that names no flag."""
        if not flag_keys:
            return None
        limit = self.max_evaluate_all_keys
        if limit and len(flag_keys) > limit and (distinct := len(set(flag_keys))) > limit:
            return Violation(
                "max_evaluate_all_keys",
                f"EvaluateAll lists {distinct} distinct flag keys; the limit is {limit} "
                "(--max-evaluate-all-keys): ask in several calls, or list none to get every flag",
            )
        if self.max_flag_key_bytes and max(map(len, flag_keys)) * 4 > self.max_flag_key_bytes:
            for index, key in enumerate(flag_keys):
                violated = self.flag_key_too_long(key)
                if violated is not None and key not in known:
                    return Violation(violated.limit, f"flag_keys[{index}]: {violated.message}")
        return None

    def response_violation(self, size: int) -> Violation | None:
        """RESOURCE_EXHAUSTED for an EvaluateAll / ResolveAll answer over --max-response-bytes."""
        limit = self.max_response_bytes
        if not limit or size <= limit:
            return None
        return Violation(
            "max_response_bytes",
            f"the answer would be {size} bytes; the limit is {limit} (--max-response-bytes): ask for "
            "fewer flags (flag_keys), or without debug traces",
        )

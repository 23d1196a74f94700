"""Per-request limits the servicers check on a user context (the others are grpcio's own).

grpcio enforces --max-request-bytes (RESOURCE_EXHAUSTED "Received message larger than max
(N vs. LIMIT)") and --max-concurrent-calls (RESOURCE_EXHAUSTED "Concurrent RPC limit exceeded!",
before any handler runs). The context limits live here: a context is the one part of a request
whose size drives evaluation cost (hashing for the cache key, every constraint lookup), and a
message naming the limit and its flag tells a client author exactly what to change.
Checking is cheap, but ByteSize() re-encodes the Struct and costs more than the check itself
(BENCHMARKS.md): EvaluationService's fast paths count keys as they read a plain context and
skip the byte count when the whole request is within the limit (convert.plain_context says why
that is exact), and call `violation` only for the requests they hand to the general path.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import struct_pb2

DEFAULT_MAX_CONTEXT_KEYS = 256
DEFAULT_MAX_CONTEXT_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ContextLimits:
    max_keys: int = DEFAULT_MAX_CONTEXT_KEYS  # 0: no limit
    max_bytes: int = DEFAULT_MAX_CONTEXT_BYTES  # 0: no limit

    def violation(self, context: struct_pb2.Struct) -> str | None:
        """Why `context` is over a limit (an INVALID_ARGUMENT message), or None if it is within."""
        keys = len(context.fields)
        if not keys:
            return None
        if self.max_keys and keys > self.max_keys:
            return f"context has {keys} keys; the limit is {self.max_keys} (--max-context-keys)"
        if self.max_bytes:
            size = context.ByteSize()
            if size > self.max_bytes:
                return f"context is {size} bytes; the limit is {self.max_bytes} bytes (--max-context-bytes)"
        return None

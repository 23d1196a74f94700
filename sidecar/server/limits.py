"""Per-request limits the servicers check on a user context (the others are grpcio's own).

grpcio enforces --max-request-bytes (RESOURCE_EXHAUSTED "Received message larger than max
(N vs. LIMIT)") and --max-concurrent-calls (RESOURCE_EXHAUSTED "Concurrent RPC limit exceeded!",
before any handler runs). The context limits live here: a context is the one part of a request
whose size drives evaluation cost (hashing for the cache key, every constraint lookup), and a
message naming the limit and its flag tells a client author exactly what to change.
Checking costs about 0.4 us in a timeit loop, but ByteSize() re-encodes the Struct and costs about
2 us inside the server: EvaluationService's fast paths count keys as they read a plain context and
skip the byte count when the whole request is within the limit (convert.plain_context says why
that is exact), and call `violation` only for the requests they hand to the general path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2

from flagsidecar.v1 import evaluation_pb2
from sidecar.engine import InvalidContextError

from .convert import user_context

DEFAULT_MAX_CONTEXT_KEYS = 256
DEFAULT_MAX_CONTEXT_BYTES = 64 * 1024


class ContextRejectedError(ValueError):
    """A user context that no service admits; str() is the INVALID_ARGUMENT message."""


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

    def admit(self, user: evaluation_pb2.User) -> dict[str, Any]:
        """The engine's context for a request's user (with "$userId"), admitted as every service
        admits one: within the limits, keys neither empty nor reserved ("$..."), values strings,
        finite numbers, booleans or null. Raises ContextRejectedError with the message to answer."""
        violation = self.violation(user.context)
        if violation is not None:
            raise ContextRejectedError(violation)
        try:
            return user_context(user)
        except InvalidContextError as error:
            raise ContextRejectedError(f"invalid user context: {error}") from None

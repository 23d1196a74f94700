"""What a follower of flagsidecar.v1.SyncService.Watch holds: the set the stream has brought
(flags and segments as messages, by key) and its revision, with the reconnect delays.

Shared by the two followers: the grpc:// source (sidecar/sources/upstream.py), which hands the
set to its store as a document, and the in-process client (clients/python), which compiles it
with the engine. Neither validates here: a delta only replaces, adds and removes messages.
No gRPC (each follower owns its channel), no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

from flagsidecar.v1 import flag_pb2, sync_pb2

__all__ = ["CLIENT_CHANNEL_OPTIONS", "HeldSet", "OutOfStep", "backoff_delays", "described"]

# The follower's channel: pings every 30 s, also between streams (the control plane allows every
# 10 s; flagd #1998, #2021), so a connection that died without a word is found within about 40 s;
# and sets larger than gRPC's 4 MiB default (flagd#1357).
CLIENT_CHANNEL_OPTIONS: Final = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 64 * 1024**2),
)


def backoff_delays(
    first: float, cap: float, rng: Callable[[], float] = random.random
) -> Callable[[int], float]:
    """Delay before reconnect attempt n (0, 1, ...): full jitter over an exponential ceiling, so
    that a fleet that lost its control plane at one moment does not come back at one moment."""

    def delay(attempt: int) -> float:
        return rng() * min(cap, first * 2 ** min(attempt, 30))

    return delay


class OutOfStep(Exception):
    """A delta that does not start where the held set is: start over with a whole set."""


class HeldSet:
    """The upstream's set as the stream has brought it (messages by key), and its revision."""

    def __init__(self) -> None:
        self.revision = 0
        self.flag_set = ""
        self.flags: dict[str, flag_pb2.Flag] = {}
        self.segments: dict[str, flag_pb2.Segment] = {}

    def replace(self, flag_set: flag_pb2.FlagSet, revision: int, name: str) -> None:
        self.flags = {flag.key: flag for flag in flag_set.flags}
        self.segments = {segment.key: segment for segment in flag_set.segments}
        self.revision, self.flag_set = revision, name

    def apply(self, delta: sync_pb2.FlagSetDelta, revision: int) -> None:
        for flag in delta.flags:
            self.flags[flag.key] = flag
        for segment in delta.segments:
            self.segments[segment.key] = segment
        for key in delta.removed_flags:
            self.flags.pop(key, None)
        for key in delta.removed_segments:
            self.segments.pop(key, None)
        self.revision = revision

    def take(self, response: sync_pb2.WatchResponse) -> bool:
        """Apply one Watch message; True when the set (or its revision) changed. A delta that
        does not start at the held revision raises OutOfStep; a heartbeat changes nothing."""
        kind = response.WhichOneof("update")
        if kind == "full_set":
            before = (self.revision, self.flags, self.segments)
            self.replace(response.full_set, response.revision, response.flag_set)
            return before != (self.revision, self.flags, self.segments)
        if kind == "delta":
            if response.delta.since_revision != self.revision:
                raise OutOfStep(
                    f"a delta from revision {response.delta.since_revision} came while "
                    f"{self.revision} is held"
                )
            changed = response.revision != self.revision
            self.apply(response.delta, response.revision)
            return changed
        return False

    def message(self) -> flag_pb2.FlagSet:
        """The held set as one FlagSet message."""
        return flag_pb2.FlagSet(
            flags=list(self.flags.values()), segments=list(self.segments.values()), revision=self.revision
        )


def described(error: Exception) -> str:
    """A gRPC error (grpc.RpcError, read by its attributes) in words: "UNAVAILABLE: details"."""
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    name = code.name if code is not None else "error"
    return f"{name}: {details}" if details else name

"""What every sync handler does at the edge of a call, whichever protocol: decode the request
(INVALID_ARGUMENT with the reason, not grpcio's INTERNAL), subscribe to or read a selection of the
fan-out (NOT_FOUND naming the set served; UNAVAILABLE while shutting down), and write a stream
message within the idle timeout (DEADLINE_EXCEEDED otherwise: a client that stopped reading holds
its buffers no longer than that)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from .fanout import Snapshot, Subscription, SubscriptionClosed, SyncFanout, UnknownFlagSet

log = logging.getLogger(__name__)


async def decode_request(kind: Any, data: bytes, context: Any) -> Any:
    try:
        return kind.FromString(data)
    except DecodeError as error:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid {kind.DESCRIPTOR.name}: {error}"
        )


async def subscribe(fanout: SyncFanout, flag_set: str | None, context: Any) -> tuple[Subscription, Snapshot]:
    try:
        return fanout.subscribe(flag_set)
    except UnknownFlagSet as error:
        await context.abort(grpc.StatusCode.NOT_FOUND, str(error))
        raise  # abort raises; this is for the type checker
    except SubscriptionClosed as error:
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"{error}; reconnect")
        raise


async def snapshot(fanout: SyncFanout, flag_set: str | None, context: Any) -> Snapshot:
    try:
        return fanout.snapshot(flag_set)
    except UnknownFlagSet as error:
        await context.abort(grpc.StatusCode.NOT_FOUND, str(error))
        raise  # abort raises; this is for the type checker


async def write_within(
    context: Any, data: bytes, timeout: float, stats: dict[str, int], method: str, then: str
) -> None:
    """Write one stream message, or close the stream after `timeout` seconds (`then`: what the
    client should do next, for the message)."""
    try:
        await asyncio.wait_for(context.write(data), timeout)
    except TimeoutError:
        stats["write_timeouts"] += 1
        message = (
            f"stream closed: its client took no message for {timeout:g}s (--stream-idle-timeout); {then}"
        )
        log.info("%s from %s: %s", method, context.peer(), message)
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, message)


__all__ = ["decode_request", "snapshot", "subscribe", "write_within"]

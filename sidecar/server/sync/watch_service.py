"""flagsidecar.v1.SyncService on grpc.aio: Watch and Fetch over the fan-out (fanout.py).

Every message is encoded once and the bytes cached on the Snapshot or Change it came from, so a
change costs one encoding whatever the number of subscribers: the handlers are registered with
identity serializers and write those bytes. Requests are decoded here too, so that a malformed one
is INVALID_ARGUMENT with a reason rather than grpcio's INTERNAL.

A Watch stream writes each message within `write_timeout` seconds (the stream idle timeout) or is
closed with DEADLINE_EXCEEDED, naming the revision to resume from: a client that stopped reading
holds its buffers for no longer than that. While nothing changes it sends a heartbeat every
`heartbeat_interval` seconds, which keeps proxies and the client's dead-stream detection content.
"""

from __future__ import annotations

from typing import Any, Final

import grpc

from flagsidecar.v1 import sync_pb2
from sidecar.engine import FlagSetDefinition
from sidecar.schema import flag_set_to_message, flag_to_message, segment_to_message

from .calls import decode_request, subscribe, write_within
from .calls import snapshot as read_snapshot
from .fanout import Change, Resync, Snapshot, SubscriptionClosed, SyncFanout
from .selector import SelectorError, parse_selector

SERVICE_NAME: Final = "flagsidecar.v1.SyncService"
WATCH_METHOD: Final = f"{SERVICE_NAME}/Watch"
FETCH_METHOD: Final = f"{SERVICE_NAME}/Fetch"
DEFAULT_HEARTBEAT_INTERVAL: Final = 30.0

_REASONS: Final = {
    Resync.INITIAL: sync_pb2.FULL_SET_REASON_INITIAL,
    Resync.REVISION_TOO_OLD: sync_pb2.FULL_SET_REASON_REVISION_TOO_OLD,
    Resync.UNKNOWN_REVISION: sync_pb2.FULL_SET_REASON_UNKNOWN_REVISION,
    Resync.FELL_BEHIND: sync_pb2.FULL_SET_REASON_FELL_BEHIND,
}
_MESSAGES: Final = {
    Resync.INITIAL: "",
    Resync.REVISION_TOO_OLD: "since_revision is older than the changes this server keeps: the whole set",
    Resync.UNKNOWN_REVISION: (
        "since_revision was not sent by this server (another one, or before a restart): the whole set"
    ),
    Resync.FELL_BEHIND: "this stream fell behind (changes piled up unread): the whole set",
}


def _length_delimited(field_number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field: appended to a message's bytes, it sets that field
    (how a cached FlagSet joins a response without being parsed and encoded again)."""
    return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _flag_set_bytes(snapshot: Snapshot) -> bytes:
    cached = snapshot.encoded.get("flagset")
    if cached is None:
        definitions = FlagSetDefinition(tuple(snapshot.flags.values()), tuple(snapshot.segments.values()))
        cached = flag_set_to_message(definitions, snapshot.revision).SerializeToString()
        snapshot.encoded["flagset"] = cached
    return cached


def full_set_bytes(snapshot: Snapshot, why: Resync) -> bytes:
    """The WatchResponse with the whole set."""
    key = ("watch-full", why)
    cached = snapshot.encoded.get(key)
    if cached is None:
        head = sync_pb2.WatchResponse(
            revision=snapshot.revision,
            full_set_reason=_REASONS[why],
            message=_MESSAGES[why],
            flag_set=snapshot.flag_set,
        ).SerializeToString()
        cached = head + _length_delimited(2, _flag_set_bytes(snapshot))
        snapshot.encoded[key] = cached
    return cached


def delta_bytes(change: Change) -> bytes:
    """The WatchResponse with what `change` changed."""
    cached = change.encoded.get("watch")
    if cached is None:
        snapshot = change.snapshot
        delta = sync_pb2.FlagSetDelta(
            since_revision=change.since,
            flags=[flag_to_message(snapshot.flags[key]) for key in sorted(change.flags)],
            segments=[segment_to_message(snapshot.segments[key]) for key in sorted(change.segments)],
            removed_flags=sorted(change.removed_flags),
            removed_segments=sorted(change.removed_segments),
        )
        response = sync_pb2.WatchResponse(revision=change.revision, delta=delta, flag_set=snapshot.flag_set)
        cached = change.encoded["watch"] = response.SerializeToString()
    return cached


def _heartbeat_bytes(revision: int, flag_set: str) -> bytes:
    response = sync_pb2.WatchResponse(revision=revision, heartbeat=sync_pb2.Heartbeat(), flag_set=flag_set)
    return response.SerializeToString()


class SyncService:
    """The Watch and Fetch handlers (registered by server.py under the stream admission)."""

    def __init__(
        self,
        fanout: SyncFanout,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        write_timeout: float = 300.0,
    ) -> None:
        if heartbeat_interval <= 0 or write_timeout <= 0:
            raise ValueError("heartbeat_interval and write_timeout must be positive")
        self.fanout = fanout
        self.heartbeat_interval = heartbeat_interval
        self.write_timeout = write_timeout
        self.stats = {"write_timeouts": 0}

    async def watch(self, data: bytes, context: Any) -> None:
        request = await decode_request(sync_pb2.WatchRequest, data, context)
        flag_set = await _selection(request.selector, context)
        subscription, snapshot = await subscribe(self.fanout, flag_set, context)
        try:
            revision = snapshot.revision
            if request.since_revision:
                since = self.fanout.since(request.since_revision, flag_set)
                first = full_set_bytes(snapshot, since) if isinstance(since, Resync) else delta_bytes(since)
            else:
                first = full_set_bytes(snapshot, Resync.INITIAL)
            await self._write(context, first, revision)
            while True:
                try:
                    item = await subscription.next(self.heartbeat_interval)
                except SubscriptionClosed as closed:
                    await context.abort(
                        grpc.StatusCode.UNAVAILABLE, f"{closed}; reconnect with since_revision={revision}"
                    )
                    return
                if item is None:
                    data = _heartbeat_bytes(revision, snapshot.flag_set)
                elif isinstance(item, Snapshot):
                    data, revision = full_set_bytes(item, Resync.FELL_BEHIND), item.revision
                else:
                    data, revision = delta_bytes(item), item.revision
                await self._write(context, data, revision)
        finally:
            subscription.cancel()

    async def _write(self, context: Any, data: bytes, revision: int) -> None:
        then = f"reconnect with since_revision={revision} to resume"
        await write_within(context, data, self.write_timeout, self.stats, WATCH_METHOD, then)

    async def fetch(self, data: bytes, context: Any) -> bytes:
        request = await decode_request(sync_pb2.FetchRequest, data, context)
        flag_set = await _selection(request.selector, context)
        snapshot = await read_snapshot(self.fanout, flag_set, context)
        head = sync_pb2.FetchResponse(flag_set_name=snapshot.flag_set).SerializeToString()
        return head + _length_delimited(1, _flag_set_bytes(snapshot))


async def _selection(selector: str, context: Any) -> str | None:
    try:
        return parse_selector(selector)
    except SelectorError as error:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        raise  # abort raises; this is for the type checker


__all__ = [
    "FETCH_METHOD",
    "SERVICE_NAME",
    "WATCH_METHOD",
    "SyncService",
    "delta_bytes",
    "full_set_bytes",
]

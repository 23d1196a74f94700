"""The sync stream: flagsidecar.v1.SyncService, a fan-out of the applied flag set to other sidecars
(`--source grpc://...`) and in-process clients, on a grpc.aio listener of its own (server.py).
docs/sync.md describes the protocol."""

from .fanout import Change, Resync, Snapshot, Subscription, SubscriptionClosed, SyncFanout, UnknownFlagSet
from .selector import DEFAULT_FLAG_SET, SelectorError, parse_selector
from .server import SyncServer
from .watch_service import SERVICE_NAME, SyncService

__all__ = [
    "DEFAULT_FLAG_SET",
    "SERVICE_NAME",
    "Change",
    "Resync",
    "SelectorError",
    "Snapshot",
    "Subscription",
    "SubscriptionClosed",
    "SyncFanout",
    "SyncServer",
    "SyncService",
    "UnknownFlagSet",
    "parse_selector",
]

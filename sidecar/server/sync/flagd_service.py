"""flagd.sync.v1.FlagSyncService on the sync listener, over the same fan-out as Watch.

flagd's protocol sends the whole selected set as a flagd flag document on every change
(SyncFlags), or once (FetchAllFlags), translated by flagd_translation.py: a flag that flagd's
in-process providers cannot evaluate exactly as the sidecar does is left out of the document,
logged, and listed with its reason in `sync_context` and GetMetadata.

`sync_context` is what the provider merges into every evaluation context (the Python provider
does it with a hook, after the caller's context, as flagd's static -X values), so it holds the
sidecar's --context-value pairs, and one reserved key, "$flagSidecar", whose properties no rule
can read (keys starting with "$" are the sidecar's): the flag set and the flags left out. It is
never empty: the Python provider reads GetMetadata's `metadata` when `sync_context` is empty and
fails on an empty one (KeyError: 'metadata').

A request's `provider_id` may say how the provider hashes percentage splits: `fractional=v2`
(among comma-separated parts, the rest being the caller's) gets splits as fractional
(flagd_fractional.py); without it they are left out, as the Python provider hashes as v3.

Each snapshot is translated and encoded once per hashing, the bytes cached on the Snapshot (`encoded`),
whatever the number of streams. The selector is the flagd-selector header, else the request's
(deprecated) field: our `flag-set=NAME`, or flagd's `flagSetId=NAME`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

import grpc
from google.protobuf.struct_pb2 import Struct

from flagd.sync.v1 import sync_pb2

from ..edge import fill_struct
from .calls import decode_request, subscribe, write_within
from .calls import snapshot as read_snapshot
from .fanout import Change, Snapshot, SubscriptionClosed, SyncFanout
from .flagd_translation import Translation, Translator
from .selector import SELECTOR_KEY, SelectorError, parse_selector

log = logging.getLogger(__name__)

SERVICE_NAME: Final = "flagd.sync.v1.FlagSyncService"
SYNC_FLAGS_METHOD: Final = f"{SERVICE_NAME}/SyncFlags"
SELECTOR_HEADER: Final = "flagd-selector"
CONTEXT_KEY: Final = "$flagSidecar"
FLAGD_FLAG_SET_KEY: Final = "flagSetId"
FRACTIONAL_KEY: Final = "fractional"
FRACTIONAL_VERSIONS: Final = ("v2",)  # the fractional hashings served (v3's differs from ours)
_WAIT: Final = 30.0  # how long a stream waits for a change before it looks again


class FlagdSyncService:
    """SyncFlags, FetchAllFlags and GetMetadata (registered by server.py)."""

    def __init__(
        self,
        fanout: SyncFanout,
        static_context: Mapping[str, str] | None = None,
        header_properties: frozenset[str] = frozenset(),
        write_timeout: float = 300.0,
    ) -> None:
        if write_timeout <= 0:
            raise ValueError("write_timeout must be positive")
        self.fanout = fanout
        self.static_context = dict(static_context or {})
        # One translator per hashing (False: splits left out; True: fractional v2).
        self._translators = {
            v2: Translator(header_properties, self.static_context, fractional_v2=v2) for v2 in (False, True)
        }
        self.write_timeout = write_timeout
        self.stats = {"write_timeouts": 0}
        # Per hashing, the last snapshot translated and its translation (the bytes are cached on
        # the snapshot), and the flags left out as last logged.
        self._last: dict[bool, tuple[Snapshot, tuple[Translation, str, dict[str, Any]]]] = {}
        self._left_out: dict[bool, dict[str, str]] = {False: {}, True: {}}

    # ------------------------------------------------------------ encoding (once per snapshot)

    def translation(
        self, snapshot: Snapshot, fractional_v2: bool = False
    ) -> tuple[Translation, str, dict[str, Any]]:
        """(translation, flag document, sync context) of a snapshot (loop thread only)."""
        last = self._last.get(fractional_v2)
        cached = last[1] if last is not None and last[0] is snapshot else None
        if cached is None:
            translation = self._translators[fractional_v2].translate(snapshot.flags, snapshot.segments)
            document = translation.document_text()
            context: dict[str, Any] = dict(self.static_context)
            context[CONTEXT_KEY] = {
                "flagSet": snapshot.flag_set,
                "revision": str(snapshot.revision),  # a Struct number is a double: text keeps it exact
                "leftOut": dict(translation.left_out),
            }
            self._log_left_out(snapshot, translation.left_out, fractional_v2)
            cached = (translation, document, context)
            self._last[fractional_v2] = (snapshot, cached)
        return cached

    def _log_left_out(self, snapshot: Snapshot, left_out: Mapping[str, str], fractional_v2: bool) -> None:
        """Log, once per change, the flags this change left out (each with its reason) and how many
        are left out in all: not the whole list again on every change."""
        before = self._left_out[fractional_v2]
        new = {key: why for key, why in left_out.items() if before.get(key) != why}
        back = len(before.keys() - left_out.keys())
        self._left_out[fractional_v2] = dict(left_out)
        if not new and not back:
            return
        log.info(
            "flagd sync (revision %d): %d of %d flags left out for in-process providers%s%s%s",
            snapshot.revision,
            len(left_out),
            len(snapshot.flags),
            " hashing as fractional v2" if fractional_v2 else "",
            "; newly: " + "; ".join(f"{key}: {why}" for key, why in sorted(new.items())) if new else "",
            f"; {back} served again or removed" if back else "",
            extra={"event": "flagd_sync_left_out"},
        )

    def _sync_context(self, snapshot: Snapshot, fractional_v2: bool = False) -> Struct:
        return fill_struct(Struct(), self.translation(snapshot, fractional_v2)[2])

    def sync_bytes(self, snapshot: Snapshot, fractional_v2: bool = False) -> bytes:
        """The SyncFlagsResponse for a snapshot."""
        name = "flagd-sync-v2" if fractional_v2 else "flagd-sync"
        cached = snapshot.encoded.get(name)
        if cached is None:
            response = sync_pb2.SyncFlagsResponse(
                flag_configuration=self.translation(snapshot, fractional_v2)[1],
                sync_context=self._sync_context(snapshot, fractional_v2),
            )
            cached = snapshot.encoded[name] = response.SerializeToString()
        return cached

    # ------------------------------------------------------------ handlers

    async def sync_flags(self, data: bytes, context: Any) -> None:
        request = await decode_request(sync_pb2.SyncFlagsRequest, data, context)
        flag_set = await _selection(request.selector, context)
        v2 = await _hashing(request.provider_id, context)
        subscription, snapshot = await subscribe(self.fanout, flag_set, context)
        try:
            await self._write(context, self.sync_bytes(snapshot, v2))
            sent = self.translation(snapshot, v2)[1]
            while True:
                try:
                    item = await subscription.next(_WAIT)
                except SubscriptionClosed as closed:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, f"{closed}; reconnect")
                    return
                if item is None:
                    continue  # flagd sends nothing while nothing changes (keepalive pings do)
                latest = item.snapshot if isinstance(item, Change) else item
                document = self.translation(latest, v2)[1]
                if document == sent:
                    continue  # the change touched nothing served in-process (a left-out flag, a version)
                await self._write(context, self.sync_bytes(latest, v2))
                sent = document
        finally:
            subscription.cancel()

    async def _write(self, context: Any, data: bytes) -> None:
        then = "reconnect to get the whole set"
        await write_within(context, data, self.write_timeout, self.stats, SYNC_FLAGS_METHOD, then)

    async def fetch_all_flags(self, data: bytes, context: Any) -> bytes:
        request = await decode_request(sync_pb2.FetchAllFlagsRequest, data, context)
        flag_set = await _selection(request.selector, context)
        v2 = await _hashing(request.provider_id, context)
        snapshot = await read_snapshot(self.fanout, flag_set, context)
        return sync_pb2.FetchAllFlagsResponse(
            flag_configuration=self.translation(snapshot, v2)[1]
        ).SerializeToString()

    async def get_metadata(self, data: bytes, context: Any) -> bytes:
        await decode_request(sync_pb2.GetMetadataRequest, data, context)
        snapshot = await read_snapshot(self.fanout, await _selection("", context), context)
        return sync_pb2.GetMetadataResponse(metadata=self._sync_context(snapshot)).SerializeToString()


def flagd_selector(header: str | None, field: str) -> str | None:
    """The flag set a flagd request selects: the header wins over the field; flagd's
    `flagSetId=NAME` is read as our `flag-set=NAME`. Raises SelectorError."""
    text = (header if header else field).strip()
    key, equals, name = text.partition("=")
    if equals and key.strip() == FLAGD_FLAG_SET_KEY:
        text = f"{SELECTOR_KEY}={name}"
    try:
        return parse_selector(text)
    except SelectorError as error:
        raise SelectorError(f"{error} (flagd's {FLAGD_FLAG_SET_KEY}=NAME is read the same way)") from None


def fractional_v2(provider_id: str) -> bool:
    """Whether a provider_id asks for splits as fractional v2: one of its comma-separated parts is
    `fractional=v2` (the others are the caller's own). Raises ValueError for another version."""
    for part in provider_id.split(","):
        key, equals, version = part.partition("=")
        if equals and key.strip() == FRACTIONAL_KEY:
            if version.strip() not in FRACTIONAL_VERSIONS:
                raise ValueError(
                    f"provider_id: {part.strip()!r}: the fractional hashings served are "
                    + ", ".join(f"{FRACTIONAL_KEY}={v}" for v in FRACTIONAL_VERSIONS)
                    + " (without it, percentage splits are left out)"
                )
            return True
    return False


async def _hashing(provider_id: str, context: Any) -> bool:
    try:
        return fractional_v2(provider_id)
    except ValueError as error:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        raise  # abort raises; this is for the type checker


async def _selection(field: str, context: Any) -> str | None:
    header = None
    for key, value in context.invocation_metadata() or ():
        if key == SELECTOR_HEADER and isinstance(value, str):
            header = value
    try:
        return flagd_selector(header, field)
    except SelectorError as error:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        raise  # abort raises; this is for the type checker


__all__ = ["SERVICE_NAME", "SYNC_FLAGS_METHOD", "FlagdSyncService", "flagd_selector", "fractional_v2"]

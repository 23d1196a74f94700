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

Each snapshot is translated and encoded once, the bytes cached on the Snapshot (`encoded`),
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
from .selector import FLAG_SET_KEY, SelectorError, parse_selector

log = logging.getLogger(__name__)

SERVICE_NAME: Final = "flagd.sync.v1.FlagSyncService"
SYNC_FLAGS_METHOD: Final = f"{SERVICE_NAME}/SyncFlags"
SELECTOR_HEADER: Final = "flagd-selector"
CONTEXT_KEY: Final = "$flagSidecar"
FLAGD_FLAG_SET_KEY: Final = "flagSetId"
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
        self._translator = Translator(header_properties, self.static_context)
        self.write_timeout = write_timeout
        self.stats = {"write_timeouts": 0}
        # The last snapshot translated, and its translation (the bytes are cached on the snapshot).
        self._last: tuple[Snapshot, tuple[Translation, str, dict[str, Any]]] | None = None
        self._left_out: dict[str, str] = {}  # as last logged

    # ------------------------------------------------------------ encoding (once per snapshot)

    def translation(self, snapshot: Snapshot) -> tuple[Translation, str, dict[str, Any]]:
        """(translation, flag document, sync context) of a snapshot (loop thread only)."""
        cached = self._last[1] if self._last is not None and self._last[0] is snapshot else None
        if cached is None:
            translation = self._translator.translate(snapshot.flags, snapshot.segments)
            document = translation.document_text()
            context: dict[str, Any] = dict(self.static_context)
            context[CONTEXT_KEY] = {
                "flagSet": snapshot.flag_set,
                "revision": str(snapshot.revision),  # a Struct number is a double: text keeps it exact
                "leftOut": dict(translation.left_out),
            }
            self._log_left_out(snapshot, translation.left_out)
            cached = (translation, document, context)
            self._last = (snapshot, cached)
        return cached

    def _log_left_out(self, snapshot: Snapshot, left_out: Mapping[str, str]) -> None:
        """Log, once per change, the flags this change left out (each with its reason) and how many
        are left out in all: not the whole list again on every change."""
        new = {key: why for key, why in left_out.items() if self._left_out.get(key) != why}
        back = len(self._left_out.keys() - left_out.keys())
        self._left_out = dict(left_out)
        if not new and not back:
            return
        log.info(
            "flagd sync (revision %d): %d of %d flags left out for in-process providers%s%s",
            snapshot.revision,
            len(left_out),
            len(snapshot.flags),
            "; newly: " + "; ".join(f"{key}: {why}" for key, why in sorted(new.items())) if new else "",
            f"; {back} served again or removed" if back else "",
            extra={"event": "flagd_sync_left_out"},
        )

    def _sync_context(self, snapshot: Snapshot) -> Struct:
        return fill_struct(Struct(), self.translation(snapshot)[2])

    def sync_bytes(self, snapshot: Snapshot) -> bytes:
        """The SyncFlagsResponse for a snapshot."""
        cached = snapshot.encoded.get("flagd-sync")
        if cached is None:
            response = sync_pb2.SyncFlagsResponse(
                flag_configuration=self.translation(snapshot)[1], sync_context=self._sync_context(snapshot)
            )
            cached = snapshot.encoded["flagd-sync"] = response.SerializeToString()
        return cached

    # ------------------------------------------------------------ handlers

    async def sync_flags(self, data: bytes, context: Any) -> None:
        request = await decode_request(sync_pb2.SyncFlagsRequest, data, context)
        flag_set = await _selection(request.selector, context)
        subscription, snapshot = await subscribe(self.fanout, flag_set, context)
        try:
            await self._write(context, self.sync_bytes(snapshot))
            sent = self.translation(snapshot)[1]
            while True:
                try:
                    item = await subscription.next(_WAIT)
                except SubscriptionClosed as closed:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, f"{closed}; reconnect")
                    return
                if item is None:
                    continue  # flagd sends nothing while nothing changes (keepalive pings do)
                latest = item.snapshot if isinstance(item, Change) else item
                document = self.translation(latest)[1]
                if document == sent:
                    continue  # the change touched nothing served in-process (a left-out flag, a version)
                await self._write(context, self.sync_bytes(latest))
                sent = document
        finally:
            subscription.cancel()

    async def _write(self, context: Any, data: bytes) -> None:
        then = "reconnect to get the whole set"
        await write_within(context, data, self.write_timeout, self.stats, SYNC_FLAGS_METHOD, then)

    async def fetch_all_flags(self, data: bytes, context: Any) -> bytes:
        request = await decode_request(sync_pb2.FetchAllFlagsRequest, data, context)
        snapshot = await read_snapshot(self.fanout, await _selection(request.selector, context), context)
        return sync_pb2.FetchAllFlagsResponse(
            flag_configuration=self.translation(snapshot)[1]
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
        text = f"{FLAG_SET_KEY}={name}"
    try:
        return parse_selector(text)
    except SelectorError as error:
        raise SelectorError(f"{error} (flagd's {FLAGD_FLAG_SET_KEY}=NAME is read the same way)") from None


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


__all__ = ["SERVICE_NAME", "SYNC_FLAGS_METHOD", "FlagdSyncService", "flagd_selector"]

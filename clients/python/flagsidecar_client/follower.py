"""Follows flagsidecar.v1.SyncService.Watch on a thread of its own and hands over compiled sets.

Each message is applied to the held set (sidecar.syncset.HeldSet: full sets replace, deltas add,
change and remove); each change is compiled once (compile_snapshot) and handed to `apply`, which
swaps it in. A set that does not compile is logged with every problem and skipped: the last good
one keeps serving. A lost stream is retried with exponential backoff and full jitter and resumed
with since_revision, so the control plane sends only what changed meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import grpc

from flagsidecar.v1 import sync_pb2, sync_pb2_grpc
from sidecar.engine import FlagSetError
from sidecar.syncset import HeldSet, OutOfStep, backoff_delays, described

from .snapshot import Snapshot, compile_snapshot

log = logging.getLogger(__name__)

__all__ = ["Follower"]


class Follower:
    def __init__(
        self,
        channel: grpc.Channel,
        selector: str,
        origin: str,
        apply: Callable[[Snapshot], None],
        backoff: float = 0.2,
        backoff_max: float = 10.0,
    ) -> None:
        self._stub = sync_pb2_grpc.SyncServiceStub(channel)
        self._selector = selector
        self._origin = origin
        self._apply = apply
        self._delay = backoff_delays(backoff, backoff_max)
        self._held = HeldSet()
        self._call: Any = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = False
        self.last_error = ""
        self.rejected_sets = 0  # sets from the stream that did not compile (the last good one stayed)

    @property
    def revision(self) -> int:
        return self._held.revision

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="flag-sidecar-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stopped.set()
        call = self._call
        if call is not None:
            call.cancel()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        attempt = 0
        while not self._stopped.is_set():
            try:
                if self._follow():
                    attempt = 0  # the stream brought something: the next outage starts afresh
            except grpc.RpcError as error:
                if self._stopped.is_set():
                    return
                self._lost(described(error))
            except OutOfStep as error:
                log.warning("%s: %s; asking for the whole set", self._origin, error)
                self._held.revision = 0
                continue
            except Exception:  # the follower must outlive anything
                log.exception("%s: the sync stream failed", self._origin)
            if self._stopped.wait(self._delay(attempt)):
                return
            attempt += 1

    def _follow(self) -> bool:
        request = sync_pb2.WatchRequest(selector=self._selector, since_revision=self._held.revision)
        call = self._stub.Watch(request)
        self._call = call
        received = False
        try:
            if self._stopped.is_set():
                call.cancel()
            for response in call:
                received = True
                if not self.connected:
                    self.connected = True
                    log.info("%s: following the sync stream from revision %d", self._origin, self.revision)
                if response.WhichOneof("update") == "full_set" and response.message:
                    log.info("%s: %s", self._origin, response.message)
                if self._held.take(response):
                    self._compile()
        finally:
            self._call = None
        return received

    def _compile(self) -> None:
        held = self._held
        try:
            snapshot = compile_snapshot(held.message(), held.revision, held.flag_set, self._origin)
        except FlagSetError as error:
            self.rejected_sets += 1
            log.error(
                "%s: revision %d rejected, the last good set keeps serving: %s",
                self._origin,
                held.revision,
                error,
            )
            return
        self._apply(snapshot)

    def _lost(self, why: str) -> None:
        self.last_error = why
        if self.connected:
            self.connected = False
            log.warning(
                "%s: the sync stream is lost (%s); serving the last set, reconnecting", self._origin, why
            )

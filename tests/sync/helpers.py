"""A control plane in this process (a real store on a real flag file, the real sync listener) and
Watch clients for it, for the tests of tests/sync."""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from flagsidecar.v1 import sync_pb2, sync_pb2_grpc
from sidecar.server.streams import StreamLimits
from sidecar.server.sync import SyncServer
from sidecar.sources import FileSource
from sidecar.store import FlagStore
from tests.conftest import SAMPLE_FLAGS, write_flag_file


@dataclass
class ControlPlane:
    store: FlagStore
    server: SyncServer
    path: Path
    document: dict[str, Any]

    @property
    def address(self) -> str:
        return self.server.addresses[0]

    def change(self, mutate: Callable[[dict[str, Any]], None]) -> None:
        """Edit the flag file and apply it now (not waiting for the file watcher)."""
        mutate(self.document)
        write_flag_file(self.path, self.document)
        assert self.store.reload()

    def stub(self) -> sync_pb2_grpc.SyncServiceStub:
        return sync_pb2_grpc.SyncServiceStub(grpc.insecure_channel(self.address))

    def revision(self) -> int:
        return self.stub().Fetch(sync_pb2.FetchRequest(), timeout=5).flag_set.revision


def start_control_plane(
    tmp_path: Path,
    document: dict[str, Any] | None = None,
    idle_timeout: float = 300.0,
    **options: Any,
) -> ControlPlane:
    document = copy.deepcopy(SAMPLE_FLAGS if document is None else document)
    path = write_flag_file(tmp_path / "flags.yaml", document)
    store = FlagStore(FileSource(path))
    store.start()
    limits = StreamLimits(4096, 4096, idle_timeout, max_streams_option="--sync-max-streams")
    server = SyncServer(store, ["127.0.0.1:0"], stream_limits=limits, **options)
    server.start()
    return ControlPlane(store, server, path, document)


def stop_control_plane(plane: ControlPlane) -> None:
    plane.server.stop()
    plane.store.close()


class Watcher:
    """One Watch call, read on a thread into a queue (a client that keeps up)."""

    def __init__(self, address: str, **request: Any) -> None:
        self.channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        stub = sync_pb2_grpc.SyncServiceStub(self.channel)
        self.call = stub.Watch(sync_pb2.WatchRequest(**request))
        self.received: queue.Queue[sync_pb2.WatchResponse | grpc.RpcError] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for response in self.call:
                self.received.put(response)
        except grpc.RpcError as error:
            self.received.put(error)

    def next(self, timeout: float = 5.0) -> sync_pb2.WatchResponse:
        item = self.received.get(timeout=timeout)
        assert not isinstance(item, grpc.RpcError), f"the stream ended: {item}"
        return item

    def until_revision(self, revision: int, timeout: float = 5.0) -> list[sync_pb2.WatchResponse]:
        seen = []
        while True:
            response = self.next(timeout)
            seen.append(response)
            if response.revision >= revision:
                return seen

    def close(self) -> None:
        self.call.cancel()
        self.channel.close()
        self._thread.join(5)


def messages(call: Iterator[sync_pb2.WatchResponse], count: int) -> list[sync_pb2.WatchResponse]:
    return [next(call) for _ in range(count)]

"""A gRPC server with the flagd services over a real FlagStore and flag file, on a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar.engine import Evaluation
from sidecar.server import flagd
from sidecar.sources import FileSource
from sidecar.store import FlagStore
from tests.conftest import write_flag_file

from . import flags as test_flags
from .go_client import build_go_client
from .java_client import JavaUnavailable
from .java_client import command as java_client_command


@dataclass
class Recorded:
    evaluation: Evaluation
    user_id: str
    context: dict[str, Any]


class RecordingEvents:
    """Stands in for the EventPipeline: keeps what the servicers hand it."""

    def __init__(self, recorded: list[Recorded]) -> None:
        self.recorded = recorded

    def add_evaluation(self, evaluation, user_id, context=None) -> None:
        self.recorded.append(Recorded(evaluation, user_id, dict(context or {})))

    def add_evaluations(self, evaluations, user_id, context=None) -> None:
        for evaluation in evaluations:
            self.add_evaluation(evaluation, user_id, context)


@dataclass
class FlagdServer:
    server: grpc.Server
    store: FlagStore
    events: flagd.EventBroadcaster
    flag_file: Path
    port: int
    channel: grpc.Channel
    recorded: list[Recorded] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def rewrite_flags(self, document: dict[str, Any]) -> None:
        write_flag_file(self.flag_file, document)


@pytest.fixture
def start_flagd(tmp_path: Path) -> Iterator[Callable[..., FlagdServer]]:
    started: list[FlagdServer] = []

    def start(
        document: dict[str, Any] | None = None,
        keepalive_interval: float = flagd.DEFAULT_KEEPALIVE_INTERVAL,
        max_streams: int = 4,
        static_context: dict[str, str] | None = None,
        header_to_context: dict[str, str] | None = None,
        start_store: bool = True,
    ) -> FlagdServer:
        flag_file = write_flag_file(tmp_path / f"flags-{len(started)}.yaml", document or test_flags.flags())
        store = FlagStore(FileSource(flag_file, poll_interval=0.1))
        if start_store:
            store.start()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4 + max_streams))
        recorded: list[Recorded] = []
        static_context = test_flags.STATIC_CONTEXT if static_context is None else static_context
        header_to_context = test_flags.HEADER_TO_CONTEXT if header_to_context is None else header_to_context
        settings = flagd.FlagdSettings.from_options(
            [f"{key}={value}" for key, value in static_context.items()],
            [f"{header}={key}" for header, key in header_to_context.items()],
            keepalive_interval=keepalive_interval,
            max_event_streams=max_streams,
        )
        services = flagd.FlagdServices(store, settings, events=RecordingEvents(recorded))
        services.add_to_server(server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        running = FlagdServer(
            server,
            store,
            services.events,
            flag_file,
            port,
            grpc.insecure_channel(f"127.0.0.1:{port}"),
            recorded,
        )
        started.append(running)
        return running

    yield start
    for running in started:
        running.events.shutdown(timeout=1)
        running.channel.close()
        running.server.stop(0).wait()
        running.store.close()


@pytest.fixture
def flagd_server(start_flagd: Callable[..., FlagdServer]) -> FlagdServer:
    return start_flagd()


@pytest.fixture(scope="session")
def java_client() -> list[str]:
    """The Java flagd client's command (java_client.py), built once per session."""
    try:
        return java_client_command()
    except JavaUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def go_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go flagd client's binary (tests/flagd/go), built once per session."""
    return build_go_client(tmp_path_factory.mktemp("flagd-go"))

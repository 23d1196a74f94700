"""Shared fixtures: a sample flag document, flag files, and a real sidecar server on a free port."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from flagsidecar.v1 import evaluation_pb2_grpc
from sidecar.server.app import SERVICE_REGISTRARS, Registrar, SidecarServer
from sidecar.sources import FileSource, FlagDatabase, open_database
from sidecar.store import FlagStore

# Covers every reason: STATIC, TARGETING_MATCH, SPLIT, DEFAULT, DISABLED and ERROR (a missing default).
SAMPLE_FLAGS: dict[str, Any] = {
    "flags": [
        {
            "key": "new-checkout",
            "enabled": True,
            "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
            "defaultVariantWhenOn": "off",
            "defaultVariantWhenOff": "off",
            "rules": [
                {
                    "id": "staff",
                    "constraints": [
                        {"property": "email", "operation": "ENDS_WITH", "values": ["@example.com"]}
                    ],
                    "distributions": [{"variant": "on", "percentage": 100}],
                },
                {
                    "id": "beta-rollout",
                    "constraints": [{"operation": "IS_IN_SEGMENT", "values": ["beta"]}],
                    "bucketBy": "accountId",
                    "distributions": [
                        {"variant": "on", "percentage": 25},
                        {"variant": "off", "percentage": 75},
                    ],
                },
            ],
        },
        {
            "key": "banner-color",
            "enabled": True,
            "variants": [{"key": "blue", "value": "#1f77b4"}, {"key": "red", "value": "#d62728"}],
            "defaultVariantWhenOn": "blue",
            "defaultVariantWhenOff": "blue",
        },
        {
            "key": "maintenance-mode",
            "enabled": False,
            "variants": [{"key": "on", "value": True}, {"key": "off", "value": False}],
            "defaultVariantWhenOn": "on",
            "defaultVariantWhenOff": "off",
        },
        {
            "key": "search-config",
            "enabled": True,
            "variants": [
                {"key": "classic", "value": {"engine": "classic", "maxResults": 20, "tags": ["a", None]}},
                {"key": "semantic", "value": {"engine": "vector", "maxResults": 50, "tags": []}},
            ],
            "defaultVariantWhenOn": "classic",
            "defaultVariantWhenOff": "classic",
            "rules": [
                {
                    "id": "internal-network",
                    "constraints": [
                        {"property": "ip", "operation": "IS_IN_NETWORK", "values": ["10.0.0.0/8"]}
                    ],
                    "distributions": [{"variant": "semantic", "percentage": 100}],
                }
            ],
        },
        {
            # Enabled with rules but no defaultVariantWhenOn: a user no rule matches gets an ERROR.
            "key": "upload-limit",
            "enabled": True,
            "variants": [{"key": "small", "value": 10}, {"key": "large", "value": 100}],
            "rules": [
                {
                    "id": "paying",
                    "constraints": [{"property": "plan", "operation": "ONE_OF", "values": ["pro"]}],
                    "distributions": [{"variant": "large", "percentage": 100}],
                }
            ],
        },
    ],
    "segments": [
        {
            "key": "beta",
            "name": "Beta testers",
            "rules": [{"constraints": [{"property": "plan", "operation": "ONE_OF", "values": ["pro"]}]}],
        }
    ],
}


def write_flag_file(path: Path, document: dict[str, Any]) -> Path:
    """Write a flag document as YAML, atomically (as an editor or a deploy tool replaces a file)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(yaml.safe_dump(document, sort_keys=False))
    temporary.replace(path)
    return path


def eventually(condition: Callable[[], Any], timeout: float = 3.0, interval: float = 0.02) -> Any:
    """Poll until `condition()` is truthy and return it; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s (last result: {result!r})")
        time.sleep(interval)


@pytest.fixture
def databases() -> Iterator[Callable[[str], FlagDatabase]]:
    """open_database, each database closed when the test ends: a pool left to the collector is
    closed by its finalizer on whatever thread runs it (psycopg_pool warns: "cannot join current
    thread")."""
    opened: list[FlagDatabase] = []

    def opening(uri: str) -> FlagDatabase:
        opened.append(open_database(uri))
        return opened[-1]

    yield opening
    for database in opened:
        database.close()


@pytest.fixture
def sample_flags() -> dict[str, Any]:
    """A fresh copy of SAMPLE_FLAGS, safe to modify."""
    return copy.deepcopy(SAMPLE_FLAGS)


@pytest.fixture
def sample_flag_file(tmp_path: Path) -> Path:
    return write_flag_file(tmp_path / "flags.yaml", SAMPLE_FLAGS)


@dataclass
class RunningSidecar:
    """A real server on 127.0.0.1:<free port>, its store, its flag file, and a channel to it."""

    server: SidecarServer
    store: FlagStore
    flag_file: Path
    channel: grpc.Channel

    @property
    def address(self) -> str:
        return self.server.address

    @property
    def evaluation_stub(self) -> evaluation_pb2_grpc.EvaluationServiceStub:
        return evaluation_pb2_grpc.EvaluationServiceStub(self.channel)

    def rewrite_flags(self, document: dict[str, Any]) -> None:
        write_flag_file(self.flag_file, document)


@pytest.fixture
def start_sidecar(tmp_path: Path) -> Iterator[Callable[..., RunningSidecar]]:
    """Start servers (stopped after the test): start_sidecar(document=..., registrars=...)."""
    started: list[RunningSidecar] = []

    def start(
        document: dict[str, Any] = SAMPLE_FLAGS, registrars: Sequence[Registrar] = SERVICE_REGISTRARS
    ) -> RunningSidecar:
        flag_file = write_flag_file(tmp_path / f"flags-{len(started)}.yaml", document)
        store = FlagStore(FileSource(flag_file, poll_interval=0.2))
        store.start()
        server = SidecarServer(store, "127.0.0.1:0", registrars=registrars)
        server.start()
        sidecar = RunningSidecar(server, store, flag_file, grpc.insecure_channel(server.address))
        started.append(sidecar)
        return sidecar

    yield start
    for sidecar in started:
        sidecar.channel.close()
        sidecar.server.stop(grace=0)
        sidecar.store.close()


@pytest.fixture
def sidecar(start_sidecar: Callable[..., RunningSidecar]) -> RunningSidecar:
    """A running sidecar serving SAMPLE_FLAGS."""
    return start_sidecar()


@pytest.fixture
def serve(sample_flag_file: Path) -> Iterator[Callable[..., Any]]:
    """Start `flag-sidecar serve` processes on the sample flags (extra options as arguments);
    all are killed at the end of the test."""
    from tests.serve_process import ServeProcess  # it imports this module (eventually)

    started: list[ServeProcess] = []

    def start(*extra: str) -> ServeProcess:
        started.append(ServeProcess(sample_flag_file, *extra))
        return started[-1]

    yield start
    for process in started:
        process.stop()

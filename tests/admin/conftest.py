"""A real sidecar on a real SQLite file with the admin API on, and a real gRPC client of both."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import status_pb2

from flagsidecar.v1 import admin_pb2, admin_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc
from tests.conftest import eventually
from tests.serve_process import ServeProcess

TOKEN = "s3cret-admin-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)


def value(data: Any) -> struct_pb2.Value:
    message = struct_pb2.Value()
    if isinstance(data, bool):
        message.bool_value = data
    elif isinstance(data, int | float):
        message.number_value = data
    else:
        message.string_value = data
    return message


def new_flag(key: str = "new-checkout", **fields: Any) -> admin_pb2.NewFlag:
    """An enabled on/off flag serving `off` unless a rule says otherwise."""
    return admin_pb2.NewFlag(
        key=key,
        enabled=True,
        variants=[
            admin_pb2.NewVariant(key="on", value=value(True)),
            admin_pb2.NewVariant(key="off", value=value(False)),
        ],
        default_variant_when_on="off",
        default_variant_when_off="off",
        **fields,
    )


def staff_rule(rule_id: str = "staff") -> admin_pb2.NewFlagRule:
    return admin_pb2.NewFlagRule(
        id=rule_id,
        constraints=[
            admin_pb2.NewConstraint(property="email", operation=13, values=[value("@example.com")])
        ],  # ENDS_WITH
        distributions=[admin_pb2.NewDistribution(variant="on", percentage=100)],
    )


def details(error: grpc.RpcError, message_type: type) -> Any:
    """The google.rpc detail of `message_type` in a failed call's trailing metadata, or None."""
    for key, raw in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for packed in status_pb2.Status.FromString(raw).details:
                if packed.Is(message_type.DESCRIPTOR):
                    detail = message_type()
                    packed.Unpack(detail)
                    return detail
    return None


@dataclass
class AdminSidecar:
    process: ServeProcess
    database: Path
    channels: list[grpc.Channel] = field(default_factory=list)

    def _channel(self, address: str) -> grpc.Channel:
        channel = grpc.insecure_channel(address)
        self.channels.append(channel)
        return channel

    @property
    def admin_address(self) -> str:
        def bound() -> str | None:
            if self.process.process.poll() is not None:
                pytest.fail(f"serve exited early:\n{self.process.log}")
            match = re.search(r"admin API on (\S+)", self.process.log)
            return match.group(1) if match else None

        return eventually(bound, timeout=15)

    def admin(self) -> admin_pb2_grpc.FlagAdminServiceStub:
        return admin_pb2_grpc.FlagAdminServiceStub(self._channel(self.admin_address))

    def evaluation(self) -> evaluation_pb2_grpc.EvaluationServiceStub:
        return evaluation_pb2_grpc.EvaluationServiceStub(self._channel(self.process.address()))

    def close(self) -> None:
        for channel in self.channels:
            channel.close()
        self.process.stop()


def evaluate(stub: evaluation_pb2_grpc.EvaluationServiceStub, flag_key: str, **context: Any) -> Any:
    """The flag's evaluation for user u1 with `context`; None while the flag is unknown (NOT_FOUND)."""
    user = evaluation_pb2.User(id="u1")
    user.context.update(context)
    try:
        return stub.Evaluate(evaluation_pb2.EvaluateRequest(flag_key=flag_key, user=user)).evaluation
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "flags.db"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "admin-tokens"
    path.write_text(f"# name token\nalice {TOKEN}\n")
    return path


@pytest.fixture
def sidecar(database: Path, token_file: Path) -> Iterator[Callable[..., AdminSidecar]]:
    """Start sidecars serving `database` (the admin API on unless admin=False)."""
    started: list[AdminSidecar] = []

    def start(*extra: str, admin: bool = True) -> AdminSidecar:
        options = ["--source", f"sqlite://{database}", *extra]
        if admin:
            options += ["--admin-listen", "127.0.0.1:0", "--admin-token-file", str(token_file)]
        started.append(AdminSidecar(ServeProcess(None, *options), database))
        return started[-1]

    yield start
    for each in started:
        each.close()

"""The admin listener with mutual TLS (the listeners' own --tls-* files): a client certificate
identifies its caller, and that identity is the history's "who"; in process, on a real port."""

from __future__ import annotations

import grpc
import pytest

from flagsidecar.v1 import admin_pb2, admin_pb2_grpc
from sidecar.server.admin_access import AdminAccess
from sidecar.server.admin_server import AdminServer
from sidecar.server.listeners import TlsFiles
from sidecar.sources import open_database
from sidecar.store.admin import FlagAdmin
from tests.admin.conftest import TOKEN, new_flag
from tests.ops.certs import make_certificates


@pytest.fixture
def certs(tmp_path):
    (tmp_path / "certs").mkdir()
    return make_certificates(tmp_path / "certs")


@pytest.fixture
def admin_server(tmp_path, certs):
    server = AdminServer(
        FlagAdmin(open_database(f"sqlite://{tmp_path}/flags.db")),
        "127.0.0.1:0",
        AdminAccess({TOKEN: "token:ci"}, client_certificates=True),
        tls=TlsFiles(certs.server.cert, certs.server.key, client_ca=certs.ca.cert),
    )
    server.start()
    yield server
    server.stop()


def _stub(address: str, credentials: grpc.ChannelCredentials) -> admin_pb2_grpc.FlagAdminServiceStub:
    return admin_pb2_grpc.FlagAdminServiceStub(grpc.secure_channel(address, credentials))


def test_the_client_certificate_is_the_identity_in_the_history(admin_server, certs):
    with_cert = grpc.ssl_channel_credentials(
        certs.ca.cert_bytes, certs.client.key_bytes, certs.client.cert_bytes
    )
    stub = _stub(admin_server.address, with_cert)
    created = stub.CreateFlag(admin_pb2.CreateFlagRequest(flag=new_flag()), timeout=10).flag
    assert created.updated_by == "cert:example-app"
    # A token, when presented, is what identifies the caller (and it must be a good one).
    updated = stub.UpdateFlag(
        admin_pb2.UpdateFlagRequest(
            key="new-checkout", expected_version=1, flag=admin_pb2.UpdateFlag(description="x")
        ),
        metadata=(("authorization", f"Bearer {TOKEN}"),),
        timeout=10,
    ).flag
    assert updated.updated_by == "token:ci"
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetFlag(
            admin_pb2.GetFlagRequest(key="new-checkout"),
            metadata=(("authorization", "Bearer no"),),
            timeout=10,
        )
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    history = stub.ListFlagHistory(admin_pb2.ListFlagHistoryRequest(key="new-checkout"), timeout=10).entries
    assert [entry.actor for entry in history] == ["token:ci", "cert:example-app"]


def test_without_a_client_certificate_the_handshake_is_refused(admin_server, certs):
    stub = _stub(admin_server.address, grpc.ssl_channel_credentials(certs.ca.cert_bytes))
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetFlag(admin_pb2.GetFlagRequest(key="x"), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE

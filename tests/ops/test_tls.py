"""TLS and mutual TLS on the TCP listener, with certificates made by the test."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from flagsidecar.v1 import evaluation_pb2, evaluation_pb2_grpc
from sidecar.server.app import SidecarServer
from sidecar.server.listeners import TlsFiles
from sidecar.store import FlagStore

from .certs import Certificates, make_certificates

REQUEST = evaluation_pb2.EvaluateRequest(flag_key="banner-color")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def start_server(store: FlagStore) -> Iterator[Callable[..., SidecarServer]]:
    servers: list[SidecarServer] = []

    def start(tls: TlsFiles | None, listen: tuple[str, ...] = ("127.0.0.1:0",)) -> SidecarServer:
        server = SidecarServer(store, listen, tls=tls)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(0)


def evaluate(target: str, credentials: grpc.ChannelCredentials | None) -> str:
    """The variant answered, or the status code name of the failure."""
    channel = (
        grpc.insecure_channel(target) if credentials is None else grpc.secure_channel(target, credentials)
    )
    with channel:
        try:
            return (
                evaluation_pb2_grpc.EvaluationServiceStub(channel)
                .Evaluate(REQUEST, timeout=5)
                .evaluation.variant
            )
        except grpc.RpcError as error:
            return error.code().name


def test_tls(certs: Certificates, start_server) -> None:
    server = start_server(TlsFiles(certs.server.cert, certs.server.key))
    target = f"127.0.0.1:{server.port}"
    assert evaluate(target, grpc.ssl_channel_credentials(certs.ca.cert_bytes)) == "blue"
    assert evaluate(f"localhost:{server.port}", grpc.ssl_channel_credentials(certs.ca.cert_bytes)) == "blue"
    # Plaintext against a TLS port, and a client that does not trust the server's CA: refused.
    assert evaluate(target, None) == "UNAVAILABLE"
    assert evaluate(target, grpc.ssl_channel_credentials(certs.other_ca.cert_bytes)) == "UNAVAILABLE"


def test_mutual_tls(certs: Certificates, start_server) -> None:
    server = start_server(TlsFiles(certs.server.cert, certs.server.key, client_ca=certs.ca.cert))
    target = f"127.0.0.1:{server.port}"
    with_client_cert = grpc.ssl_channel_credentials(
        certs.ca.cert_bytes, certs.client.key_bytes, certs.client.cert_bytes
    )
    assert evaluate(target, with_client_cert) == "blue"
    # No client certificate, or one the client CA did not sign: refused in the handshake.
    assert evaluate(target, grpc.ssl_channel_credentials(certs.ca.cert_bytes)) == "UNAVAILABLE"
    self_signed = grpc.ssl_channel_credentials(
        certs.ca.cert_bytes, certs.other_ca.key_bytes, certs.other_ca.cert_bytes
    )
    assert evaluate(target, self_signed) == "UNAVAILABLE"
    assert evaluate(target, None) == "UNAVAILABLE"


def test_unix_socket_next_to_a_tls_port_is_plaintext(
    certs: Certificates, start_server, tmp_path: Path
) -> None:
    socket_address = f"unix://{tmp_path}/sidecar.sock"
    server = start_server(TlsFiles(certs.server.cert, certs.server.key), ("127.0.0.1:0", socket_address))
    assert server.addresses == (f"127.0.0.1:{server.port}", socket_address)
    assert evaluate(socket_address, None) == "blue"
    assert evaluate(f"127.0.0.1:{server.port}", None) == "UNAVAILABLE"


def test_unreadable_or_wrong_files_fail_at_start(
    certs: Certificates, store: FlagStore, tmp_path: Path
) -> None:
    missing = SidecarServer(store, "127.0.0.1:0", tls=TlsFiles(certs.server.cert, tmp_path / "absent.key"))
    with pytest.raises(OSError, match=r"cannot read TLS key .*absent\.key"):
        missing.start()
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    wrong = SidecarServer(store, "127.0.0.1:0", tls=TlsFiles(not_pem, certs.server.key))
    with pytest.raises(OSError, match=r"TLS certificate .*not\.pem is not a PEM file"):
        wrong.start()


def test_connections_that_never_start_a_handshake_are_closed(certs: Certificates, store: FlagStore) -> None:
    server = SidecarServer(
        store, "127.0.0.1:0", tls=TlsFiles(certs.server.cert, certs.server.key), handshake_timeout=0.5
    )
    server.start()
    silent = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(50)]
    try:
        started = time.monotonic()
        for sock in silent:  # never a ClientHello: only the handshake timeout ends these
            sock.settimeout(max(0.1, 10 - (time.monotonic() - started)))
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1024) == b""
        # Generous: grpcio's own default would have held them for 120 s.
        assert time.monotonic() - started < 10
        assert (
            evaluate(f"127.0.0.1:{server.port}", grpc.ssl_channel_credentials(certs.ca.cert_bytes)) == "blue"
        )
    finally:
        for sock in silent:
            sock.close()
        server.stop(0)

"""Binding the gRPC server to its addresses: TCP (optionally TLS or mutual TLS) and Unix sockets.

TLS applies to TCP listeners only. A Unix socket is reachable only through the file system, so
its permissions (0660: owner and group; share a group, e.g. a pod's fsGroup, with the client)
are its access control, and encrypting a local pipe would only cost CPU.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

import grpc

from sidecar.options import UNIX_PREFIX, unix_socket_path

logger = logging.getLogger(__name__)

UNIX_SOCKET_MODE = 0o660


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the server's chain and key, and optionally a CA that client certificates need."""

    cert: Path
    key: Path
    client_ca: Path | None = None


def server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    """Read the PEM files once (at start). Raises OSError naming the file that cannot be read."""

    def read(path: Path, what: str) -> bytes:
        try:
            data = path.read_bytes()
        except OSError as error:
            raise OSError(f"cannot read {what} {path}: {error.strerror or error}") from None
        if b"-----BEGIN" not in data:
            raise OSError(f"{what} {path} is not a PEM file")
        return data

    cert = read(tls.cert, "TLS certificate")
    key = read(tls.key, "TLS key")
    client_ca = read(tls.client_ca, "client CA bundle") if tls.client_ca is not None else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


@dataclass(frozen=True)
class BoundAddress:
    requested: str
    address: str  # with the real port when 0 was asked for
    port: int  # 0 for a Unix socket
    tls: bool

    @property
    def unix_path(self) -> str | None:
        return unix_socket_path(self.address) if self.address.startswith(UNIX_PREFIX) else None


def bind(
    server: grpc.Server | grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None
) -> BoundAddress:
    """Add one listening address to a not yet started server (sync or grpc.aio). Raises OSError
    if it is unusable."""
    if address.startswith(UNIX_PREFIX):
        path = unix_socket_path(address)
        _refuse_live_socket(path)
        port = _add_port(server, address, None)
        with contextlib.suppress(OSError):  # the socket exists once the port is added
            os.chmod(path, UNIX_SOCKET_MODE)
        return BoundAddress(address, address, 0, tls=False)
    _check_bindable(address)
    port = _add_port(server, address, credentials)
    host = address.rpartition(":")[0]
    return BoundAddress(address, f"{host}:{port}", port, tls=credentials is not None)


def _check_bindable(address: str) -> None:
    """Raise OSError naming `address` if no address it resolves to can be bound, before grpcio
    tries: grpcio would also write its own plain-text error line to stderr, and its exception
    says only "Failed to bind". SO_REUSEADDR as grpcio sets it, so a port in TIME_WAIT is fine.
    A port taken between this check and grpcio's bind still fails, in grpcio's words."""
    host, _, port_text = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port_text.isdigit() or int(port_text) == 0:
        return  # grpcio's own error for a malformed address; any free port for 0
    try:
        candidates = socket.getaddrinfo(
            host or None, int(port_text), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as error:
        raise OSError(f"cannot listen on {address}: cannot resolve {host!r}: {error.strerror}") from None
    # The first failure as text: the exception itself would hold this frame in a reference cycle
    # (and with it the server being bound) until the garbage collector came by.
    problem: str | None = None
    for family, kind, protocol, _name, sockaddr in candidates:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
            except OSError as error:
                problem = problem or error.strerror or str(error)
            else:
                return  # grpcio serves on the addresses it can bind, so one is enough
    if problem is not None:
        raise OSError(f"cannot listen on {address}: {problem}")


def _add_port(
    server: grpc.Server | grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None
) -> int:
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as error:  # grpcio raises RuntimeError when it cannot bind
        raise OSError(f"cannot listen on {address}: {str(error).split(';')[0]}") from None
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return port


def _refuse_live_socket(path: str) -> None:
    """gRPC unlinks an existing socket file before binding, which would silently steal the socket
    of a running sidecar; a stale file (nobody accepting) is fine to replace."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise OSError(f"cannot listen on unix:{path}: {error.strerror}") from None
    if not stat.S_ISSOCK(mode):
        raise OSError(f"cannot listen on unix:{path}: the path exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:
        logger.info("replacing stale socket file %s", path)
        return
    finally:
        probe.close()
    raise OSError(f"cannot listen on unix:{path}: another process is accepting calls on it")


def remove_socket_files(bound: list[BoundAddress]) -> None:
    """After stop: gRPC usually removes its socket files; make sure none is left behind."""
    for entry in bound:
        path = entry.unix_path
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(os.stat(path).st_mode):
                    os.unlink(path)

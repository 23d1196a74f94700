"""The management listener over real HTTP on 127.0.0.1:0."""

from __future__ import annotations

import http.client
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sidecar.server.management import ManagementServer, split_host_port
from sidecar.server.metrics import SidecarMetrics


@dataclass
class StubStore:
    ready: bool = False
    stats: dict[str, int] = field(
        default_factory=lambda: {"reloads": 0, "rejected_reloads": 0, "cache_hits": 0, "cache_misses": 0}
    )


def get(port: int, path: str, method: str = "GET") -> tuple[int, str, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, response.read().decode(), dict(response.getheaders())
    finally:
        connection.close()


@pytest.fixture
def store() -> StubStore:
    return StubStore()


@pytest.fixture
def management(store: StubStore) -> Iterator[ManagementServer]:
    metrics = SidecarMetrics(store)
    server = ManagementServer("127.0.0.1:0", store=store, registry=metrics.registry)
    server.start()
    yield server
    server.stop()


def test_port_zero_binds_a_free_port(management: ManagementServer) -> None:
    assert management.port > 0
    assert management.address == f"127.0.0.1:{management.port}"


def test_healthz_is_200_whatever_the_flags_and_during_shutdown(
    management: ManagementServer, store: StubStore
) -> None:
    assert get(management.port, "/healthz")[0] == 200  # nothing loaded yet: still alive
    store.ready = True
    management.mark_serving()
    management.begin_shutdown()
    status, body, _ = get(management.port, "/healthz")
    assert (status, body) == (200, "ok\n")


def test_readyz_follows_loaded_serving_and_shutdown(management: ManagementServer, store: StubStore) -> None:
    status, body, _ = get(management.port, "/readyz")
    assert (status, body) == (503, "not ready: no flag set loaded yet\n")
    store.ready = True
    status, body, _ = get(management.port, "/readyz")
    assert (status, body) == (503, "not ready: gRPC server not accepting calls yet\n")
    management.mark_serving()
    assert get(management.port, "/readyz")[:2] == (200, "ready\n")
    management.begin_shutdown()
    assert get(management.port, "/readyz")[:2] == (503, "not ready: shutting down\n")


def test_head_and_unknown_paths(management: ManagementServer) -> None:
    status, body, headers = get(management.port, "/healthz", method="HEAD")
    assert (status, body, headers["Content-Length"]) == (200, "", "3")
    assert get(management.port, "/nope")[0] == 404
    assert get(management.port, "/readyz?verbose=1")[0] == 503  # query strings are ignored


def test_metrics_endpoint_serves_the_registry(management: ManagementServer, store: StubStore) -> None:
    store.stats["reloads"] = 3
    status, body, headers = get(management.port, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(body)}
    assert families["flag_sidecar_flag_set_reloads"].samples[0].value == 3
    assert "process_resident_memory_bytes" in families


def test_two_servers_in_one_process_have_separate_registries(store: StubStore) -> None:
    registries = [SidecarMetrics(store).registry for _ in range(2)]
    servers = [ManagementServer("127.0.0.1:0", store=store, registry=registry) for registry in registries]
    try:
        ports = [server.start() for server in servers]
        assert len(set(ports)) == 2
        assert all(get(port, "/metrics")[0] == 200 for port in ports)
    finally:
        for server in servers:
            server.stop()


def test_a_busy_port_is_a_clear_error(management: ManagementServer, store: StubStore) -> None:
    other = ManagementServer(f"127.0.0.1:{management.port}", store=store)
    with pytest.raises(OSError, match=r"cannot listen on 127\.0\.0\.1:\d+ \(management\)"):
        other.start()


def test_ipv6_loopback(store: StubStore) -> None:
    server = ManagementServer("[::1]:0", store=store)
    try:
        server.start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        connection = http.client.HTTPConnection("::1", server.port, timeout=5)
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("address", "expected"),
    [("127.0.0.1:8014", ("127.0.0.1", 8014)), ("[::1]:0", ("::1", 0)), ("0.0.0.0:1", ("0.0.0.0", 1))],
)
def test_split_host_port(address: str, expected: tuple[str, int]) -> None:
    assert split_host_port(address) == expected


@pytest.mark.parametrize("address", ["8014", "host:", "host:99999", "host:http"])
def test_split_host_port_rejects(address: str) -> None:
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        split_host_port(address)


# ---------------------------------------------------------------- abusive clients


def half_sent(port: int, count: int) -> list[socket.socket]:
    """`count` connections that each send part of a request head and then nothing (slowloris)."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        sockets.append(sock)
    return sockets


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def closed_count(server: ManagementServer, reason: str) -> float:
    assert server.registry is not None
    value = server.registry.get_sample_value(
        "flag_sidecar_management_connections_closed_total", {"reason": reason}
    )
    return 0.0 if value is None else value


def test_hundreds_of_half_sent_connections_neither_stall_probes_nor_add_threads(
    management: ManagementServer,
) -> None:
    threads_before = threading.active_count()
    sockets = half_sent(management.port, 200)
    try:
        started = time.monotonic()
        for _ in range(5):
            assert get(management.port, "/healthz")[:2] == (200, "ok\n")
        # Generous: the old thread-per-connection server needed a thread for each idle connection.
        assert time.monotonic() - started < 3.0
        assert threading.active_count() <= threads_before + 1
        assert management.open_connections >= 200  # all still open (the last probe may be too)
    finally:
        for sock in sockets:
            sock.close()


def test_over_the_cap_the_oldest_idle_connection_gives_way(store: StubStore) -> None:
    metrics = SidecarMetrics(store)
    server = ManagementServer("127.0.0.1:0", store=store, registry=metrics.registry, max_connections=10)
    server.start()
    sockets = half_sent(server.port, 15)
    try:
        assert get(server.port, "/healthz")[0] == 200
        assert closed_by_server(sockets[0], within=5.0)  # the oldest went first
        assert closed_count(server, "evicted") == 6  # 5 for the later idle ones, 1 for the probe
        assert server.open_connections <= 10
    finally:
        for sock in sockets:
            sock.close()
        server.stop()


def test_a_silent_connection_is_closed_after_the_read_timeout(store: StubStore) -> None:
    metrics = SidecarMetrics(store)
    server = ManagementServer("127.0.0.1:0", store=store, registry=metrics.registry, read_timeout=0.2)
    server.start()
    try:
        (sock,) = half_sent(server.port, 1)
        assert closed_by_server(sock, within=5.0)
        sock.close()
        assert closed_count(server, "timeout") == 1
        assert get(server.port, "/healthz")[0] == 200
    finally:
        server.stop()


def test_keep_alive_serves_several_requests_on_one_connection(management: ManagementServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", management.port, timeout=5)
    try:
        for path in ("/healthz", "/readyz", "/metrics"):
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            assert response.status in (200, 503)
        assert management.open_connections == 1
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"garbage\r\n\r\n", 400),
        (b"POST /healthz HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", 405),
        (b"GET /healthz HTTP/2.0\r\n\r\n", 505),
        (b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 20_000 + b"\r\n\r\n", 431),
    ],
)
def test_bad_requests_get_a_status_and_no_traceback(
    management: ManagementServer,
    request_bytes: bytes,
    status: int,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    with socket.create_connection(("127.0.0.1", management.port), timeout=5) as sock:
        sock.sendall(request_bytes)
        answer = sock.recv(4096)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    assert closed_count(management, "bad_request") == 1
    assert get(management.port, "/healthz")[0] == 200
    assert not [record for record in caplog.records if record.exc_info or record.levelno > logging.DEBUG]
    assert "Traceback" not in capfd.readouterr().err


def test_clients_that_hang_up_early_leave_no_traceback(
    management: ManagementServer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(20):
        # Asks for the largest answer and resets the connection at once (RST, not FIN).
        sock = socket.create_connection(("127.0.0.1", management.port), timeout=5)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
        sock.close()
        sock = socket.create_connection(("127.0.0.1", management.port), timeout=5)
        sock.sendall(b"GET /metr")  # hangs up in the middle of the request line
        sock.close()
    assert get(management.port, "/healthz")[0] == 200
    assert not [record for record in caplog.records if record.exc_info or record.levelno > logging.DEBUG]
    assert "Traceback" not in capfd.readouterr().err

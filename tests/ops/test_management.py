"""The management listener over real HTTP on 127.0.0.1:0."""

from __future__ import annotations

import http.client
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

"""The HTTP(S) source against a real local HTTP server: documents, conditional polls, failures."""

from __future__ import annotations

import hashlib
import logging
import socket
import ssl
import time
from urllib.parse import urlsplit

import pytest

from sidecar.sources import JSON, YAML, open_source
from sidecar.sources.http import (
    MAX_BACKOFF_SECONDS,
    HttpSource,
    HttpSourceError,
    backoff_delay,
    document_format,
    redacted,
)
from sidecar.sources.remote_options import RemoteSourceOptions
from tests.conftest import eventually
from tests.ops.certs import make_certificates
from tests.sources.flag_server import FlagServer

DOCUMENT = {"flags": [{"key": "a", "enabled": True, "variants": [{"key": "on", "value": True}]}]}
CHANGED = {"flags": [{"key": "b", "enabled": True, "variants": [{"key": "on", "value": True}]}]}


class Listener:
    def __init__(self) -> None:
        self.heard: list[tuple[str, str]] = []

    def changed(self) -> None:
        self.heard.append(("changed", ""))

    def lost(self, event: str, message: str) -> None:
        self.heard.append(("lost", message))

    def regained(self, event: str, message: str) -> None:
        self.heard.append(("regained", message))

    def confirmed(self, revision: str) -> None:
        self.heard.append(("confirmed", revision))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.heard]


@pytest.fixture
def server():
    server = FlagServer(DOCUMENT).start()
    yield server
    server.stop()


def source_for(url: str, **options) -> HttpSource:
    return HttpSource(urlsplit(url), **{"timeout": 2.0, **options})


def test_a_document_comes_with_its_etag_as_revision_and_its_format(server):
    source = source_for(server.url)
    document = source.fetch()
    assert document.data == server._body
    assert document.revision == server.etag
    assert document.format == YAML
    assert document.origin == server.url
    server.content_type = "application/json; charset=utf-8"
    server.serve(b'{"flags": []}')
    assert source.fetch().format == JSON


def test_without_an_etag_the_revision_is_the_sha1_of_the_bytes(server):
    server.etags = False
    document = source_for(server.url).fetch()
    assert document.revision == hashlib.sha1(document.data).hexdigest()


@pytest.mark.parametrize(
    ("content_type", "path", "expected"),
    [
        ("application/json", "/flags.yaml", JSON),
        ("application/vnd.flags+json", "/f", JSON),
        ("text/yaml; charset=utf-8", "/flags.json", YAML),
        ("text/plain", "/flags.json", JSON),
        ("application/octet-stream", "/flags.yml", YAML),
        (None, "/flags.JSON", JSON),
    ],
)
def test_the_format_comes_from_the_content_type_else_the_extension(content_type, path, expected):
    assert document_format(content_type, path) == expected


def test_an_unchanged_document_is_a_304_and_is_confirmed_not_handed_over(server):
    source = source_for(server.url)
    first = source.fetch()
    listener = Listener()
    source._listener = listener  # as watch() sets it, without the poll thread
    assert source.poll() is False
    assert source.poll() is False
    assert server.answered[304] == 2
    assert source.not_modified == 2
    assert server.requests[-1]["If-None-Match"] == server.etag
    assert "If-Modified-Since" in server.requests[-1]
    assert listener.heard == [("confirmed", first.revision)] * 2


def test_if_modified_since_alone_gets_a_304_from_a_server_without_etags(server):
    server.etags = False
    source = source_for(server.url)
    source.fetch()
    source._listener = Listener()
    assert source.poll() is False
    assert server.answered[304] == 1
    assert "If-None-Match" not in server.requests[-1]


def test_a_changed_document_is_handed_to_the_next_fetch(server):
    source = source_for(server.url)
    source.fetch()
    source._listener = Listener()
    server.serve(CHANGED)
    assert source.poll() is True
    requests = len(server.requests)
    document = source.fetch()  # the polled bytes, not a second GET
    assert len(server.requests) == requests
    assert document.revision == server.etag
    assert b"key: b" in document.data


def test_the_same_bytes_under_a_new_etag_are_no_change(server):
    server.etags = False
    server.last_modified = False  # nothing to be conditional on: every poll is a 200
    source = source_for(server.url)
    revision = source.fetch().revision
    listener = Listener()
    source._listener = listener
    assert source.poll() is False
    assert server.answered[200] == 2
    assert listener.heard == [("confirmed", revision)]


def test_the_poll_thread_reports_a_change_to_its_listener(server):
    source = source_for(server.url, poll_interval=0.05)
    source.fetch()
    listener = Listener()
    source.watch(listener)
    try:
        server.serve(CHANGED)
        eventually(lambda: "changed" in listener.kinds())
        assert b"key: b" in source.fetch().data
    finally:
        source.close()


@pytest.mark.parametrize("status", [500, 503, 404, 403])
def test_a_status_other_than_200_or_304_is_an_error_naming_it(server, status):
    server.status = status
    with pytest.raises(HttpSourceError, match=f"the server answered {status} "):
        source_for(server.url).fetch()


def test_a_failing_server_is_lost_once_and_regained_once(server):
    source = source_for(server.url)
    source.fetch()
    listener = Listener()
    source._listener = listener
    server.status = 500
    for _ in range(3):
        with pytest.raises(HttpSourceError):
            source.poll()
    assert listener.kinds() == ["lost"]
    assert listener.heard[0][1] == (
        f"flag source {server.url} cannot be had: the server answered 500 Internal Server Error"
    )
    assert source.failure is not None
    server.status = None
    assert source.poll() is False
    assert listener.kinds() == ["lost", "regained", "confirmed"]
    assert source.failure is None


def test_a_stopped_server_is_connection_refused(server):
    source = source_for(server.url)
    source.fetch()
    server.stop()
    with pytest.raises(HttpSourceError, match=r"cannot connect \(.*refused.*\)"):
        source.poll()
    server.start()  # same port
    assert source.poll() is False


def test_a_server_that_stalls_past_the_timeout_times_out(server):
    source = source_for(server.url, timeout=0.3)
    server.delay = 6.0
    started = time.monotonic()
    with pytest.raises(HttpSourceError, match=r"timed out after 0.3s"):
        source.fetch()
    # Long before the server answers (a loaded machine may take seconds past the 0.3 s).
    assert time.monotonic() - started < 5.0


def test_a_trickling_body_is_bounded_by_the_timeout_as_a_whole():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def trickle() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            for _ in range(40):  # a byte every 0.05 s: no single read waits long
                try:
                    connection.sendall(b"x")
                except OSError:
                    return
                time.sleep(0.05)

    import threading

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        with pytest.raises(HttpSourceError, match=r"timed out after 0\.5s"):
            source_for(f"http://127.0.0.1:{port}/flags.yaml", timeout=0.5).fetch()
    finally:
        listener.close()


def test_credentials_in_the_uri_are_sent_as_basic_auth_and_never_shown(server):
    url = server.url.replace("http://", "http://reader:s%40cret@") + "?token=abc"
    source = source_for(url)
    assert source.origin == server.url + "?..."
    source.fetch()
    assert server.requests[-1]["Authorization"] == "Basic cmVhZGVyOnNAY3JldA=="  # reader:s@cret
    server.status = 500
    with pytest.raises(HttpSourceError) as raised:
        source.fetch()
    assert "cret" not in str(raised.value)
    assert "abc" not in str(raised.value)


def test_redacted_shows_scheme_host_port_and_path():
    assert (
        redacted(urlsplit("HTTPS://u:p@[::1]:8443/a/flags.yaml?sig=x#f"))
        == "https://[::1]:8443/a/flags.yaml?..."
    )


def test_backoff_doubles_with_jitter_up_to_its_cap():
    assert backoff_delay(1, 10.0, lambda: 0.0) == 0.5
    assert backoff_delay(1, 10.0, lambda: 1.0) == 1.0
    assert backoff_delay(3, 10.0, lambda: 1.0) == 4.0
    assert backoff_delay(50, 10.0, lambda: 1.0) == MAX_BACKOFF_SECONDS
    assert backoff_delay(50, 120.0, lambda: 1.0) == 120.0  # never more often than the poll interval
    assert backoff_delay(2, 0.1, lambda: 1.0) == pytest.approx(0.2)


def test_the_registry_opens_http_and_https_with_the_source_options(tmp_path):
    options = RemoteSourceOptions(
        source_poll_interval=3.0, source_timeout=4.0, source_tls_ca=tmp_path / "ca.pem"
    )
    source = open_source("https://flags.internal:8443/flags.yaml", options)
    assert isinstance(source, HttpSource)
    assert (source.poll_interval, source.timeout, source.tls.ca_file) == (3.0, 4.0, tmp_path / "ca.pem")
    assert isinstance(open_source("http://flags.internal/flags.yaml"), HttpSource)
    with pytest.raises(ValueError, match="expected https://HOST/PATH"):
        open_source("https:///flags.yaml")
    with pytest.raises(ValueError, match="Port"):
        open_source("https://flags.internal:99999/flags.yaml")


def test_https_verifies_the_server_against_the_system_or_the_given_ca(tmp_path):
    certificates = make_certificates(tmp_path)
    server = FlagServer(DOCUMENT)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.server.cert, certificates.server.key)
    server.tls = context
    server.start()
    try:
        with pytest.raises(HttpSourceError, match=r"TLS error .*certificate verify failed"):
            source_for(server.url).fetch()
        other = open_source(server.url, RemoteSourceOptions(source_tls_ca=certificates.other_ca.cert))
        with pytest.raises(HttpSourceError, match="certificate verify failed"):
            other.fetch()
        trusted = open_source(server.url, RemoteSourceOptions(source_tls_ca=certificates.ca.cert))
        assert trusted.fetch().revision == server.etag
    finally:
        server.stop()


def test_a_server_that_asks_for_a_client_certificate_gets_the_configured_one(tmp_path):
    certificates = make_certificates(tmp_path)
    server = FlagServer(DOCUMENT)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=certificates.ca.cert)
    context.load_cert_chain(certificates.server.cert, certificates.server.key)
    context.verify_mode = ssl.CERT_REQUIRED
    server.tls = context
    server.start()
    try:
        anonymous = open_source(server.url, RemoteSourceOptions(source_tls_ca=certificates.ca.cert))
        with pytest.raises(HttpSourceError):
            anonymous.fetch()
        options = RemoteSourceOptions(
            source_tls_ca=certificates.ca.cert,
            source_tls_cert=certificates.client.cert,
            source_tls_key=certificates.client.key,
        )
        assert open_source(server.url, options).fetch().revision == server.etag
    finally:
        server.stop()


def test_a_tls_file_that_cannot_be_read_is_the_sources_error_naming_it(tmp_path):
    missing = tmp_path / "missing-ca.pem"
    source = open_source("https://127.0.0.1:1/flags.yaml", RemoteSourceOptions(source_tls_ca=missing))
    with pytest.raises(HttpSourceError, match=f"cannot read TLS CA bundle {missing}: No such file"):
        source.fetch()


def test_a_proxy_from_the_environment_is_used_unless_no_proxy_names_the_host(server, monkeypatch, caplog):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    proxy = FlagServer(DOCUMENT).start()  # answers absolute-form requests as a forward proxy would
    try:
        monkeypatch.setenv("http_proxy", f"127.0.0.1:{proxy.port}")
        caplog.set_level(logging.INFO)
        document = source_for("http://flags.example.invalid/flags.yaml").fetch()
        assert document.revision == proxy.etag
        assert proxy.proxied == ["http://flags.example.invalid/flags.yaml"]
        assert f"through the proxy http://127.0.0.1:{proxy.port}/" in caplog.text
        monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
        source_for(server.url).fetch()  # straight to the server
        assert len(proxy.proxied) == 1
        assert len(server.requests) == 1
    finally:
        proxy.stop()

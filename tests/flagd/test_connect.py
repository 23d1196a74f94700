"""--flagd-connect-listen: flagd.evaluation.v1 over the Connect protocol, on the real `serve` command.

Spoken here as a Connect client puts it on the wire (plain HTTP/1.1 with http.client, so what is
checked is the protocol, not a client library): unary calls in application/proto and
application/json, errors as a JSON body with their Connect code, and EventStream as an
application/connect+proto stream of enveloped messages closed by the end-of-stream message.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import ssl
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from flagd.evaluation.v1 import evaluation_pb2 as v1
from flagd.evaluation.v2 import evaluation_pb2 as v2
from tests.conftest import eventually, write_flag_file
from tests.ops.certs import make_certificates
from tests.serve_process import ServeProcess

from . import flags as test_flags

SERVICE = "/flagd.evaluation.v1.Service"
SERVICE_V2 = "/flagd.evaluation.v2.Service"  # what the Go provider calls
END_STREAM = 0x02


class ConnectSidecar:
    """A `serve` process with --flagd-connect-listen on port 0; the port is read from its log."""

    def __init__(self, tmp_path: Path, *extra: str) -> None:
        self.flag_file = write_flag_file(tmp_path / "flags.yaml", test_flags.flags())
        context = [f"--context-value={key}={value}" for key, value in test_flags.STATIC_CONTEXT.items()]
        headers = [f"--context-from-header={n}={k}" for n, k in test_flags.HEADER_TO_CONTEXT.items()]
        self.process = ServeProcess(
            self.flag_file, "--flagd-connect-listen", "127.0.0.1:0", *context, *headers, *extra
        )

        def bound() -> int | None:
            if self.process.process.poll() is not None:
                pytest.fail(f"serve exited early:\n{self.process.log}")
            match = re.search(r"flagd Connect protocol on 127\.0\.0\.1:(\d+) \((.*?);", self.process.log)
            return match

        match = eventually(bound, timeout=15)
        self.port, self.mode = int(match.group(1)), match.group(2)
        self.tls: ssl.SSLContext | None = None  # the client's, for a TLS listener

    def connection(self, timeout: float = 10) -> http.client.HTTPConnection:
        if self.tls is not None:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=self.tls)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def unary(
        self,
        method: str,
        body: bytes,
        content_type: str = "application/proto",
        service: str = SERVICE,
        **headers: str,
    ) -> tuple[int, str, bytes]:
        """(HTTP status, content type, body) of one unary call."""
        connection = self.connection()
        try:
            connection.request(
                "POST",
                f"{service}/{method}",
                body=body,
                headers={"content-type": content_type, "connect-protocol-version": "1", **headers},
            )
            response = connection.getresponse()
            return response.status, response.getheader("content-type", ""), response.read()
        finally:
            connection.close()

    def proto(self, method: str, request: Any, response_class: type[Any], **headers: str) -> Any:
        status, content_type, body = self.unary(method, request.SerializeToString(), **headers)
        assert (status, content_type) == (200, "application/proto"), body
        return response_class.FromString(body)

    def error(self, method: str, body: bytes, content_type: str = "application/proto") -> tuple[int, dict]:
        status, answered_type, answer = self.unary(method, body, content_type)
        assert answered_type == "application/json", answer
        return status, json.loads(answer)


@pytest.fixture
def sidecar(tmp_path: Path) -> Iterator[ConnectSidecar]:
    running = ConnectSidecar(tmp_path)
    try:
        yield running
    finally:
        running.process.stop()


class EventStream:
    """One EventStream call: its enveloped messages, read as they come."""

    def __init__(self, sidecar: ConnectSidecar, timeout: float = 10, service: str = SERVICE) -> None:
        self.connection = sidecar.connection(timeout)
        message = v1.EventStreamRequest().SerializeToString()
        self.connection.request(
            "POST",
            f"{service}/EventStream",
            body=struct.pack(">BI", 0, len(message)) + message,
            headers={"content-type": "application/connect+proto", "connect-protocol-version": "1"},
        )
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        assert self.response.getheader("content-type") == "application/connect+proto"

    def next(self) -> tuple[str, dict[str, Any]]:
        """(event type, data) of the next message, or ("end", the end-of-stream JSON)."""
        flags, length = struct.unpack(">BI", self.response.read(5))
        payload = self.response.read(length)
        if flags & END_STREAM:
            return "end", json.loads(payload)
        event = v1.EventStreamResponse.FromString(payload)
        return event.type, json_format.MessageToDict(event.data)

    def close(self) -> None:
        self.connection.close()


# ---------------------------------------------------------------- unary


def test_every_type_in_proto(sidecar):
    context = {"targetingKey": "user-1", "email": "a@example.com"}

    def request(request_class: type[Any], key: str | None) -> Any:
        message = request_class() if key is None else request_class(flag_key=key)
        message.context.update(context)
        return message

    boolean = sidecar.proto(
        "ResolveBoolean", request(v1.ResolveBooleanRequest, "bool-flag"), v1.ResolveBooleanResponse
    )
    assert (boolean.value, boolean.variant, boolean.reason) == (True, "on", "STATIC")
    string = sidecar.proto(
        "ResolveString", request(v1.ResolveStringRequest, "targeted-flag"), v1.ResolveStringResponse
    )
    assert (string.value, string.variant, string.reason) == ("internal", "staff", "TARGETING_MATCH")
    integer = sidecar.proto("ResolveInt", request(v1.ResolveIntRequest, "int-flag"), v1.ResolveIntResponse)
    assert (integer.value, integer.variant) == (100, "hundred")
    number = sidecar.proto(
        "ResolveFloat", request(v1.ResolveFloatRequest, "float-flag"), v1.ResolveFloatResponse
    )
    assert (number.value, number.variant) == (3.75, "big")
    obj = sidecar.proto(
        "ResolveObject", request(v1.ResolveObjectRequest, "object-flag"), v1.ResolveObjectResponse
    )
    assert json_format.MessageToDict(obj.value) == test_flags.OBJECT_VALUE
    everything = sidecar.proto("ResolveAll", request(v1.ResolveAllRequest, None), v1.ResolveAllResponse)
    assert everything.flags["bool-flag"].bool_value is True
    assert everything.flags["int-flag"].double_value == 100
    assert "disabled-flag" not in everything.flags  # left out, as flagd does


def test_json_and_the_server_context_rules(sidecar):
    body = json.dumps({"flagKey": "user-flag", "context": {"targetingKey": "user-1"}}).encode()
    status, content_type, answer = sidecar.unary("ResolveBoolean", body, "application/json")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(answer) == {"value": True, "variant": "on", "reason": "TARGETING_MATCH"}
    # --context-value and --context-from-header apply here as on the gRPC listeners.
    injected = sidecar.proto(
        "ResolveString", v1.ResolveStringRequest(flag_key="injected-flag"), v1.ResolveStringResponse
    )
    assert injected.value == "INTERNAL"
    header = next(iter(test_flags.HEADER_TO_CONTEXT))
    request = v1.ResolveBooleanRequest(flag_key="header-flag")
    assert (
        sidecar.proto("ResolveBoolean", request, v1.ResolveBooleanResponse, **{header: "acme"}).value is True
    )
    assert sidecar.proto("ResolveBoolean", request, v1.ResolveBooleanResponse).value is False
    # A disabled flag: reason DISABLED, no value (v1's zero value) and no variant.
    disabled = sidecar.proto(
        "ResolveBoolean", v1.ResolveBooleanRequest(flag_key="disabled-flag"), v1.ResolveBooleanResponse
    )
    assert (disabled.value, disabled.variant, disabled.reason) == (False, "", "DISABLED")


def test_errors_carry_their_connect_codes(sidecar):
    missing = v1.ResolveBooleanRequest(flag_key="no-such-flag").SerializeToString()
    assert sidecar.error("ResolveBoolean", missing) == (
        404,
        {"code": "not_found", "message": "flag 'no-such-flag' not found"},
    )
    mismatch = v1.ResolveStringRequest(flag_key="bool-flag").SerializeToString()
    status, error = sidecar.error("ResolveString", mismatch)
    assert (status, error["code"]) == (400, "invalid_argument")
    assert "a boolean flag, not a string flag" in error["message"]
    status, error = sidecar.error("ResolveBoolean", b"\xff\xff\xff")  # not a ResolveBooleanRequest
    assert (status, error["code"]) == (400, "invalid_argument")
    # A context value JSON's Struct cannot hold as a finite number: the edge's own message.
    nan = b'{"flagKey": "bool-flag", "context": {"x": NaN}}'
    status, error = sidecar.error("ResolveBoolean", nan, "application/json")
    assert (status, error["code"]) == (400, "invalid_argument"), error
    # An unknown method is a plain HTTP 404, as connect-go's own servers answer it (clients read
    # it as `unimplemented`).
    assert sidecar.unary("NoSuchMethod", missing)[0] == 404


def test_v2_as_the_go_provider_calls_it(sidecar):
    request = v2.ResolveIntRequest(flag_key="int-flag").SerializeToString()
    status, content_type, body = sidecar.unary("ResolveInt", request, service=SERVICE_V2)
    assert (status, content_type) == (200, "application/proto")
    answer = v2.ResolveIntResponse.FromString(body)
    assert (answer.value, answer.variant, answer.reason) == (100, "hundred", "STATIC")
    # v2 leaves a disabled flag's value and variant unset.
    request = v2.ResolveBooleanRequest(flag_key="disabled-flag").SerializeToString()
    status, _, body = sidecar.unary("ResolveBoolean", request, service=SERVICE_V2)
    disabled = v2.ResolveBooleanResponse.FromString(body)
    assert not disabled.HasField("value")
    assert not disabled.HasField("variant")
    assert disabled.reason == "DISABLED"
    # v2 has no ResolveAll.
    assert sidecar.unary("ResolveAll", b"", service=SERVICE_V2)[0] == 404


def test_tls_and_mutual_tls_as_on_the_grpc_listeners(tmp_path):
    certs = make_certificates(tmp_path)
    tls = ["--tls-cert", str(certs.server.cert), "--tls-key", str(certs.server.key)]
    sidecar = ConnectSidecar(tmp_path, *tls, "--tls-client-ca", str(certs.ca.cert))
    request = v1.ResolveBooleanRequest(flag_key="bool-flag")
    try:
        assert sidecar.mode == "mutual TLS"
        sidecar.tls = ssl.create_default_context(cafile=str(certs.ca.cert))
        with pytest.raises((ssl.SSLError, ConnectionError)):  # no client certificate
            sidecar.unary("ResolveBoolean", request.SerializeToString())
        sidecar.tls.load_cert_chain(str(certs.client.cert), str(certs.client.key))
        assert sidecar.proto("ResolveBoolean", request, v1.ResolveBooleanResponse).value is True
    finally:
        sidecar.process.stop()


def test_limits_are_the_grpc_listeners(tmp_path):
    sidecar = ConnectSidecar(tmp_path, "--max-request-bytes", "2KiB", "--max-context-keys", "2")
    try:
        big = v1.ResolveBooleanRequest(flag_key="bool-flag")
        big.context.update({"padding": "x" * 4096})
        status, error = sidecar.error("ResolveBoolean", big.SerializeToString())
        assert error["code"] == "resource_exhausted", error
        many = v1.ResolveBooleanRequest(flag_key="bool-flag")
        many.context.update({"a": 1, "b": 2, "c": 3})
        status, error = sidecar.error("ResolveBoolean", many.SerializeToString())
        assert (status, error["code"]) == (400, "invalid_argument")
        assert "--max-context-keys" in error["message"]
    finally:
        sidecar.process.stop()


# ---------------------------------------------------------------- EventStream


def test_event_stream_ready_change_and_shutdown(sidecar):
    stream = EventStream(sidecar)
    try:
        assert stream.next() == ("provider_ready", {})
        write_flag_file(sidecar.flag_file, test_flags.changed())
        event, data = stream.next()
        assert event == "configuration_change"
        assert data == {"flags": {"changing-flag": {"type": "update"}}}
        # SIGTERM: provider_shutdown, then the end-of-stream message with no error.
        sidecar.process.process.send_signal(signal.SIGTERM)
        assert stream.next() == ("provider_shutdown", {})
        assert stream.next() == ("end", {})
    finally:
        stream.close()
    assert sidecar.process.process.wait(timeout=15) == 0, sidecar.process.log


def test_event_streams_are_under_the_stream_limits(tmp_path):
    sidecar = ConnectSidecar(
        tmp_path, "--max-streams", "1", "--max-streams-per-connection", "1", "--stream-idle-timeout", "0.5"
    )
    try:
        first = EventStream(sidecar)
        assert first.next() == ("provider_ready", {})
        refused = EventStream(sidecar, service=SERVICE_V2)  # counted across versions too
        event, end = refused.next()
        assert event == "end"
        assert end["error"]["code"] == "resource_exhausted"
        assert "--max-streams" in end["error"]["message"]
        refused.close()
        # Nothing sent for --stream-idle-timeout (keep_alive comes every 20 s): ended by the reaper.
        event, end = first.next()
        assert event == "end"
        assert end["error"]["code"] == "deadline_exceeded"
        assert "--stream-idle-timeout" in end["error"]["message"]
        first.close()
        # Its slot is free again.
        again = EventStream(sidecar)
        assert again.next() == ("provider_ready", {})
        again.close()
    finally:
        sidecar.process.stop()


def test_a_client_hanging_up_frees_its_stream_slot(tmp_path):
    # The idle timeout is the default (300 s): only the hang-up can free the one slot.
    sidecar = ConnectSidecar(tmp_path, "--max-streams", "1", "--max-streams-per-connection", "1")
    try:
        for _ in range(3):
            stream = eventually(lambda: _ready_stream(sidecar), timeout=10)
            stream.close()
    finally:
        sidecar.process.stop()


def _ready_stream(sidecar: ConnectSidecar) -> EventStream | None:
    """A new EventStream that got provider_ready, or None if it was refused (a slot still taken)."""
    stream = EventStream(sidecar)
    if stream.next() == ("provider_ready", {}):
        return stream
    stream.close()
    return None


def test_connections_have_tcp_nodelay(tmp_path):
    """Without TCP_NODELAY every keep-alive call waited out the client's delayed ACK (asyncio sets
    it only on connections of a listening socket created as IPPROTO_TCP); checked on the server's
    own end of a connection (uvicorn's server state), in this process."""
    from sidecar.server.flagd import FlagdServices
    from sidecar.server.flagd.connect import FlagdConnectListener
    from sidecar.server.streams import StreamAdmission
    from sidecar.sources import FileSource
    from sidecar.store import FlagStore

    store = FlagStore(FileSource(write_flag_file(tmp_path / "flags.yaml", test_flags.flags())))
    store.start()
    services = FlagdServices(store)
    listener = FlagdConnectListener(services, StreamAdmission(), "127.0.0.1:0")
    listener.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=10)
        body = v1.ResolveBooleanRequest(flag_key="bool-flag").SerializeToString()
        connection.request(
            "POST", f"{SERVICE}/ResolveBoolean", body=body, headers={"content-type": "application/proto"}
        )
        assert connection.getresponse().read()
        server = listener._server
        assert server is not None
        (open_connection,) = server.server_state.connections
        sock = open_connection.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        connection.close()
    finally:
        listener.stop()
        services.close()
        store.close()

"""The otlp exporter: each batch as OTLP/gRPC `LogsService.Export` requests, one log record per event.

A FeatureEvent becomes an OpenTelemetry `feature_flag.evaluation` event (semantic conventions,
"feature flags in events"): a LogRecord whose EventName field is `feature_flag.evaluation`, with
the attributes of `EVALUATION_ATTRIBUTES` below. A TrackingEvent becomes a `flag_sidecar.track`
event. Both carry `flag_sidecar.event.id`, so that a receiver can drop the duplicates that
at-least-once delivery allows.

Why not the OpenTelemetry SDK's LoggerProvider + BatchLogRecordProcessor: its queue drops records
when full, its exporter retries inside its own timeout and then drops the batch, and shutdown drops
what is left. Our scheduler already batches, retries with backoff, spools to disk and dead-letters;
so this exporter writes the ExportLogsServiceRequest itself, as protobuf bytes in one pass over the
batch (otlp_wire: no message object per record), sends it once per call, and raises on failure as
every exporter does.

Failures follow the OTLP specification: UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED, ABORTED,
OUT_OF_RANGE, DATA_LOSS, and RESOURCE_EXHAUSTED with a RetryInfo, are retried (honouring the
RetryInfo's delay); any other status is permanent (the batch goes to the dead-letter file). A
partial success (some records rejected by the collector) is not retried, as the specification
says; it is logged and counted. A batch larger than `max_request_mb` is sent as several requests,
so that it stays under the collector's receive limit (4 MiB by default in the Collector).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ... import package_version
from ..exporter import PermanentExportError, RetryableExportError
from ..feature_event import Event, FeatureEvent
from ..options import Options
from . import otlp_wire as wire

if TYPE_CHECKING:
    import grpc
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

EVALUATION_EVENT = "feature_flag.evaluation"
TRACK_EVENT = "flag_sidecar.track"
DEFAULT_PORT = 4317
MIB = 1024 * 1024
USER_AGENT = "flag-sidecar-otlp/1"
EXPORT_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
# Attribute names (semantic conventions registry, feature_flag.* and error.*).
KEY = "feature_flag.key"
VARIANT = "feature_flag.result.variant"
VALUE = "feature_flag.result.value"
REASON = "feature_flag.result.reason"
ERROR_TYPE = "error.type"
ERROR_MESSAGE = "feature_flag.error.message"
CONTEXT_ID = "feature_flag.context.id"
PROVIDER_NAME = "feature_flag.provider.name"
SET_ID = "feature_flag.set.id"
VERSION = "feature_flag.version"
EVENT_ID = "flag_sidecar.event.id"
TRACK_NAME = "flag_sidecar.track.name"
EVALUATION_ATTRIBUTES = (
    KEY,
    VARIANT,
    VALUE,
    REASON,
    ERROR_TYPE,
    ERROR_MESSAGE,
    CONTEXT_ID,
    PROVIDER_NAME,
    SET_ID,
    VERSION,
    EVENT_ID,
)
# A decoder refuses messages nested past about 100 levels (upb's default): each JSON level of a
# value is two or three messages, so a flag value deeper than this is cut (the rest as a marker).
MAX_VALUE_DEPTH = 24
TOO_DEEP = "(nested too deep for OTLP)"
_RETRYABLE = frozenset(
    {"UNAVAILABLE", "CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "DATA_LOSS"}
)
_INT64 = (-(2**63), 2**63 - 1)


def semconv_name(name: str) -> str:
    """An engine Reason/ErrorCode name as the conventions write it: TARGETING_MATCH -> targeting_match."""
    return name.lower()


def any_value(value: Any, depth: int = 0) -> AnyValue:
    """A JSON value as an OTLP AnyValue (null is the empty AnyValue)."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    result = AnyValue()
    _fill(result, value, depth)
    return result


def _complex_value(value: Any) -> bytes:
    """An object, array or other non-scalar as AnyValue bytes, through the message classes."""
    return any_value(value).SerializeToString()


def _fill(target: AnyValue, value: Any, depth: int) -> None:
    if value is None:
        return
    if depth > MAX_VALUE_DEPTH:
        target.string_value = TOO_DEEP
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bool):  # before int: a bool is an int
        target.bool_value = value
    elif isinstance(value, int):
        if _INT64[0] <= value <= _INT64[1]:
            target.int_value = value
        else:
            target.double_value = float(value)
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, Mapping):
        kvlist = target.kvlist_value
        kvlist.SetInParent()  # an empty object is still an object, not null
        for key, item in value.items():
            kv = kvlist.values.add(key=str(key))
            _fill(kv.value, item, depth + 1)
    elif isinstance(value, list | tuple):
        array = target.array_value
        array.SetInParent()
        for item in value:
            _fill(array.values.add(), item, depth + 1)
    else:
        target.string_value = str(value)


def parse_endpoint(endpoint: str, insecure: bool | None) -> tuple[str, bool]:
    """(gRPC target, use TLS). As OpenTelemetry's exporters read OTEL_EXPORTER_OTLP_ENDPOINT:
    http:// is plaintext, https:// is TLS, a bare host:port is TLS unless insecure=true."""
    text = endpoint.strip()
    scheme = ""
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"endpoint {endpoint!r}: expected http://, https:// or HOST:PORT")
        parts = urlsplit(text)
    else:
        parts = urlsplit("//" + text)
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError(f"endpoint {endpoint!r}: the port is not a number from 0 to 65535") from None
    if not parts.hostname or parts.path.strip("/") or parts.query or parts.username:
        raise ValueError(f"endpoint {endpoint!r}: expected [http://|https://]HOST[:PORT], no path")
    if scheme == "http":
        if insecure is False:
            raise ValueError(f"endpoint {endpoint!r} is http:// (plaintext) but insecure=false")
        tls = False
    elif scheme == "https":
        if insecure:
            raise ValueError(f"endpoint {endpoint!r} is https:// (TLS) but insecure=true")
        tls = True
    else:
        tls = not insecure
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}", tls


def grpc_metadata(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """`headers=` as gRPC metadata: names lowercase, no reserved grpc- names, printable ASCII values."""
    result = []
    for name, value in headers.items():
        key = name.strip().lower()
        if (
            not key
            or key.startswith("grpc-")
            or key.endswith("-bin")
            or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in key)
        ):
            raise ValueError(f"header {name!r}: use letters, digits, '-', '_', '.' (not grpc-*, *-bin)")
        if not all(" " <= c <= "~" for c in value):
            raise ValueError(f"header {name!r}: the value must be printable ASCII")
        result.append((key, value))
    return tuple(result)


def _read(path: str | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"{what} {path!r}: {exc.strerror or exc}") from None


class OtlpExporter:
    """Sends batches to an OTLP/gRPC collector's LogsService over one long-lived channel."""

    is_bulk = True

    def __init__(
        self,
        endpoint: str,
        *,
        insecure: bool | None = None,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        compression: str = "none",
        service_name: str = "flag-sidecar",
        resource: Mapping[str, str] | None = None,
        provider_name: str = "flag-sidecar",
        set_id: str = "default",
        values: bool = True,
        max_request_bytes: int = 4 * MIB,
        logger: logging.Logger | None = None,
    ) -> None:
        import grpc
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
        from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
        from opentelemetry.proto.resource.v1.resource_pb2 import Resource

        self.target, self.tls = parse_endpoint(endpoint, insecure)
        self.endpoint = endpoint
        if not self.tls and (ca_file or cert_file or key_file):
            raise ValueError("ca_file, cert_file and key_file need a TLS endpoint (https://, not insecure)")
        if bool(cert_file) != bool(key_file):
            raise ValueError("cert_file and key_file go together (the client certificate and its key)")
        self.metadata = grpc_metadata(headers or {})
        if compression not in ("none", "gzip"):
            raise ValueError(f"compression={compression!r}: expected none or gzip")
        self.compression = grpc.Compression.Gzip if compression == "gzip" else grpc.Compression.NoCompression
        self.timeout = timeout
        self.provider_name = provider_name
        self.set_id = set_id
        self.values = values
        self.log = logger or logging.getLogger("sidecar.events.otlp")
        self._lock = threading.Lock()  # the counters, read by stats() from other threads
        self.rejected = 0  # records a collector refused in a partial success
        version = package_version()
        attributes = {"service.name": service_name, "service.version": version}
        attributes["host.name"] = socket.gethostname()
        attributes.update(resource or {})
        described = Resource()
        for name, value in attributes.items():
            described.attributes.add(key=name, value=any_value(value))
        self._head = described.SerializeToString()
        self._scope_bytes = InstrumentationScope(name="flag-sidecar", version=version).SerializeToString()
        # What a request holds besides its records: resource, scope and framing, with room to spare.
        overhead = len(self._head) + len(self._scope_bytes) + 1024
        self.max_records_bytes = max(1024, max_request_bytes - overhead)
        # The attributes every evaluation event of this exporter carries, encoded once.
        common = wire.attribute(PROVIDER_NAME, wire.string_value(provider_name))
        if set_id:
            common += wire.attribute(SET_ID, wire.string_value(set_id))
        self._evaluations = wire.RecordEncoder(EVALUATION_EVENT, common, _complex_value)
        self._tracks = wire.RecordEncoder(TRACK_EVENT, b"", _complex_value)
        self._context_id = wire.string_attribute(CONTEXT_ID)
        self._event_id = wire.string_attribute(EVENT_ID)

        options = [("grpc.primary_user_agent", USER_AGENT)]
        if self.tls:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(ca_file, "ca_file"),
                private_key=_read(key_file, "key_file"),
                certificate_chain=_read(cert_file, "cert_file"),
            )
            self._channel: grpc.Channel = grpc.secure_channel(self.target, credentials, options)
        else:
            self._channel = grpc.insecure_channel(self.target, options)
        # Requests go out as the bytes otlp_wire wrote (no serializer); answers are decoded.
        self._export: grpc.UnaryUnaryMultiCallable[bytes, Any] = self._channel.unary_unary(
            EXPORT_METHOD,
            request_serializer=None,
            response_deserializer=logs_service_pb2.ExportLogsServiceResponse.FromString,
        )

    # ---- encoding (on the scheduler's worker thread) ----------------------------------------------

    def encode(self, event: Event) -> bytes:
        """One event as a framed LogRecord (otlp_wire)."""
        nanos = int(event.creation_date * 1e9)
        per_event = self._context_id(event.user_key) + self._event_id(event.event_id)
        if isinstance(event, FeatureEvent):
            key = (
                event.key,
                event.variation,
                event.default,
                event.reason,
                event.error_code,
                event.error_message,
                event.version,
            )
            answer = self._evaluations.answer(key, event.value, lambda: self._answer(event))
            return self._evaluations.record(nanos, answer, per_event)
        data = event.to_json()
        body = {"evaluationContext": data["evaluationContext"], "details": data["trackingEventDetails"]}
        name = wire.attribute(TRACK_NAME, wire.string_value(event.key))
        body_field = wire.body_field(any_value(body).SerializeToString())
        return self._tracks.record(nanos, name, per_event, body_field)

    def _answer(self, event: FeatureEvent) -> bytes:
        """The attributes of one flag's answer: key, variant and value or error, reason, version."""
        parts = [wire.attribute(KEY, wire.string_value(event.key))]
        if event.error_code:
            parts.append(wire.attribute(ERROR_TYPE, wire.string_value(semconv_name(event.error_code))))
            if event.error_message:
                parts.append(wire.attribute(ERROR_MESSAGE, wire.string_value(event.error_message)))
        elif not event.default:  # a variant was served (not the caller's code default)
            parts.append(wire.attribute(VARIANT, wire.string_value(event.variation)))
            if self.values:
                parts.append(wire.attribute(VALUE, self._evaluations.value(event.value)))
        if event.reason:
            parts.append(wire.attribute(REASON, wire.string_value(semconv_name(event.reason))))
        elif event.error_code:  # an event spooled by an older version: no reason recorded
            parts.append(wire.attribute(REASON, wire.string_value("error")))
        if event.version:
            parts.append(wire.attribute(VERSION, wire.string_value(event.version)))
        return b"".join(parts)

    def requests(self, events: Sequence[Event]) -> list[tuple[bytes, int]]:
        """The encoded requests for one batch, with their record counts: one request, unless the
        batch is over max_request_bytes."""
        requests: list[tuple[bytes, int]] = []
        records: list[bytes] = []
        size = 0
        for event in events:
            record = self.encode(event)
            if size + len(record) > self.max_records_bytes and records:
                requests.append((wire.request(self._head, self._scope_bytes, records), len(records)))
                records, size = [], 0
            records.append(record)
            size += len(record)
        if records:
            requests.append((wire.request(self._head, self._scope_bytes, records), len(records)))
        return requests

    # ---- the Exporter protocol --------------------------------------------------------------------

    def export(self, events: Sequence[Event]) -> None:
        if not events:
            return
        for request, count in self.requests(events):
            self._send(request, count)

    def _send(self, request: bytes, count: int) -> None:
        import grpc

        try:
            response = self._export(
                request, timeout=self.timeout, metadata=self.metadata, compression=self.compression
            )
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            message = f"OTLP export to {self.target}: {code.name}: {details}"
            retry_after = retry_delay(exc)
            if code.name in _RETRYABLE or (code == grpc.StatusCode.RESOURCE_EXHAUSTED and retry_after):
                raise RetryableExportError(message, retry_after) from None
            raise PermanentExportError(message) from None
        partial = response.partial_success
        if partial.rejected_log_records:
            with self._lock:
                self.rejected += partial.rejected_log_records
            self.log.warning(
                "OTLP collector %s rejected %d of %d records (not retried): %s",
                self.target,
                partial.rejected_log_records,
                count,
                partial.error_message or "no reason given",
            )
        elif partial.error_message:
            self.log.warning("OTLP collector %s: %s", self.target, partial.error_message)

    def close(self) -> None:
        self._channel.close()

    @classmethod
    def from_options(cls, options: Options) -> OtlpExporter:
        endpoint = options.required("endpoint")
        # Unset, the endpoint's scheme decides (see parse_endpoint).
        insecure = options.boolean("insecure", False) if "insecure" in options.spec.options else None
        kwargs: dict[str, Any] = {
            "insecure": insecure,
            "ca_file": options.string("ca_file"),
            "cert_file": options.string("cert_file"),
            "key_file": options.string("key_file"),
            "headers": options.pairs("headers"),
            "timeout": options.real("timeout", 10.0, minimum=0.001),
            "compression": options.choice("compression", ("none", "gzip"), "none"),
            "service_name": options.string("service_name", "flag-sidecar"),
            "resource": options.pairs("resource"),
            "provider_name": options.string("provider_name", "flag-sidecar"),
            "set_id": options.string("set_id", "default"),
            "values": options.boolean("values", True),
            "max_request_bytes": int(options.real("max_request_mb", 4.0, minimum=0.01) * MIB),
        }
        try:
            return cls(endpoint, **kwargs)
        except ValueError as exc:
            raise options.error(str(exc)) from None


def retry_delay(error: Exception) -> float | None:
    """The delay of a google.rpc.RetryInfo in a gRPC error's status details (OTLP's throttling)."""
    trailing = getattr(error, "trailing_metadata", None)
    if not callable(trailing):
        return None
    try:
        from google.rpc import error_details_pb2, status_pb2

        for key, value in trailing() or ():
            if key != "grpc-status-details-bin" or not isinstance(value, bytes):
                continue
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    info = error_details_pb2.RetryInfo()
                    detail.Unpack(info)
                    delay = info.retry_delay.seconds + info.retry_delay.nanos / 1e9
                    return delay if delay > 0 else None
    except Exception:  # a malformed status from the collector: no hint, plain backoff
        return None
    return None

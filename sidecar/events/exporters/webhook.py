"""The webhook exporter: HTTP POST of {"meta": {...}, "events": [...]} per batch (bulk).

Headers: `Content-Type: application/json`, `Idempotency-Key` (the same for every retry of a
batch), and with a secret `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`
(go-feature-flag's header) plus `X-Flag-Sidecar-Signature: t=<unix seconds>,v1=<hex
HMAC-SHA256(secret, "<t>." + body)>`, which binds the time too so that a receiver can refuse
replays. 2xx is success; 408, 429, 5xx and connection errors/timeouts are retried (429/503
honour Retry-After); other statuses are permanent and send the batch to the dead-letter file.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from ..exporter import PermanentExportError, RetryableExportError
from ..feature_event import Event, dumps
from ..options import Options

SIGNATURE_HEADER = "X-Hub-Signature-256"
TIMESTAMPED_SIGNATURE_HEADER = "X-Flag-Sidecar-Signature"
USER_AGENT = "flag-sidecar-webhook/1"
RETRYABLE_STATUSES = frozenset({408, 429})


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def sign_timestamped(secret: bytes, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class WebhookExporter:
    """POSTs each batch to `url`, reusing one keep-alive connection."""

    is_bulk = True

    def __init__(
        self,
        url: str,
        secret: str | None = None,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook url {url!r} must be an http:// or https:// URL")
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._secret = secret.encode() if secret else None
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.meta: dict[str, Any] = {
            "hostname": socket.gethostname(),
            "sidecar": "flag-sidecar",
            **(meta or {}),
        }
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
            self._conn.connect()
            # http.client sends a body over 2000 bytes apart from the headers: without TCP_NODELAY
            # Nagle's algorithm and the receiver's delayed ACK stall every batch for the ACK timer.
            if self._conn.sock is not None:
                self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def body(self, events: Sequence[Event]) -> bytes:
        payload = {"meta": self.meta, "events": [e.to_json() for e in events]}
        return dumps(payload).encode()

    def export(self, events: Sequence[Event]) -> None:
        if not events:
            return
        body = self.body(events)
        ids = "\n".join(e.event_id for e in events).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": hashlib.sha256(ids).hexdigest()[:32],
            **self.headers,
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
            headers[TIMESTAMPED_SIGNATURE_HEADER] = sign_timestamped(self._secret, body, int(time.time()))
        try:
            conn = self._connection()
            conn.request("POST", self._path, body=body, headers=headers)
            response = conn.getresponse()
            reply = response.read(64 * 1024)
            if response.will_close:
                self.close()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise RetryableExportError(f"POST {self.url}: {type(exc).__name__}: {exc}") from exc
        status = response.status
        if 200 <= status < 300:
            return
        excerpt = reply[:200].decode("utf-8", "replace").strip()
        message = f"POST {self.url}: HTTP {status} {response.reason}" + (f": {excerpt}" if excerpt else "")
        if status >= 500 or status in RETRYABLE_STATUSES:
            raise RetryableExportError(message, parse_retry_after(response.getheader("Retry-After")))
        raise PermanentExportError(message)

    @classmethod
    def from_options(cls, options: Options) -> WebhookExporter:
        url = options.required("url")
        secret = options.string("secret")
        timeout = options.real("timeout", 10.0, minimum=0.001)
        headers = options.pairs("headers")
        meta = options.pairs("meta")
        try:
            return cls(url, secret, timeout, headers, meta)
        except ValueError as exc:
            raise options.error(str(exc)) from None

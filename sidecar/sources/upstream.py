"""grpc:// and grpcs://: another flag-sidecar (the control plane) as the source, over its sync
stream (flagsidecar.v1.SyncService.Watch on its --sync-listen address).

The source keeps the upstream's set as messages (flags and segments by key), applies each full set
or delta in the order the stream sends them, and hands the store a JSON flag document of it
(sidecar.schema.message_to_document: the one conversion), with the upstream's per-flag versions
(Document.versions) and revision. It does not validate: the store checks the document as it
checks a file, so a bad upstream set is rejected with every problem and the last good one served.

The first fetch() is a unary Fetch (the store's first load waits for it, up to `timeout`). watch()
then follows the stream from that revision on a thread of its own: a lost stream is reported once
(`lost`), retried with exponential backoff and full jitter, resumed with since_revision (only the
delta comes back), and reported `regained` when a message arrives again. Meanwhile the store
serves the last set it applied.

This is the one source that speaks gRPC (pyproject.toml's `sources` contract allows this module
grpc, the generated stubs and sidecar.schema; no source knows the server or the engine).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import SplitResult, parse_qsl

import grpc

from flagsidecar.v1 import sync_pb2, sync_pb2_grpc
from sidecar.schema import message_to_document
from sidecar.syncset import CLIENT_CHANNEL_OPTIONS, HeldSet, OutOfStep, backoff_delays, described

from .document import JSON, Document, SourceListener

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT: Final = 10.0  # seconds for the first Fetch
DEFAULT_BACKOFF: Final = 0.2  # first reconnect delay (seconds), doubled up to BACKOFF_MAX
DEFAULT_BACKOFF_MAX: Final = 10.0
_QUERY_KEYS: Final = ("selector", "tls", "ca", "cert", "key", "authority", "timeout", "backoff_max")


class UpstreamURIError(ValueError):
    """A grpc:// URI that cannot name an upstream (registry.py turns it into SourceURIError)."""


@dataclass(frozen=True, slots=True)
class UpstreamOptions:
    target: str  # HOST:PORT
    selector: str = ""
    tls: bool = False
    ca: Path | None = None  # PEM roots to trust (default: the system's)
    cert: Path | None = None  # client certificate chain, for mutual TLS
    key: Path | None = None
    authority: str = ""  # the TLS server name, when it differs from HOST
    timeout: float = DEFAULT_TIMEOUT
    backoff_max: float = DEFAULT_BACKOFF_MAX


def parse_upstream_uri(uri: SplitResult) -> UpstreamOptions:
    """grpc://HOST:PORT[?selector=flag-set=NAME&timeout=S&backoff_max=S] or grpcs://... (TLS;
    also `tls=true` on grpc://) with `ca=PATH`, `cert=PATH&key=PATH`, `authority=NAME`."""
    text = uri.geturl()
    problems: list[str] = []
    if not uri.hostname or uri.port is None:
        problems.append("expected HOST:PORT, for example grpc://control-plane:8015")
    if uri.path not in ("", "/") or uri.fragment or uri.username or uri.password:
        problems.append("takes no path, fragment or user")
    query: dict[str, str] = {}
    for name, value in parse_qsl(uri.query, keep_blank_values=True):
        if name not in _QUERY_KEYS:
            problems.append(f"unknown option {name!r} (options: {', '.join(_QUERY_KEYS)})")
        elif name in query:
            problems.append(f"option {name!r} is given twice")
        query[name] = value
    tls = uri.scheme.lower() == "grpcs"
    if "tls" in query:
        if query["tls"].lower() not in ("true", "false", "1", "0"):
            problems.append(f"tls={query['tls']!r}: expected true or false")
        tls = tls or query["tls"].lower() in ("true", "1")
    seconds: dict[str, float] = {}
    for name, default in (("timeout", DEFAULT_TIMEOUT), ("backoff_max", DEFAULT_BACKOFF_MAX)):
        try:
            seconds[name] = float(query.get(name, default))
            if not seconds[name] > 0:
                raise ValueError
        except ValueError:
            problems.append(f"{name}={query[name]!r}: expected a positive number of seconds")
    if ("cert" in query) != ("key" in query):
        problems.append("cert and key go together (mutual TLS)")
    if not tls and any(name in query for name in ("ca", "cert", "key", "authority")):
        problems.append("ca, cert, key and authority are TLS options: use grpcs:// or tls=true")
    if problems:
        raise UpstreamURIError(f"{text!r}: " + "; ".join(problems))
    host = uri.hostname or ""
    return UpstreamOptions(
        target=f"[{host}]:{uri.port}" if ":" in host else f"{host}:{uri.port}",
        selector=query.get("selector", ""),
        tls=tls,
        ca=Path(query["ca"]) if query.get("ca") else None,
        cert=Path(query["cert"]) if query.get("cert") else None,
        key=Path(query["key"]) if query.get("key") else None,
        authority=query.get("authority", ""),
        timeout=seconds["timeout"],
        backoff_max=seconds["backoff_max"],
    )


def _read_pem(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        raise OSError(f"cannot read {what} {path}: {error.strerror or error}") from None


def held_document(held: HeldSet, origin: str) -> Document:
    """The held set as the store reads it: a JSON flag document, with the upstream's versions."""
    data = json.dumps(message_to_document(held.message()), separators=(",", ":")).encode()
    versions: Mapping[str, int] = {key: flag.version for key, flag in held.flags.items() if flag.version}
    return Document(data, JSON, str(held.revision), origin, versions)


class UpstreamSource:
    """Another flag-sidecar's flag set, followed over its Watch stream (see the module docstring)."""

    def __init__(self, options: UpstreamOptions, backoff: float = DEFAULT_BACKOFF) -> None:
        self.options = options
        self._delay = backoff_delays(backoff, options.backoff_max)
        self._lock = threading.Lock()  # the held set: the watch thread writes, fetch() reads
        self._held: HeldSet | None = None
        self._channel: grpc.Channel | None = None
        self._call: Any = None  # the open Watch call, cancelled by close()
        self._listener: SourceListener | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._lost = False

    @property
    def origin(self) -> str:
        scheme = "grpcs" if self.options.tls else "grpc"
        selection = f"?selector={self.options.selector}" if self.options.selector else ""
        return f"{scheme}://{self.options.target}{selection}"

    @property
    def revision(self) -> int:
        """The upstream revision held (0 before the first fetch)."""
        with self._lock:
            return 0 if self._held is None else self._held.revision

    # ------------------------------------------------------------ Source

    def fetch(self) -> Document:
        """The held set as a document; the first call asks the upstream (Fetch). Raises OSError."""
        with self._lock:
            held = self._held
            if held is not None:
                return held_document(held, self.origin)
        response = self._fetch()
        with self._lock:
            if self._held is None:  # the watch thread may have been quicker
                held = HeldSet()
                held.replace(response.flag_set, response.flag_set.revision, response.flag_set_name)
                self._held = held
            return held_document(self._held, self.origin)

    def _fetch(self) -> sync_pb2.FetchResponse:
        stub = sync_pb2_grpc.SyncServiceStub(self._connection())
        try:
            response: sync_pb2.FetchResponse = stub.Fetch(
                sync_pb2.FetchRequest(selector=self.options.selector),
                timeout=self.options.timeout,
                wait_for_ready=True,
            )
            return response
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise OSError(
                    f"no flag-sidecar answered within {self.options.timeout:g}s (is its --sync-listen "
                    f"on {self.options.target}? the wait is the URI's timeout=SECONDS)"
                ) from None
            raise OSError(f"the upstream flag-sidecar refused the Fetch ({described(error)})") from None

    def watch(self, listener: SourceListener) -> None:
        self._listener = listener
        self._thread = threading.Thread(target=self._run, name="upstream-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stopped.set()
        call = self._call
        if call is not None:
            call.cancel()
        if self._thread is not None:
            self._thread.join(5)
        if self._channel is not None:
            self._channel.close()

    # ------------------------------------------------------------ the stream

    def _connection(self) -> grpc.Channel:
        if self._channel is None:
            options: list[tuple[str, Any]] = [
                *CLIENT_CHANNEL_OPTIONS,
            ]
            if not self.options.tls:
                self._channel = grpc.insecure_channel(self.options.target, options=options)
            else:
                if self.options.authority:
                    options.append(("grpc.ssl_target_name_override", self.options.authority))
                credentials = grpc.ssl_channel_credentials(
                    root_certificates=_read_pem(self.options.ca, "CA bundle"),
                    private_key=_read_pem(self.options.key, "client key"),
                    certificate_chain=_read_pem(self.options.cert, "client certificate"),
                )
                self._channel = grpc.secure_channel(self.options.target, credentials, options=options)
        return self._channel

    def _run(self) -> None:
        attempt = 0
        while not self._stopped.is_set():
            try:
                if self._follow():
                    attempt = 0  # the stream brought something: the next outage starts afresh
            except grpc.RpcError as error:
                if self._stopped.is_set():
                    return
                self._report_lost(described(error))
            except OutOfStep as error:
                log.warning("%s: %s; asking for the whole set", self.origin, error)
                with self._lock:
                    if self._held is not None:
                        self._held.revision = 0
                continue
            except OSError as error:  # a TLS file that cannot be read
                self._report_lost(str(error))
            except Exception:  # the watcher must outlive any listener bug
                log.exception("%s: the sync stream failed", self.origin)
            if self._stopped.wait(self._delay(attempt)):
                return
            attempt += 1

    def _follow(self) -> bool:
        """Follow one Watch call until it ends (grpc.RpcError); True once it brought a message."""
        stub = sync_pb2_grpc.SyncServiceStub(self._connection())
        request = sync_pb2.WatchRequest(selector=self.options.selector, since_revision=self.revision)
        call = stub.Watch(request, wait_for_ready=False)
        self._call = call
        received = False
        try:
            if self._stopped.is_set():
                call.cancel()
            for response in call:
                received = True
                self._report_regained()
                if self._take(response):
                    self._changed()
                elif self._listener is not None and self.revision:
                    # A heartbeat or an empty delta: the stream vouches the held set is current.
                    self._listener.confirmed(str(self.revision))
        finally:
            self._call = None
        return received

    def _take(self, response: sync_pb2.WatchResponse) -> bool:
        """Apply one message to the held set; True when the set changed."""
        with self._lock:
            held = self._held if self._held is not None else HeldSet()
            if response.WhichOneof("update") == "full_set" and response.message:
                log.info("%s: %s", self.origin, response.message)
            changed = held.take(response)
            self._held = held
            return changed

    def _changed(self) -> None:
        if self._listener is not None:
            self._listener.changed()

    def _report_lost(self, why: str) -> None:
        if self._lost:
            return
        self._lost = True
        if self._listener is not None:
            self._listener.lost(
                "upstream_lost",
                f"upstream flag-sidecar {self.origin} is unreachable ({why}); reconnecting with backoff",
            )

    def _report_regained(self) -> None:
        if not self._lost:
            return
        self._lost = False
        if self._listener is not None:
            self._listener.regained(
                "upstream_regained",
                f"upstream flag-sidecar {self.origin} is back; catching up from revision {self.revision}",
            )

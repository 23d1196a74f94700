"""http:// and https://: a flag document served over HTTP, polled with conditional requests.

Every poll is a GET with `If-None-Match` (the last ETag) and `If-Modified-Since` (the last
`Last-Modified`), so an unchanged document is a 304 with no body: nothing is parsed or compiled,
nothing is logged, and the store only notes that its set is still current (`confirmed`). A 200 is
handed over only when its bytes differ from the last ones handed over (a server that sends no
validators, or a new ETag for the same bytes, costs a hash, not a reload).

The revision of a document is its ETag, or the SHA-1 of its bytes when the server sends none. Its
format comes from the Content-Type (JSON or YAML media types), else from the path's extension.

A failed poll (no connection, a timeout, a TLS error, any status but 200 and 304) is reported
once to the listener as `lost`, and its end once as `regained`; meanwhile the store serves the
last good set and the source retries with exponential backoff and jitter. Requests run on the
source's own thread (or, for the first document and a SIGHUP, on the caller's): evaluation never
waits on them.

A proxy named by the environment (http_proxy, https_proxy, no_proxy) is used as curl would.
urllib3 is imported only when an http(s) source is opened (registry.py), so a sidecar serving a
file does not pay for it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import random
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final
from urllib.parse import SplitResult, unquote, urlsplit

import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError, ProtocolError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.ssl_ import create_urllib3_context

from .document import JSON, YAML, Document, SourceListener, format_of_name

log = logging.getLogger(__name__)

USER_AGENT: Final = "flag-sidecar-source/1"
ACCEPT: Final = "application/yaml, application/json;q=0.9, */*;q=0.5"
# A flag document larger than this is refused before it is read whole (10,000 flags take a few MB).
MAX_DOCUMENT_BYTES: Final = 64 * 1024 * 1024
# Retries after a failure start at min(poll interval, this) and double up to max(poll interval,
# MAX_BACKOFF_SECONDS), each drawn between half of that and all of it (jitter, so that a fleet
# whose source came back does not poll in lockstep).
FIRST_BACKOFF_SECONDS: Final = 1.0
MAX_BACKOFF_SECONDS: Final = 30.0
MAX_REDIRECTS: Final = 5
_CHUNK = 64 * 1024

_JSON_TYPES = frozenset({"application/json", "text/json"})
_YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})


class HttpSourceError(OSError):
    """The document could not be had: the message says why (the caller names the source)."""


@dataclass(frozen=True, slots=True)
class ClientTls:
    """PEM files for https: a CA bundle to verify the server with (None: the system's), and a client
    certificate and key for a server that asks for one."""

    ca_file: Path | None = None
    cert: Path | None = None
    key: Path | None = None


def redacted(uri: SplitResult) -> str:
    """The URL as logs and problems show it: no user or password, and no query (it may hold a
    signature or a token)."""
    host = uri.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{uri.port}" if uri.port is not None else ""
    query = "?..." if uri.query else ""
    return f"{uri.scheme.lower()}://{host}{port}{uri.path or '/'}{query}"


def document_format(content_type: str | None, path: str) -> str:
    """JSON or YAML from a Content-Type (`application/json`, `application/yaml`, `+json`, ...), or
    from the path's extension for any other type (text/plain, application/octet-stream)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _JSON_TYPES or media.endswith("+json"):
        return JSON
    if media in _YAML_TYPES or media.endswith("+yaml"):
        return YAML
    return format_of_name(path)


def backoff_delay(failures: int, poll_interval: float, draw: Callable[[], float] = random.random) -> float:
    """Seconds before the next attempt after `failures` failures in a row (see MAX_BACKOFF_SECONDS)."""
    first = min(poll_interval, FIRST_BACKOFF_SECONDS)
    ceiling = min(max(poll_interval, MAX_BACKOFF_SECONDS), first * 2 ** min(failures - 1, 30))
    return ceiling / 2 + draw() * ceiling / 2


@dataclass(frozen=True, slots=True)
class _Fetched:
    """A 200's document and the validators to send next time."""

    document: Document
    digest: str
    etag: str | None
    last_modified: str | None


class HttpSource:
    """Fetches a flag document over HTTP(S) and polls it every `poll_interval` seconds."""

    def __init__(
        self,
        uri: SplitResult,
        *,
        poll_interval: float = 10.0,
        timeout: float = 10.0,
        tls: ClientTls | None = None,
    ) -> None:
        if uri.scheme.lower() not in ("http", "https") or not uri.hostname:
            raise ValueError(f"{redacted(uri)}: expected http://HOST/PATH or https://HOST/PATH")
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.tls = tls or ClientTls()
        # Without the user and password: they go in the Authorization header.
        netloc = uri.netloc.rpartition("@")[2]
        self.url = uri._replace(netloc=netloc, fragment="").geturl()
        self._origin = redacted(uri)
        self._path = unquote(uri.path)
        self._headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"}
        if uri.username is not None:
            credentials = f"{unquote(uri.username)}:{unquote(uri.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        self._pool: urllib3.PoolManager | None = None
        self._lock = threading.Lock()  # one request at a time (poll thread, SIGHUP); never evaluation's
        self._etag: str | None = None
        self._last_modified: str | None = None
        self._digest: str | None = None  # SHA-1 of the bytes last handed over
        self._revision = ""  # and their revision
        self._pending: Document | None = None  # a polled change, for the fetch() the store makes
        self._failure: str | None = None  # why the last request failed, until one succeeds
        self._failures = 0
        self._listener: SourceListener | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.requests = 0  # GETs sent (tests and debugging)
        self.not_modified = 0  # of which answered 304

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def failure(self) -> str | None:
        """Why the last request failed, while the source is down (None while it answers)."""
        return self._failure

    # ------------------------------------------------------------ Source

    def fetch(self) -> Document:
        """The document: the change a poll found, or a fresh GET. Raises HttpSourceError (OSError)."""
        with self._lock:
            pending, self._pending = self._pending, None
            if pending is not None:
                return pending
            try:
                fetched = self._get(conditional=False)
            except HttpSourceError as error:
                self._failed(error)
                raise
            assert fetched is not None  # an unconditional GET is never a 304
            self._keep(fetched)
        self._answered()
        return fetched.document

    def watch(self, listener: SourceListener) -> None:
        self._listener = listener
        self._thread = threading.Thread(target=self._run, name="flag-http-poll", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._pool is not None:
            self._pool.clear()

    # ------------------------------------------------------------ polling

    def poll(self) -> bool:
        """One conditional GET: True when the document changed (and was kept for fetch()). Failures
        and recoveries go to the listener. Raises HttpSourceError."""
        with self._lock:
            try:
                fetched = self._get(conditional=True)
            except HttpSourceError as error:
                self._failed(error)
                raise
            changed = fetched is not None and fetched.digest != self._digest
            if fetched is not None:
                # A new ETag for the same bytes is sent next time; the store's revision stays.
                self._etag, self._last_modified = fetched.etag, fetched.last_modified
                if changed:
                    self._keep(fetched)
                    self._pending = fetched.document
            revision = self._revision
        self._answered()
        if not changed and self._listener is not None:
            self._listener.confirmed(revision)
        return changed

    def _run(self) -> None:
        while not self._stopped.wait(self._next_delay()):
            try:
                changed = self.poll()
            except HttpSourceError:
                continue  # reported by poll(); the next attempt backs off
            if changed and self._listener is not None and not self._stopped.is_set():
                try:
                    self._listener.changed()
                except Exception:  # the poller must outlive any listener bug
                    log.exception("flag source change handler failed")

    def _next_delay(self) -> float:
        return self.poll_interval if not self._failures else backoff_delay(self._failures, self.poll_interval)

    def _keep(self, fetched: _Fetched) -> None:
        self._etag, self._last_modified = fetched.etag, fetched.last_modified
        self._digest, self._revision = fetched.digest, fetched.document.revision

    def _failed(self, error: HttpSourceError) -> None:
        self._failures += 1
        if self._failure is None:
            self._failure = str(error)
            if self._listener is not None:
                self._listener.lost(
                    "flag_source_unavailable", f"flag source {self._origin} cannot be had: {error}"
                )

    def _answered(self) -> None:
        self._failures = 0
        if self._failure is not None:
            self._failure = None
            if self._listener is not None:
                self._listener.regained(
                    "flag_source_available",
                    f"flag source {self._origin} answers again; its document is applied if it changed",
                )

    # ------------------------------------------------------------ one request

    def _get(self, conditional: bool) -> _Fetched | None:
        """GET the document; None for a 304. Raises HttpSourceError."""
        headers = dict(self._headers)
        if conditional and self._etag is not None:
            headers["If-None-Match"] = self._etag
        if conditional and self._last_modified is not None:
            headers["If-Modified-Since"] = self._last_modified
        self.requests += 1
        started = time.monotonic()
        try:
            try:
                response = self._request(headers)
            except ProtocolError:
                # A kept-alive connection the server had closed between polls: once more, afresh.
                response = self._request(headers)
            reusable = response.status == 304
            try:
                if response.status == 304 and conditional:
                    self.not_modified += 1
                    return None
                if response.status != 200:
                    raise HttpSourceError(
                        f"the server answered {response.status} {response.reason or ''}".rstrip()
                    )
                data = self._body(response, started)
                reusable = True
            finally:
                if not reusable:  # an unread body (an error page, a refused document) stays unread
                    response.close()
                response.release_conn()
        except HTTPError as error:
            raise HttpSourceError(_described(error, self.timeout)) from None
        etag = response.headers.get("ETag") or None
        digest = hashlib.sha1(data).hexdigest()
        document = Document(
            data,
            document_format(response.headers.get("Content-Type"), self._path),
            etag or digest,
            self._origin,
        )
        return _Fetched(document, digest, etag, response.headers.get("Last-Modified") or None)

    def _request(self, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        return self._connections().request(
            "GET",
            self.url,
            headers=headers,
            preload_content=False,
            decode_content=True,
            redirect=True,
        )

    def _body(self, response: urllib3.BaseHTTPResponse, started: float) -> bytes:
        """The response body, refused past MAX_DOCUMENT_BYTES or when reading it takes longer than
        the timeout in all (each read is bounded on its own, a trickle would not be)."""
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_DOCUMENT_BYTES:
            raise HttpSourceError(f"the document is larger than {MAX_DOCUMENT_BYTES} bytes")
        chunks: list[bytes] = []
        size = 0
        # read1: what has arrived, so that the clock is checked while a slow body trickles in.
        while chunk := response.read1(_CHUNK):
            size += len(chunk)
            if size > MAX_DOCUMENT_BYTES:
                raise HttpSourceError(f"the document is larger than {MAX_DOCUMENT_BYTES} bytes")
            if time.monotonic() - started > self.timeout:
                raise HttpSourceError(f"timed out after {self.timeout:g}s")
            chunks.append(chunk)
        return b"".join(chunks)

    def _connections(self) -> urllib3.PoolManager:
        if self._pool is None:
            proxy = proxy_for(self.url)
            if proxy is not None:
                log.info(
                    "fetching %s through the proxy %s (from the environment)",
                    self._origin,
                    redacted(urlsplit(proxy)),
                    extra={"event": "flag_source_proxy"},
                )
            manager = urllib3.PoolManager if proxy is None else partial(urllib3.ProxyManager, proxy)
            self._pool = manager(
                num_pools=2,
                maxsize=1,
                timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
                # Redirects followed; every error is ours to report and back off from.
                retries=urllib3.Retry(
                    total=None, connect=0, read=0, status=0, other=0, redirect=MAX_REDIRECTS
                ),
                ssl_context=self._tls_context(),
            )
        return self._pool

    def _tls_context(self) -> ssl.SSLContext:
        """Server certificates verified (against the CA file, or the system's), hostnames checked by
        urllib3; the client certificate, if any. The files are read here, on the first request, so
        a missing one is this source's error (logged, reported down) like any other."""
        tls = self.tls
        context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
        what = "the system's CA certificates"
        try:
            if tls.ca_file is not None:
                what = f"TLS CA bundle {tls.ca_file}"
                context.load_verify_locations(cafile=str(tls.ca_file))
            else:
                context.load_default_certs()
            if tls.cert is not None:
                what = f"TLS client certificate {tls.cert} or key {tls.key}"
                context.load_cert_chain(str(tls.cert), str(tls.key) if tls.key is not None else None)
        except (OSError, ssl.SSLError) as error:
            raise HttpSourceError(f"cannot read {what}: {error.strerror or error}") from None
        return context


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url` (http_proxy, https_proxy, no_proxy, as curl and
    Python's urllib read them), or None."""
    split = urlsplit(url)
    proxy = urllib.request.getproxies().get(split.scheme.lower())
    if not proxy or urllib.request.proxy_bypass(split.netloc.rpartition("@")[2]):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _described(error: HTTPError, timeout: float) -> str:
    """What went wrong, as a person reading the log needs it (urllib3's messages name its objects)."""
    if isinstance(error, MaxRetryError) and error.reason is not None:
        reason = error.reason
        if isinstance(reason, HTTPError):
            return _described(reason, timeout)
        return str(reason)
    if isinstance(error, NewConnectionError):
        cause = error.__cause__ or error.__context__
        text = getattr(cause, "strerror", None) or str(cause or error).rpartition(": ")[2]
        return f"cannot connect ({text})"
    if isinstance(error, Urllib3Timeout):
        return f"timed out after {timeout:g}s"
    if isinstance(error, SSLError):
        return f"TLS error ({error})"
    if isinstance(error, ProtocolError):
        return f"connection broken ({error.args[0] if error.args else error})"
    return f"{type(error).__name__} ({error})"

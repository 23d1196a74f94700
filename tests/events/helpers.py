"""Real components for the event tests: an HTTP receiver, recording and stuck exporters."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sidecar.engine.model import ErrorCode, Evaluation, Reason
from sidecar.events import Event, FeatureEvent


def evaluation(
    flag: str = "new-checkout", variant: str = "on", value: Any = True, version: int = 3
) -> Evaluation:
    return Evaluation(flag, value, variant, Reason.TARGETING_MATCH, version)


def error_evaluation(flag: str = "missing") -> Evaluation:
    return Evaluation(flag, None, "", Reason.ERROR, 0, ErrorCode.FLAG_NOT_FOUND, "flag 'missing' not found")


def feature_events(n: int, prefix: str = "u") -> list[FeatureEvent]:
    return [FeatureEvent.from_evaluation(evaluation(), f"{prefix}{i}") for i in range(n)]


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event_ids(self) -> list[str]:
        return [e["eventId"] for e in self.json["events"]]


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1:<free port> recording every POST.

    `respond` decides each answer: a function of the request number (0-based) returning
    (status, headers). Default: 200.
    """

    respond: Callable[[int], tuple[int, dict[str, str]]] = lambda _n: (200, {})
    requests: list[Request] = field(default_factory=list)
    delay: float = 0.0

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender died mid-body (a SIGKILL test): like any real server, take nothing
                    # and answer nothing; the sender never saw this request succeed.
                    self.close_connection = True
                    return
                with receiver.lock:
                    number = len(receiver.requests)
                    status, headers = receiver.respond(number)
                    receiver.requests.append(Request(self.path, dict(self.headers), body, status))
                if receiver.delay:
                    time.sleep(receiver.delay)
                reply = b'{"ok":true}' if status < 300 else b'{"error":"nope"}'
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/events"

    def delivered(self) -> list[dict[str, Any]]:
        """Events of every request answered 2xx, in arrival order (duplicates included)."""
        with self.lock:
            done = [r for r in self.requests if 200 <= r.status < 300]
        return [e for r in done for e in r.json["events"]]

    def delivered_ids(self) -> list[str]:
        return [e["eventId"] for e in self.delivered()]

    def attempted_ids(self) -> set[str]:
        with self.lock:
            return {i for r in self.requests for i in r.event_ids}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RecordingExporter:
    """Keeps every exported batch; optionally fails the first `fail` calls."""

    def __init__(self, is_bulk: bool = True, fail: int = 0, error: Exception | None = None) -> None:
        self.is_bulk = is_bulk
        self.batches: list[list[Event]] = []
        self.calls = 0
        self.count = 0  # events exported so far: cheap to poll, unlike `events`
        self.fail = fail
        self.error = error or RuntimeError("sink down")
        self.lock = threading.Lock()

    def export(self, events: Sequence[Event]) -> None:
        with self.lock:
            self.calls += 1
            if self.calls <= self.fail:
                raise self.error
            self.batches.append(list(events))
            self.count += len(events)

    @property
    def events(self) -> list[Event]:
        with self.lock:
            return [e for b in self.batches for e in b]

    @property
    def ids(self) -> list[str]:
        return [e.event_id for e in self.events]


class StuckExporter:
    """Blocks in export until released: a sink that hangs without a timeout."""

    is_bulk = True

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list[Event]] = []

    def export(self, events: Sequence[Event]) -> None:
        self.entered.set()
        self.release.wait()
        self.batches.append(list(events))

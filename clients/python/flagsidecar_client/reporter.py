"""The FeatureEvents of local evaluations, sent to the sidecar's EventService in batches.

`add` is the hot path: one bounded-length check and a deque append, no lock, no I/O. A thread
of its own takes batches of up to `batch_size` events every `flush_interval` (sooner when a batch
is full) and sends them with EventService.ReportEvaluations. While the sidecar is unreachable the
events wait in the buffer and the sends are retried with backoff and jitter; once `max_buffered`
events wait, every new one is dropped and counted (`dropped`): memory stays bounded, the count
says what the exporters will not see. A RESOURCE_EXHAUSTED answer (the sidecar's buffers are
full) keeps what it did not accept for the next try, as Track's client does.

The sender runs in the application's process and takes its interpreter's time, so an event costs
it little: the fields an event shares with every other event of the same answer (flag, variant,
value, version, reason, error) are encoded once per answer and kept; per event only the id, the
user, the kind and the time are written, by hand, as protobuf's wire format, and the request is
sent as those bytes.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import json_format

from flagsidecar.v1 import event_pb2
from sidecar.syncset import backoff_delays

from .evaluation import Evaluation

log = logging.getLogger(__name__)

__all__ = ["EventReporter"]

SDK_DEFAULT_VARIATION = "SdkDefault"
ACCEPTED_METADATA = "accepted-count"
REPORT_METHOD = "/flagsidecar.v1.EventService/ReportEvaluations"
_MAX_ENCODED_ANSWERS = 4096  # answers whose shared fields are kept (a few sets' worth)
# One buffered event: the engine's answer, the user's id, anonymous or not, when, its number.
Pending = tuple[Evaluation, str, bool, float, int]
# Event ids as the sidecar makes them (a random per-process prefix and a counter), fixed when the
# event is queued: a batch sent again after a lost answer carries the same ids, which receivers
# use to drop duplicates.
_TOKEN = os.urandom(12).hex()


class EventReporter:
    def __init__(
        self,
        channel: grpc.Channel,
        *,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_buffered: int = 10_000,
        backoff_max: float = 10.0,
        timeout: float = 5.0,
    ) -> None:
        self._report: grpc.UnaryUnaryMultiCallable[bytes, event_pb2.ReportEvaluationsResponse] = (
            channel.unary_unary(
                REPORT_METHOD,
                request_serializer=None,
                response_deserializer=event_pb2.ReportEvaluationsResponse.FromString,
            )
        )
        # id(answer) -> (answer, its encoded shared fields); the answer is kept so its id stays its.
        self._encoded: dict[int, tuple[Evaluation, bytes]] = {}
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_buffered = max_buffered
        self._timeout = timeout
        self._delay = backoff_delays(0.2, backoff_max)
        self._buffer: collections.deque[Pending] = collections.deque()
        self._numbers = itertools.count(1)
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._idle = threading.Condition()
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._count_lock = threading.Lock()
        self.dropped = 0  # events never sent: the buffer was full (or the sidecar refused them)
        self.sent = 0  # events the sidecar accepted
        self.last_error = ""

    # ------------------------------------------------------------ hot path

    def add(self, answer: Evaluation, user_id: str, anonymous: bool) -> None:
        """Queue one evaluation's event; never blocks. A full buffer drops it (and counts it)."""
        buffer = self._buffer
        if len(buffer) >= self._max_buffered:
            with self._count_lock:  # only on this rare path: application threads race here
                self.dropped += 1
            return
        buffer.append((answer, user_id, anonymous, time.time(), next(self._numbers)))
        if len(buffer) == self._batch_size:
            self._wake.set()

    # ------------------------------------------------------------ lifecycle

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="flag-sidecar-events", daemon=True)
        self._thread.start()

    def flush(self, timeout: float = 5.0) -> bool:
        """Send what is buffered now; True once the buffer is empty and nothing is in flight."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._idle:
            while self._buffer or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.set()
                self._idle.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Flush (up to `timeout`), stop the thread; what could not be sent is counted as dropped."""
        if self._thread is not None:
            self.flush(timeout)
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        left = len(self._buffer)
        if left:
            with self._count_lock:
                self.dropped += left
            self._buffer.clear()
            log.warning(
                "flag-sidecar client: %d evaluation events not sent at close (%s)", left, self.last_error
            )

    # ------------------------------------------------------------ the sender thread

    def _run(self) -> None:
        failures = 0
        while not self._stopped.is_set():
            self._wake.wait(self._flush_interval if failures == 0 else self._delay(failures))
            self._wake.clear()
            while self._buffer and not self._stopped.is_set():
                if self._send_batch():
                    failures = 0
                else:
                    failures += 1
                    break
            with self._idle:
                self._idle.notify_all()

    def _send_batch(self) -> bool:
        """Send the oldest batch; False when it must be tried again later."""
        buffer = self._buffer
        batch: list[Pending] = []
        with self._idle:
            while buffer and len(batch) < self._batch_size:
                batch.append(buffer.popleft())
            self._in_flight = len(batch)
        try:
            request = b"".join([self._event(*pending) for pending in batch])
            try:
                accepted = self._report(request, timeout=self._timeout).accepted
            except grpc.RpcError as error:
                return self._failed(batch, error)
            self.sent += accepted
            return True
        finally:
            with self._idle:
                self._in_flight = 0
                self._idle.notify_all()

    def _failed(self, batch: list[Pending], error: grpc.RpcError) -> bool:
        code: Callable[[], Any] | None = getattr(error, "code", None)
        status = code() if code is not None else None
        details = error.details() if hasattr(error, "details") else str(error)
        self.last_error = f"{getattr(status, 'name', 'error')}: {details}"
        accepted = 0
        if status == grpc.StatusCode.RESOURCE_EXHAUSTED:
            trailers: Any = error.trailing_metadata() if hasattr(error, "trailing_metadata") else ()
            accepted = next((int(value) for key, value in trailers or () if key == ACCEPTED_METADATA), 0)
            self.sent += accepted
        elif status == grpc.StatusCode.INVALID_ARGUMENT:
            # Never accepted however often it is sent: drop it, counted, rather than block the rest.
            with self._count_lock:
                self.dropped += len(batch)
            log.error("flag-sidecar client: the sidecar refused %d events (%s)", len(batch), self.last_error)
            return True
        # Back at the front, in order, for the next try (the bound applies to new events).
        self._buffer.extendleft(reversed(batch[accepted:]))
        log.debug("flag-sidecar client: events not sent (%s); retrying", self.last_error)
        return False

    def _event(self, answer: Evaluation, user_id: str, anonymous: bool, when: float, number: int) -> bytes:
        """One ReportEvaluationsRequest.events entry (field 1), encoded."""
        shared = self._encoded.get(id(answer))
        if shared is None or shared[0] is not answer:
            if len(self._encoded) >= _MAX_ENCODED_ANSWERS:
                self._encoded.clear()
            shared = (answer, _shared_fields(answer).SerializeToString())
            self._encoded[id(answer)] = shared
        event_id = f"{_TOKEN}-{number:x}".encode()
        user = user_id.encode("utf-8", "surrogatepass")
        event = b"".join(
            (
                b"\x0a",
                _varint(len(event_id)),
                event_id,  # 1: event_id
                b"\x1a",
                _varint(len(user)),
                user,  # 3: user_key
                _ANONYMOUS_FIELD if anonymous else b"",  # 4: context_kind ("user" when absent)
                b"\x48",
                _varint(int(when)),  # 9: creation_date
                shared[1],
            )
        )
        return b"\x0a" + _varint(len(event)) + event


def _varint(number: int) -> bytes:
    out = bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


_ANONYMOUS_FIELD = b"\x22" + _varint(len(b"anonymousUser")) + b"anonymousUser"


def _shared_fields(answer: Evaluation) -> event_pb2.FeatureEvent:
    """The fields every event of this answer has (flag, variant, value, version, reason, error)."""
    served = answer.error_code is None and answer.has_value
    message = event_pb2.FeatureEvent(
        flag_key=answer.flag_key,
        variation=answer.variant if served else SDK_DEFAULT_VARIATION,
        sdk_default=not served,
        flag_version=answer.flag_version,
        reason=int(answer.reason),  # type: ignore[arg-type]
    )
    if served:
        json_format.ParseDict(answer.value, message.value)
    if answer.error_code is not None:
        message.error_code = int(answer.error_code)  # type: ignore[assignment]
        message.error_message = answer.error_message
    return message

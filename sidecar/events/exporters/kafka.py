"""The Kafka exporter: one message per event, on confluent-kafka (librdkafka), bulk.

`export(batch)` produces every event of the batch and then waits for librdkafka's delivery
reports: it returns only once the broker has acknowledged every message (acks=all, idempotent
producer), so the scheduler counts an event as exported only after that. Otherwise it raises and
the scheduler keeps the batch (memory, then the spool) and retries it, which is also how the spool
replays to Kafka after a restart.

- Message: value = the event's JSON (go-feature-flag's FeatureEvent names plus eventId), or with
  `format=protobuf` a serialized flagsidecar.v1.ExportedEvent (kafka_payload.py), encoded
  ENCODE_CHUNK events at a time between the produce calls; key = the user key (`key=user`, the
  default: one user's events stay in order in one partition), the flag key (`key=flag`) or none;
  header `eventId` = the event's id, for de-duplication, and `content-type` = the format.
- Events of a failed batch that the broker did acknowledge are remembered (bounded), and skipped
  when the batch is retried in this process: a retry re-sends only what was not acknowledged.
- Errors: a missing topic, a failed authentication or authorisation and an unreachable broker are
  logged by the scheduler with a message that says so, and retried (the events are kept: the
  operator can fix the cause). An event over max_message_bytes cannot be delivered by retrying:
  produce() refuses it and that event alone is dead-lettered. Each failed attempt is counted by
  `reason`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..exporter import PermanentExportError, RetryableExportError
from ..feature_event import Event
from ..options import Options
from .kafka_payload import CONTENT_TYPE_HEADER, CONTENT_TYPES, ENCODERS, FORMATS, event_id_of

# An optional dependency (`pip install flag-sidecar[kafka]`), imported by the first KafkaExporter:
# librdkafka is a large library that a sidecar without a Kafka exporter should not load.
confluent_kafka: Any = None


def _import_client() -> bool:
    """Import confluent_kafka once; False where the extra is not installed."""
    global confluent_kafka
    if confluent_kafka is None:
        try:
            import confluent_kafka as client
        except ImportError:  # pragma: no cover - exercised only where the extra is not installed
            return False
        confluent_kafka = client
    return True


EVENT_ID_HEADER = "eventId"
KEYS = ("user", "flag", "none")
COMPRESSIONS = ("lz4", "zstd", "snappy", "gzip", "none")
# Events encoded per step of export()'s produce loop (a tenth of the serve default's batch).
ENCODE_CHUNK = 1_000
REMEMBERED_ACKS = 200_000  # acknowledged ids of failed batches kept for their retry

# The options passed through to librdkafka under their own names (SASL and TLS).
PASSTHROUGH = {
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_username": "sasl.username",
    "sasl_password": "sasl.password",
    "ssl_ca_location": "ssl.ca.location",
    "ssl_certificate_location": "ssl.certificate.location",
    "ssl_key_location": "ssl.key.location",
    "ssl_key_password": "ssl.key.password",
}


class KafkaExporter:
    """Produces each event as one message to `topic` and waits for the broker's acknowledgement."""

    is_bulk = True

    def __init__(
        self,
        brokers: str,
        topic: str,
        *,
        key: str = "user",
        timeout: float = 30.0,
        compression: str = "lz4",
        linger_ms: float = 20.0,
        max_message_bytes: int = 1_000_000,
        format: str = "json",
        config: Mapping[str, Any] | None = None,
    ) -> None:
        if not _import_client():
            raise ValueError("the kafka exporter needs confluent-kafka: pip install flag-sidecar[kafka]")
        if key not in KEYS:
            raise ValueError(f"key={key!r}: expected one of {', '.join(KEYS)}")
        if format not in FORMATS:
            raise ValueError(f"format={format!r}: expected one of {', '.join(FORMATS)}")
        self.brokers = brokers
        self.topic = topic
        self.key = key
        self.timeout = timeout
        self.max_message_bytes = max_message_bytes
        self.format = format
        self.encode: Callable[[Sequence[Event]], list[bytes]] = ENCODERS[format]
        self._content_type = CONTENT_TYPES[format]
        self.config: dict[str, Any] = {
            "bootstrap.servers": brokers,
            "client.id": "flag-sidecar",
            # Exactly one copy per produce call in the log, in order, even across broker retries.
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": compression,
            "linger.ms": linger_ms,
            # An event over this is refused by produce() itself: dead-lettered alone. Batches stay
            # within it too, so a broker with the default limit (1 MiB) never refuses a batch.
            "message.max.bytes": max_message_bytes,
            "batch.size": max_message_bytes,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000,
            # A message not acknowledged within the export timeout fails its delivery report: the
            # scheduler then keeps the batch (memory or spool) and retries it.
            "message.timeout.ms": max(1, int(timeout * 1000)),
            # Unknown topics fail fast; the scheduler's retry is the patience.
            "topic.metadata.propagation.max.ms": max(1, min(int(timeout * 1000), 10_000)),
            # Successes need no callback: flush() returning 0 means every message was reported.
            "delivery.report.only.error": True,
            "on_delivery": self._on_delivery,
            "error_cb": self._on_error,
            # librdkafka logs every failed reconnect (many a second while a broker is down); its
            # errors reach error_cb and the scheduler's rate-limited log instead. Critical ones stay.
            "logger": logging.getLogger("sidecar.events.kafka"),
            "log_level": 2,
            **(config or {}),
        }
        self._producer: Any = None
        self._lock = threading.Lock()  # the librdkafka callbacks vs. export()
        self._failures: list[tuple[Any, str | None]] = []
        self._client_error: Any = None  # the last error librdkafka reported outside a delivery
        self._auth_error: Any = None
        self._fatal = False
        self._topic_ok = False
        self._acked: OrderedDict[str, None] = OrderedDict()  # acknowledged ids of failed batches
        self.skipped = 0  # events not re-sent because the broker had acknowledged them already

    # ---- librdkafka callbacks (run inside poll/flush, on the export thread) -----------------

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is None:
            return
        event_id = None
        for name, value in msg.headers() or ():
            if name == EVENT_ID_HEADER:
                event_id = value.decode() if isinstance(value, bytes) else value
        if event_id is None:
            # A failed message's report may come without its headers: the value has the id (when
            # None, unknown: then no event of the batch counts as acknowledged).
            event_id = event_id_of(self.format, msg.value())
        with self._lock:
            self._failures.append((err, event_id))

    def _on_error(self, err: Any) -> None:
        with self._lock:
            self._client_error = err
            if _reason(err) in ("authentication", "authorization"):
                self._auth_error = err  # kept until an export succeeds: it explains the timeouts
            if err.fatal():
                self._fatal = True

    # ---- export ------------------------------------------------------------------------------

    def _ensure_producer(self) -> Any:
        if self._producer is not None and self._fatal:
            # A fatal error (e.g. the idempotent producer's sequence broke) makes the instance
            # useless: start over with a new one; the batch is retried by the scheduler.
            self._discard_producer()
        if self._producer is None:
            self._fatal = False
            self._producer = confluent_kafka.Producer(self.config)
            self._topic_ok = False
        return self._producer

    def _discard_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.purge()
            producer.flush(0)

    def _check_topic(self, producer: Any) -> None:
        """Once per producer: say clearly that the topic is missing or the broker unreachable."""
        if self._topic_ok:
            return
        try:
            metadata = producer.list_topics(self.topic, timeout=min(self.timeout, 10.0))
        except confluent_kafka.KafkaException as exc:
            producer.poll(0)  # serves error_cb: an authentication failure explains the timeout
            raise self._retryable(exc.args[0] if exc.args else None, "no metadata") from exc
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            code = topic.error.code() if topic is not None and topic.error is not None else None
            if code in (
                confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART,
                confluent_kafka.KafkaError._UNKNOWN_TOPIC,
            ):
                raise RetryableExportError(
                    f"kafka {self.brokers}: topic {self.topic!r} does not exist (create it, or let the "
                    "brokers auto-create topics); events are kept and retried",
                    reason="unknown_topic",
                )
            raise self._retryable(topic.error if topic is not None else None, "topic metadata")
        self._topic_ok = True

    def export(self, events: Sequence[Event]) -> None:
        if not events:
            return
        with self._lock:
            self._failures = []
            self._client_error = None
        producer = self._ensure_producer()
        self._check_topic(producer)
        acked = self._acked
        todo = [e for e in events if e.event_id not in acked] if acked else list(events)
        if len(todo) < len(events):
            self.skipped += len(events) - len(todo)
        rejected: list[tuple[Event, str]] = []
        unqueued: list[Event] = []  # librdkafka's queue stayed full past the deadline: not sent at all
        deadline = time.monotonic() + self.timeout
        produce = producer.produce
        topic = self.topic
        key_of = self._key_function()
        content_type = (CONTENT_TYPE_HEADER, self._content_type)
        for event, value in self._encoded(todo):
            if unqueued:
                # Past the deadline with the queue still full: the rest wait for the retry too.
                unqueued.append(event)
                continue
            headers = [(EVENT_ID_HEADER, event.event_id), content_type]
            while True:
                try:
                    produce(topic, value, key_of(event), headers=headers)
                    break
                except BufferError:
                    # librdkafka's queue is full: let it send, then try again (bounded by the timeout).
                    producer.poll(0.05)
                    if time.monotonic() > deadline:
                        unqueued.append(event)
                        break
                except confluent_kafka.KafkaException as exc:
                    error = exc.args[0]
                    if self._too_large(error):
                        rejected.append((event, f"{error.str()} ({len(value)} bytes)"))
                        break
                    # What was produced so far waits for its reports first (see below).
                    producer.flush(self.timeout + 5.0)
                    self._discard_producer()
                    raise self._retryable(error, "produce") from exc
        # Every message gets its report within message.timeout.ms of its produce() call (a
        # timeout is a report too): wait for all of them. librdkafka then resets the idempotent
        # producer's sequence itself, which purging in-flight messages would break (the broker
        # answers OutOfOrderSequence after a restart).
        remaining = producer.flush(self.timeout + max(0.0, deadline - time.monotonic()) + 5.0)
        if remaining:
            # Still no report (librdkafka stuck?): take them out of its queue, reported as
            # purged, so that nothing of this batch is sent behind the retry's back.
            producer.purge()
            producer.flush(0)
            remaining = len(producer)
        with self._lock:
            failures, self._failures = self._failures, []
            client_error = self._client_error
        failed_ids = {event_id for _err, event_id in failures}
        # The worst failure decides the reason reported for the attempt.
        retry_error: Any = None
        for err, _event_id in failures:
            # (A broker that reports a message too large refused a whole batch of messages: the
            # topic's max.message.bytes is below max_message_bytes. Retried: a setting to fix.)
            if err.code() == confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART:
                self._topic_ok = False
            if retry_error is None or retry_error.code() == confluent_kafka.KafkaError._PURGE_QUEUE:
                retry_error = err
        # What never entered the queue is retried, and never counted as acknowledged.
        rejected_ids = {e.event_id for e, _reason in rejected} | {e.event_id for e in unqueued}
        if unqueued and retry_error is None and not remaining:
            for event in todo:
                if event.event_id not in rejected_ids:
                    self._remember(event.event_id)
            raise RetryableExportError(
                f"kafka {self.brokers}: {len(unqueued)} events not queued: the producer's queue "
                f"stayed full for {self.timeout:g} s (raise config=queue.buffering.max.messages:N, or "
                "the brokers are slow); events are kept and retried",
                reason="queue_full",
            )
        if retry_error is not None or remaining or unqueued:
            if not remaining and None not in failed_ids:
                # Every message was reported, each failure with its id: the others were acknowledged.
                for event in todo:
                    if event.event_id not in failed_ids and event.event_id not in rejected_ids:
                        self._remember(event.event_id)
            # The retry gets a new producer (a new producer id): the old one's sequence numbers
            # have gaps where messages failed, which a restarted broker answers with
            # OutOfOrderSequence for every later message.
            self._discard_producer()
            raise self._retryable(retry_error or client_error, f"{remaining} messages unconfirmed")
        if rejected:
            # Everything else is acknowledged: only the rejected events go to the dead-letter file.
            for event in todo:
                if event.event_id not in rejected_ids:
                    self._remember(event.event_id)
            reasons = "; ".join(sorted({reason for _e, reason in rejected}))
            raise PermanentExportError(
                f"kafka topic {self.topic!r}: {len(rejected)} events rejected: {reasons}",
                reason="message_too_large",
                events=[e for e, _reason in rejected],
            )
        self._auth_error = None
        if acked:
            for event in events:
                acked.pop(event.event_id, None)

    def _encoded(self, events: Sequence[Event]) -> Iterator[tuple[Event, bytes]]:
        """Each event with its value, encoded a chunk at a time: librdkafka sends (and the broker
        appends) the first chunk's messages while the next is encoded; a whole batch encoded up
        front left the broker idle through it."""
        encode = self.encode
        for start in range(0, len(events), ENCODE_CHUNK):
            chunk = events[start : start + ENCODE_CHUNK]
            yield from zip(chunk, encode(chunk), strict=True)

    def _key_function(self) -> Callable[[Event], str | None]:
        if self.key == "user":
            return _user_key
        if self.key == "flag":
            return _flag_key
        return _no_key

    def _remember(self, event_id: str) -> None:
        self._acked[event_id] = None
        if len(self._acked) > REMEMBERED_ACKS:
            self._acked.popitem(last=False)

    @staticmethod
    def _too_large(error: Any) -> bool:
        # Raised by produce() (over message.max.bytes) and reported by the broker alike.
        return error is not None and error.code() == confluent_kafka.KafkaError.MSG_SIZE_TOO_LARGE

    def _retryable(self, error: Any, what: str) -> RetryableExportError:
        reason = _reason(error)
        if reason in ("broker_unreachable", "unconfirmed") and self._auth_error is not None:
            # Messages time out because the broker refuses the credentials: say that instead.
            error, reason = self._auth_error, _reason(self._auth_error)
        elif reason == "message_too_large":
            return RetryableExportError(
                f"kafka topic {self.topic!r}: the broker refused a batch as too large: the topic's "
                f"max.message.bytes is below the exporter's max_message_bytes={self.max_message_bytes}"
                "; lower it (events are kept and retried)",
                reason=reason,
            )
        hint = {
            "authentication": " (check sasl_username/sasl_password/sasl_mechanism and the TLS options)",
            "authorization": f" (the principal may not write to topic {self.topic!r})",
            "unknown_topic": f" (topic {self.topic!r} does not exist)",
            "broker_unreachable": "",
        }.get(reason, "")
        detail = error.str() if error is not None and hasattr(error, "str") else str(error or what)
        return RetryableExportError(f"kafka {self.brokers}: {detail}{hint}", reason=reason)

    def close(self) -> None:
        """Give up what librdkafka still holds (the scheduler has spooled those batches)."""
        self._discard_producer()

    @staticmethod
    def check_options(options: Options) -> None:
        """The options whose values are known without the client, checked when the command line
        or config file is read (an option error: exit 2), before anything starts."""
        options.choice("key", KEYS, "user")
        options.choice("compression", COMPRESSIONS, "lz4")
        options.choice("format", FORMATS, "json")

    @classmethod
    def from_options(cls, options: Options) -> KafkaExporter:
        brokers = options.required("brokers").replace(";", ",")
        topic = options.required("topic")
        key = options.choice("key", KEYS, "user")
        timeout = options.real("timeout", 30.0, minimum=0.1)
        compression = options.choice("compression", COMPRESSIONS, "lz4")
        linger_ms = options.real("linger_ms", 20.0, minimum=0.0)
        max_message_bytes = options.integer("max_message_bytes", 1_000_000, minimum=1000)
        format = options.choice("format", FORMATS, "json")
        config: dict[str, Any] = {}
        for option, name in PASSTHROUGH.items():
            value = options.string(option)
            if value is not None:
                config[name] = value
        config.update(options.pairs("config"))
        try:
            return cls(
                brokers,
                topic,
                key=key,
                timeout=timeout,
                compression=compression,
                linger_ms=linger_ms,
                max_message_bytes=max_message_bytes,
                format=format,
                config=config,
            )
        except ValueError as exc:
            raise options.error(str(exc)) from None


def _user_key(event: Event) -> str:
    return event.user_key


def _flag_key(event: Event) -> str:
    return event.key


def _no_key(event: Event) -> None:
    return None


def _reason(error: Any) -> str:
    """A short, stable label for the metrics (flag_sidecar_events_export_errors_total)."""
    if confluent_kafka is None or error is None or not hasattr(error, "code"):
        return "unconfirmed"
    e = confluent_kafka.KafkaError
    code = error.code()
    if code in (e._AUTHENTICATION, e.SASL_AUTHENTICATION_FAILED, e._SSL):
        return "authentication"
    if code in (e.TOPIC_AUTHORIZATION_FAILED, e.CLUSTER_AUTHORIZATION_FAILED):
        return "authorization"
    if code in (e.UNKNOWN_TOPIC_OR_PART, e._UNKNOWN_TOPIC):
        return "unknown_topic"
    if code == e.MSG_SIZE_TOO_LARGE:
        return "message_too_large"
    if code in (e._MSG_TIMED_OUT, e._TIMED_OUT, e._ALL_BROKERS_DOWN, e._TRANSPORT, e._PURGE_QUEUE):
        return "broker_unreachable"
    return "kafka_error"

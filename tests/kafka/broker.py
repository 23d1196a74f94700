"""A real single-node Kafka broker (KRaft: broker and controller in one JVM) for the tests and the
benchmark: Apache Kafka's jars from Maven Central (tests/kafka/pom.xml, pinned), data in a
temporary directory, free loopback ports, started, stopped and restarted on the same ports.

Listeners: PLAINTEXT (the tests' default) and SASL_PLAINTEXT with mechanism PLAIN and one user,
SASL_USER / SASL_PASSWORD (the authentication tests).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic

from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
POM = Path(__file__).with_name("pom.xml")
JARS = REPO / ".cache" / "kafka"
SASL_USER = "sidecar"
SASL_PASSWORD = "sidecar-secret"
LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
"""


class BrokerUnavailable(RuntimeError):
    """The broker cannot be run here (no java or mvn, or the jars cannot be fetched)."""


def ensure_jars() -> Path:
    """Copy the pinned jars into .cache/kafka once (a stamp holds the pom's hash)."""
    stamp = JARS / ".pom-sha256"
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return JARS
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            raise BrokerUnavailable(f"{tool} is not installed: it is needed to run a Kafka broker")
    shutil.rmtree(JARS, ignore_errors=True)
    result = subprocess.run(
        ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies", f"-DoutputDirectory={JARS}"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise BrokerUnavailable(
            f"mvn could not fetch the Kafka jars:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    stamp.write_text(digest)
    return JARS


class KafkaBroker:
    def __init__(self, directory: Path, heap: str = "512m", fast_start: bool = True) -> None:
        self.directory = directory
        self.heap = heap
        self.fast_start = fast_start  # C1 only: quicker to start on 2 cores (the benchmark says no)
        self.port = free_port()
        self.sasl_port = free_port()
        self.controller_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.classpath = str(ensure_jars() / "*")
        self.properties = directory / "server.properties"
        self.log = directory / "broker.log"
        directory.mkdir(parents=True, exist_ok=True)
        jaas = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{SASL_USER}" password="{SASL_PASSWORD}" user_{SASL_USER}="{SASL_PASSWORD}";'
        )
        self.properties.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},SASL_PLAINTEXT://127.0.0.1:{self.sasl_port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,"
                    "CONTROLLER:PLAINTEXT",
                    "sasl.enabled.mechanisms=PLAIN",
                    f"listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas}",
                    f"log.dirs={directory / 'data'}",
                    "num.partitions=3",
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "num.network.threads=2",
                    "num.io.threads=2",
                    "log.flush.interval.messages=9223372036854775807",
                    "",
                ]
            )
        )
        (directory / "log4j2.properties").write_text(LOG4J2.format(log=self.log))
        # An id that starts with "-" is read as an option by the storage tool (1 id in 64; a fresh
        # clone's run drew one), so such an id is drawn again.
        cluster_id = "-"
        while cluster_id.startswith("-"):
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        subprocess.run(
            [
                *self._java(),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.properties),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def _java(self) -> list[str]:
        flags = ["-XX:TieredStopAtLevel=1"] if self.fast_start else []
        return [
            "java",
            f"-Xmx{self.heap}",
            "-Xms64m",
            "-XX:+UseSerialGC",
            *flags,
            f"-Dlog4j2.configurationFile={self.directory / 'log4j2.properties'}",
            "-cp",
            self.classpath,
        ]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"

    def start(self, timeout: float = 240.0) -> None:
        assert self.process is None
        self.process = subprocess.Popen(
            [*self._java(), "kafka.Kafka", str(self.properties)],
            stdout=open(self.directory / "broker.out", "ab"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        admin = self.admin()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerUnavailable(f"the broker exited with {self.process.returncode}; see {self.log}")
            try:
                metadata = admin.list_topics(timeout=2)
                if metadata.brokers:
                    return
            except confluent_kafka.KafkaException:
                pass
            time.sleep(0.2)
        self.stop(timeout=5)
        raise BrokerUnavailable(f"the broker did not answer within {timeout}s; see {self.log}")

    def stop(self, timeout: float = 30.0) -> None:
        """A clean shutdown (SIGTERM), SIGKILL if it takes longer than `timeout`."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 2})

    def create_topic(self, name: str, partitions: int = 3, **config: str) -> None:
        admin = self.admin()
        futures = admin.create_topics([NewTopic(name, partitions, 1, config=config)], operation_timeout=30)
        futures[name].result(60)
        # Metadata reaches every client a moment later: wait until a fresh client sees the leaders.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            topic = admin.list_topics(name, timeout=5).topics.get(name)
            if (
                topic is not None
                and topic.error is None
                and len(topic.partitions) == partitions
                and all(p.leader >= 0 for p in topic.partitions.values())
            ):
                return
            time.sleep(0.1)
        raise AssertionError(f"topic {name} has no leaders")


class TopicReader:
    """A real consumer that reads a topic from the beginning and counts messages by eventId."""

    def __init__(self, broker: KafkaBroker, topic: str) -> None:
        self.consumer = confluent_kafka.Consumer(
            {
                "bootstrap.servers": broker.bootstrap,
                "group.id": f"test-{uuid.uuid4()}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "log_level": 2,
            }
        )
        self.consumer.subscribe([topic])
        self.counts: Counter[str] = Counter()
        self.messages: list[confluent_kafka.Message] = []
        self.keep = False

    def poll(self, seconds: float = 0.5) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for msg in self.consumer.consume(10_000, timeout=0.1):
                if msg.error() is not None:
                    continue
                event_id = dict(msg.headers() or [])["eventId"]
                assert isinstance(event_id, bytes), "the exporter sends every header as bytes"
                self.counts[event_id.decode()] += 1
                if self.keep:
                    self.messages.append(msg)

    def wait_for(self, ids: Iterable[str], timeout: float = 60.0) -> set[str]:
        """Read until every id arrived (or the timeout); the ids still missing."""
        wanted = set(ids)
        deadline = time.monotonic() + timeout
        while True:
            missing = {i for i in wanted if i not in self.counts}
            if not missing or time.monotonic() > deadline:
                return missing
            self.poll(0.5)

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.counts.values())

    def close(self) -> None:
        self.consumer.close()

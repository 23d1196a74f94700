"""One real Kafka broker for the whole test session (see broker.py), and a fresh topic per test."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .broker import BrokerUnavailable, KafkaBroker


@pytest.fixture(scope="session")
def broker() -> Iterator[KafkaBroker]:
    if shutil.which("java") is None:
        pytest.skip("no java on this machine: the Kafka tests need Java 17 to run a broker")
    directory = Path(tempfile.mkdtemp(prefix="kafka-test-"))
    try:
        try:
            kafka = KafkaBroker(directory)
            kafka.start()
        except BrokerUnavailable as exc:
            pytest.fail(f"cannot run a Kafka broker: {exc}")
        yield kafka
        kafka.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def running_broker(broker: KafkaBroker) -> Iterator[KafkaBroker]:
    """The session's broker, started again after a test that stopped it."""
    if broker.process is None:
        broker.start()
    yield broker
    if broker.process is None:
        broker.start()


@pytest.fixture
def topic(running_broker: KafkaBroker) -> str:
    name = f"events-{uuid.uuid4().hex[:12]}"
    running_broker.create_topic(name)
    return name

"""grpc:// and grpcs:// URIs (what the option check says), the reconnect delays, and the document
the source hands the store (from a real control plane's stream)."""

from __future__ import annotations

import json

import pytest

from sidecar.sources import SourceURIError, open_source
from sidecar.sources.upstream import UpstreamSource, backoff_delays
from tests.conftest import eventually
from tests.sync.helpers import start_control_plane, stop_control_plane


def test_a_grpc_uri_names_the_upstream_its_selection_and_tls():
    source = open_source("grpcs://control-plane:8015?selector=flag-set=checkout&ca=/etc/ca.pem&timeout=2")
    assert isinstance(source, UpstreamSource)
    options = source.options
    assert (options.target, options.selector, options.tls, str(options.ca), options.timeout) == (
        "control-plane:8015",
        "flag-set=checkout",
        True,
        "/etc/ca.pem",
        2.0,
    )
    assert source.origin == "grpcs://control-plane:8015?selector=flag-set=checkout"
    assert open_source("grpc://[::1]:8015?tls=true").options.target == "[::1]:8015"


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("grpc://control-plane", "expected HOST:PORT"),
        ("grpc://control-plane:8015/flags", "takes no path"),
        ("grpc://control-plane:8015?colour=red", "unknown option 'colour'"),
        ("grpc://control-plane:8015?timeout=soon", "timeout='soon': expected a positive number"),
        ("grpc://control-plane:8015?ca=/ca.pem", "TLS options: use grpcs:// or tls=true"),
        ("grpcs://control-plane:8015?cert=/c.pem", "cert and key go together"),
        ("grpc://control-plane:8015?tls=maybe", "tls='maybe': expected true or false"),
    ],
)
def test_a_bad_grpc_uri_is_an_option_error_that_says_what_is_wrong(uri, words):
    with pytest.raises(SourceURIError, match="control-plane") as raised:
        open_source(uri)
    assert words in str(raised.value)


def test_reconnect_delays_grow_exponentially_to_the_cap_with_full_jitter():
    highest = backoff_delays(0.2, 10.0, rng=lambda: 1.0)
    assert [highest(attempt) for attempt in range(8)] == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]
    lowest = backoff_delays(0.2, 10.0, rng=lambda: 0.0)
    assert lowest(5) == 0.0
    assert highest(10_000) == 10.0  # no overflow however long the outage


class Listener:
    def __init__(self) -> None:
        self.events: list[str] = []

    def changed(self) -> None:
        self.events.append("changed")

    def lost(self, event: str, message: str) -> None:
        self.events.append(event)

    def regained(self, event: str, message: str) -> None:
        self.events.append(event)


def test_the_document_carries_the_upstream_set_its_versions_and_revision(tmp_path):
    plane = start_control_plane(tmp_path)
    source = open_source(f"grpc://{plane.address}")
    try:
        document = source.fetch()
        assert document.format == "json"
        assert document.revision == str(plane.revision())
        body = json.loads(document.data)
        assert sorted(flag["key"] for flag in body["flags"]) == sorted(plane.store.flag_set.flags)
        assert document.versions == {key: 1 for key in plane.store.flag_set.flags}

        listener = Listener()
        source.watch(listener)

        def bump(document):
            document["flags"][1]["defaultVariantWhenOn"] = "red"

        plane.change(bump)
        eventually(lambda: "changed" in listener.events)
        changed = source.fetch()
        assert changed.revision == str(plane.revision())
        assert changed.versions["banner-color"] == 2
    finally:
        source.close()
        stop_control_plane(plane)

"""The reporter's hand-written wire format is what protobuf reads as ReportEvaluationsRequest."""

from __future__ import annotations

import time

import grpc

from flagsidecar.v1 import event_pb2
from flagsidecar_client.reporter import EventReporter
from sidecar.engine import ErrorCode, Evaluation, Reason, flag_not_found


def test_encoded_events_read_back_as_the_messages_they_stand_for():
    with grpc.insecure_channel("127.0.0.1:1") as channel:
        reporter = EventReporter(channel)
        served = Evaluation("banner", {"color": "red", "sizes": [1, 2.5]}, "red", Reason.SPLIT, 3)
        now = time.time()
        data = b"".join(
            [
                reporter._event(served, "ünï-42", False, now, 1),
                reporter._event(served, "u" * 300, True, now, 2**40),
                reporter._event(flag_not_found("nope"), "", False, now, 3),
                reporter._event(
                    Evaluation("x", None, "", Reason.ERROR, 0, ErrorCode.GENERAL, "boom"), "u", False, 0, 4
                ),
            ]
        )
    events = event_pb2.ReportEvaluationsRequest.FromString(data).events
    assert [e.user_key for e in events] == ["ünï-42", "u" * 300, "", "u"]
    assert [e.context_kind for e in events] == ["", "anonymousUser", "", ""]
    assert [e.creation_date for e in events] == [int(now)] * 3 + [0]
    assert events[0].event_id.endswith("-1")
    assert events[1].event_id.endswith(f"-{2**40:x}")
    assert len({e.event_id.split("-")[0] for e in events}) == 1
    first = events[0]
    assert (first.flag_key, first.variation, first.sdk_default, first.flag_version) == (
        "banner",
        "red",
        False,
        3,
    )
    assert first.reason == Reason.SPLIT
    assert first.value.struct_value.fields["sizes"].list_value.values[1].number_value == 2.5
    missing = events[2]
    assert (missing.variation, missing.sdk_default, missing.HasField("value")) == ("SdkDefault", True, False)
    assert (missing.error_code, missing.error_message) == (ErrorCode.FLAG_NOT_FOUND, "flag 'nope' not found")
    assert events[3].error_message == "boom"

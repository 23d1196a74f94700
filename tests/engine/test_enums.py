"""The engine's Reason / ErrorCode match the generated protobuf enums number for number."""

import pytest

from flagsidecar.v1 import evaluation_pb2
from sidecar import engine

PAIRS = [
    pytest.param(engine.Reason, evaluation_pb2.Reason, "REASON_UNSPECIFIED", id="Reason"),
    pytest.param(engine.ErrorCode, evaluation_pb2.ErrorCode, "ERROR_CODE_UNSPECIFIED", id="ErrorCode"),
]


@pytest.mark.parametrize(("ours", "proto", "unspecified"), PAIRS)
def test_names_and_numbers_match(ours, proto, unspecified):
    theirs = dict(proto.items())
    assert theirs.pop(unspecified) == 0
    assert {member.name: member.value for member in ours} == theirs
    for member in ours:
        assert proto.Name(int(member)) == member.name
        assert proto.Value(member.name) == member


def test_design_md_reason_list():
    assert [m.name for m in engine.Reason] == [
        "STATIC",
        "DEFAULT",
        "TARGETING_MATCH",
        "SPLIT",
        "DISABLED",
        "ERROR",
    ]

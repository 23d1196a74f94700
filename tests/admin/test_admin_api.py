"""The admin API against a real sidecar process on a real SQLite file, through a real gRPC client:
what an admin writes is what Evaluate serves."""

from __future__ import annotations

import threading

import grpc
import pytest
from google.rpc import error_details_pb2

from flagsidecar.v1 import admin_pb2
from tests.admin.conftest import AUTH, details, evaluate, new_flag, staff_rule, value
from tests.conftest import eventually


def test_a_created_flag_is_evaluated_and_edits_follow(sidecar):
    process = sidecar()
    admin, evaluation = process.admin(), process.evaluation()
    assert evaluate(evaluation, "new-checkout") is None

    created = admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=new_flag()), metadata=AUTH).flag
    assert created.flag.version == 1
    assert created.updated_by == "token:alice"
    answer = eventually(lambda: evaluate(evaluation, "new-checkout", email="a@example.com"))
    assert (answer.variant, answer.flag_version) == ("off", 1)

    admin.CreateFlagRule(
        admin_pb2.CreateFlagRuleRequest(flag_key="new-checkout", expected_version=1, rule=staff_rule()),
        metadata=AUTH,
    )
    answer = eventually(
        lambda: (
            (a := evaluate(evaluation, "new-checkout", email="a@example.com")) and a.flag_version == 2 and a
        )
    )
    assert (answer.variant, answer.reason) == ("on", 3)  # TARGETING_MATCH
    assert evaluate(evaluation, "new-checkout", email="a@other.org").variant == "off"

    admin.UpdateVariant(
        admin_pb2.UpdateVariantRequest(
            flag_key="new-checkout",
            variant_key="off",
            expected_version=2,
            variant=admin_pb2.UpdateVariant(description="the old checkout"),
        ),
        metadata=AUTH,
    )
    admin.UpdateFlag(
        admin_pb2.UpdateFlagRequest(
            key="new-checkout", expected_version=3, flag=admin_pb2.UpdateFlag(enabled=False)
        ),
        metadata=AUTH,
    )
    answer = eventually(lambda: (a := evaluate(evaluation, "new-checkout")) and a.flag_version == 4 and a)
    assert answer.reason == 5  # DISABLED
    got = admin.GetFlag(admin_pb2.GetFlagRequest(key="new-checkout"), metadata=AUTH).flag.flag
    assert (got.version, got.enabled, got.variants[1].description) == (4, False, "the old checkout")

    deleted = admin.DeleteFlag(
        admin_pb2.DeleteFlagRequest(key="new-checkout", expected_version=4), metadata=AUTH
    )
    assert deleted.version == 5
    eventually(lambda: evaluate(evaluation, "new-checkout") is None)
    # A re-created flag goes on counting: version 1 is never served for a second definition.
    again = admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=new_flag()), metadata=AUTH).flag
    assert again.flag.version == 6


def test_two_admins_racing_on_one_flag_one_wins_the_other_is_told(sidecar):
    process = sidecar()
    admin = process.admin()
    admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=new_flag()), metadata=AUTH)
    start = threading.Barrier(2)
    outcomes: list[object] = []

    def write(name: str) -> None:
        request = admin_pb2.UpdateFlagRequest(
            key="new-checkout", expected_version=1, flag=admin_pb2.UpdateFlag(description=f"by {name}")
        )
        start.wait()
        try:
            outcomes.append(admin.UpdateFlag(request, metadata=AUTH).flag.flag.description)
        except grpc.RpcError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=write, args=(name,)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    wins = [outcome for outcome in outcomes if isinstance(outcome, str)]
    losses = [outcome for outcome in outcomes if isinstance(outcome, grpc.RpcError)]
    assert (len(wins), len(losses)) == (1, 1), outcomes
    loss = losses[0]
    assert loss.code() == grpc.StatusCode.ABORTED
    assert "is at version 2, not 1" in loss.details()
    info = details(loss, error_details_pb2.ErrorInfo)
    assert (info.reason, info.metadata["current_version"]) == ("VERSION_CONFLICT", "2")
    stored = admin.GetFlag(admin_pb2.GetFlagRequest(key="new-checkout"), metadata=AUTH).flag.flag
    assert (stored.version, stored.description) == (2, wins[0])


def test_a_bad_write_lists_every_problem_and_stores_nothing(sidecar):
    process = sidecar()
    admin = process.admin()
    admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=new_flag()), metadata=AUTH)
    bad_rule = admin_pb2.NewFlagRule(
        id="broken",
        constraints=[
            admin_pb2.NewConstraint(property="email", operation=15, values=[value("([")]),  # MATCHES_REGEX
            admin_pb2.NewConstraint(operation=17, values=[value("no-such-segment")]),  # IS_IN_SEGMENT
            admin_pb2.NewConstraint(
                property="ip", operation=19, values=[value("10.0.0.0/33")]
            ),  # IS_IN_NETWORK
        ],
        distributions=[
            admin_pb2.NewDistribution(variant="on", percentage=50),
            admin_pb2.NewDistribution(variant="maybe", percentage=20),
        ],
    )
    with pytest.raises(grpc.RpcError) as raised:
        admin.CreateFlagRule(
            admin_pb2.CreateFlagRuleRequest(flag_key="new-checkout", expected_version=1, rule=bad_rule),
            metadata=AUTH,
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = details(raised.value, error_details_pb2.BadRequest).field_violations
    fields = {violation.field: violation.description for violation in violations}
    assert set(fields) >= {
        "flag.rules[0].constraints[0]",
        "flag.rules[0].constraints[1]",
        "flag.rules[0].constraints[2]",
        "flag.rules[0].distributions[1]",
    }, fields
    assert "regular expression" in fields["flag.rules[0].constraints[0]"]
    assert "no-such-segment" in fields["flag.rules[0].constraints[1]"]
    assert "maybe" in fields["flag.rules[0].distributions[1]"]
    assert str(len(violations)) in raised.value.details()
    # Nothing stored: same version, no rule, one history entry.
    stored = admin.GetFlag(admin_pb2.GetFlagRequest(key="new-checkout"), metadata=AUTH).flag.flag
    assert (stored.version, len(stored.rules)) == (1, 0)
    history = admin.ListFlagHistory(admin_pb2.ListFlagHistoryRequest(key="new-checkout"), metadata=AUTH)
    assert [entry.version for entry in history.entries] == [1]

    # A new flag with several problems at once: each is listed.
    with pytest.raises(grpc.RpcError) as raised:
        admin.CreateFlag(
            admin_pb2.CreateFlagRequest(
                flag=admin_pb2.NewFlag(
                    key="mixed",
                    enabled=True,
                    variants=[
                        admin_pb2.NewVariant(key="a", value=value(True)),
                        admin_pb2.NewVariant(key="b", value=value("text")),
                    ],
                    default_variant_when_on="c",
                )
            ),
            metadata=AUTH,
        )
    descriptions = [
        v.description for v in details(raised.value, error_details_pb2.BadRequest).field_violations
    ]
    assert any("same type" in text for text in descriptions), descriptions
    assert any("'c'" in text for text in descriptions), descriptions
    with pytest.raises(grpc.RpcError) as missing:
        admin.GetFlag(admin_pb2.GetFlagRequest(key="mixed"), metadata=AUTH)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_rollback_restores_the_earlier_evaluation(sidecar):
    process = sidecar()
    admin, evaluation = process.admin(), process.evaluation()
    admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=new_flag(rules=[staff_rule()])), metadata=AUTH)
    eventually(
        lambda: (a := evaluate(evaluation, "new-checkout", email="a@example.com")) and a.variant == "on"
    )
    admin.DeleteFlagRule(
        admin_pb2.DeleteFlagRuleRequest(flag_key="new-checkout", rule_id="staff", expected_version=1),
        metadata=AUTH,
    )
    eventually(lambda: evaluate(evaluation, "new-checkout", email="a@example.com").variant == "off")

    rolled = admin.RollbackFlag(
        admin_pb2.RollbackFlagRequest(key="new-checkout", expected_version=2, to_version=1), metadata=AUTH
    ).flag.flag
    assert rolled.version == 3  # a rollback is a new version
    answer = eventually(
        lambda: (
            (a := evaluate(evaluation, "new-checkout", email="a@example.com")) and a.flag_version == 3 and a
        )
    )
    assert answer.variant == "on"
    history = admin.ListFlagHistory(
        admin_pb2.ListFlagHistoryRequest(key="new-checkout"), metadata=AUTH
    ).entries
    assert [(e.version, e.action, e.actor) for e in history] == [
        (3, "rollback", "token:alice"),
        (2, "update", "token:alice"),
        (1, "create", "token:alice"),
    ]
    assert list(history[1].changed_fields) == ["rules"]
    assert len(history[1].before.rules) == 1
    assert not history[1].after.rules
    with pytest.raises(grpc.RpcError) as raised:
        admin.RollbackFlag(
            admin_pb2.RollbackFlagRequest(key="new-checkout", expected_version=3, to_version=9), metadata=AUTH
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_deleting_a_segment_in_use_is_refused_naming_the_flags(sidecar):
    process = sidecar()
    admin = process.admin()
    segment = admin.CreateSegment(
        admin_pb2.CreateSegmentRequest(
            segment=admin_pb2.NewSegment(
                key="beta",
                rules=[
                    admin_pb2.NewSegmentRule(
                        constraints=[
                            admin_pb2.NewConstraint(property="plan", operation=1, values=[value("pro")])
                        ]
                    )
                ],
            )
        ),
        metadata=AUTH,
    ).segment
    assert segment.version == 1
    in_beta = admin_pb2.NewFlagRule(
        constraints=[admin_pb2.NewConstraint(operation=17, values=[value("beta")])],
        distributions=[admin_pb2.NewDistribution(variant="on", percentage=100)],
    )
    for key in ("checkout", "search"):
        admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=new_flag(key, rules=[in_beta])), metadata=AUTH)
    evaluation = process.evaluation()
    eventually(lambda: (a := evaluate(evaluation, "search", plan="pro")) and a.variant == "on")

    with pytest.raises(grpc.RpcError) as raised:
        admin.DeleteSegment(admin_pb2.DeleteSegmentRequest(key="beta", expected_version=1), metadata=AUTH)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "flag 'checkout', flag 'search'" in raised.value.details()
    failure = details(raised.value, error_details_pb2.PreconditionFailure)
    assert [v.subject for v in failure.violations] == ["flags/checkout", "flags/search"]
    admin.GetSegment(admin_pb2.GetSegmentRequest(key="beta"), metadata=AUTH)  # still there

    # A segment edit is validated and served like a flag's.
    admin.UpdateSegmentRule(
        admin_pb2.UpdateSegmentRuleRequest(
            segment_key="beta",
            rule_id="0",
            expected_version=1,
            rule=admin_pb2.UpdateSegmentRule(
                constraints=[
                    admin_pb2.NewConstraint(property="plan", operation=1, values=[value("enterprise")])
                ]
            ),
        ),
        metadata=AUTH,
    )
    eventually(lambda: evaluate(evaluation, "search", plan="pro").variant == "off")


def test_lists_are_paginated(sidecar):
    admin = sidecar().admin()
    for index in range(5):
        admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=new_flag(f"flag-{index}")), metadata=AUTH)
    keys, token, pages = [], "", 0
    while True:
        page = admin.ListFlags(admin_pb2.ListFlagsRequest(page_size=2, page_token=token), metadata=AUTH)
        keys += [stored.flag.key for stored in page.flags]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert keys == [f"flag-{index}" for index in range(5)]
    assert pages == 3
    with pytest.raises(grpc.RpcError) as raised:
        admin.ListFlags(admin_pb2.ListFlagsRequest(page_token="!!"), metadata=AUTH)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(raised.value, error_details_pb2.BadRequest).field_violations[0].field == "page_token"


def test_calls_without_a_good_token_are_refused(sidecar):
    process = sidecar()
    admin = process.admin()
    for metadata in ((), (("authorization", "Bearer wrong"),), (("authorization", "Basic abc"),)):
        with pytest.raises(grpc.RpcError) as raised:
            admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=new_flag()), metadata=metadata)
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as raised:
        admin.GetFlag(admin_pb2.GetFlagRequest(key="new-checkout"), metadata=AUTH)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND  # nothing was written
    # The admin service is not on the evaluation port.
    from flagsidecar.v1 import admin_pb2_grpc

    on_evaluation_port = admin_pb2_grpc.FlagAdminServiceStub(process._channel(process.process.address()))
    with pytest.raises(grpc.RpcError) as raised:
        on_evaluation_port.GetFlag(admin_pb2.GetFlagRequest(key="x"), metadata=AUTH)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_a_write_that_changes_nothing_is_no_new_version(sidecar):
    admin = sidecar().admin()
    admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=new_flag()), metadata=AUTH)
    same = admin.UpdateFlag(
        admin_pb2.UpdateFlagRequest(
            key="new-checkout", expected_version=1, flag=admin_pb2.UpdateFlag(enabled=True)
        ),
        metadata=AUTH,
    ).flag.flag
    assert same.version == 1
    history = admin.ListFlagHistory(admin_pb2.ListFlagHistoryRequest(key="new-checkout"), metadata=AUTH)
    assert len(history.entries) == 1


def test_a_request_that_is_not_the_message_is_invalid_argument_and_the_server_goes_on(sidecar):
    process = sidecar()
    channel = process._channel(process.admin_address)
    raw = channel.unary_unary("/flagsidecar.v1.FlagAdminService/CreateFlag")
    with pytest.raises(grpc.RpcError) as raised:
        raw(b"\xff\xff\xff not protobuf", metadata=AUTH)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "CreateFlagRequest" in raised.value.details()
    admin = process.admin()
    assert (
        admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=new_flag()), metadata=AUTH).flag.flag.version == 1
    )

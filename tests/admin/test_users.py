"""Users and what they were served: the `users` event exporter writes the latest evaluation of
each flag per user to the flag database, and the admin API reads and deletes them."""

from __future__ import annotations

import grpc
import pytest

from flagsidecar.v1 import admin_pb2, evaluation_pb2
from tests.admin.conftest import AUTH, evaluate, new_flag, staff_rule
from tests.conftest import eventually


def test_get_user_shows_what_an_evaluation_served_after_the_events_flush(sidecar, database):
    process = sidecar("--exporter", f"users:source=sqlite://{database}", "--flush-interval", "0.1")
    admin, evaluation = process.admin(), process.evaluation()
    admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=new_flag(rules=[staff_rule()])), metadata=AUTH)
    eventually(lambda: evaluate(evaluation, "new-checkout", email="a@example.com"), timeout=5)

    def user() -> admin_pb2.GetUserResponse | None:
        try:
            return admin.GetUser(admin_pb2.GetUserRequest(id="u1"), metadata=AUTH)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return None

    got = eventually(user, timeout=10)
    assert got.user.context_kind == "user"
    # The context the evaluation was asked with (the users exporter's events carry it).
    assert dict(got.user.context) == {"email": "a@example.com"}
    [served] = got.evaluations
    assert (served.flag_key, served.variant, served.value.bool_value, served.flag_version) == (
        "new-checkout",
        "on",
        True,
        1,
    )
    assert served.reason == evaluation_pb2.TARGETING_MATCH
    # A later evaluation replaces it: only the latest per flag is kept.
    evaluate(evaluation, "new-checkout", email="a@other.org")
    eventually(
        lambda: (
            admin.GetUser(admin_pb2.GetUserRequest(id="u1"), metadata=AUTH).evaluations[0].variant == "off"
        ),
        timeout=10,
    )
    assert dict(admin.GetUser(admin_pb2.GetUserRequest(id="u1"), metadata=AUTH).user.context) == {
        "email": "a@other.org"
    }
    assert [u.id for u in admin.ListUsers(admin_pb2.ListUsersRequest(), metadata=AUTH).users] == ["u1"]

    admin.DeleteEvaluation(
        admin_pb2.DeleteEvaluationRequest(user_id="u1", flag_key="new-checkout"), metadata=AUTH
    )
    assert not admin.GetUser(admin_pb2.GetUserRequest(id="u1"), metadata=AUTH).evaluations
    admin.DeleteUser(admin_pb2.DeleteUserRequest(id="u1"), metadata=AUTH)
    with pytest.raises(grpc.RpcError) as raised:
        admin.GetUser(admin_pb2.GetUserRequest(id="u1"), metadata=AUTH)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as raised:
        admin.DeleteUser(admin_pb2.DeleteUserRequest(id="u1"), metadata=AUTH)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND

"""build_context: the engine's view of a user (DESIGN.md, "The model": User)."""

import math

import pytest

from sidecar.engine import InvalidContextError, build_context


def test_adds_user_id():
    assert build_context("u-1", {"plan": "pro"}) == {"plan": "pro", "$userId": "u-1"}
    assert build_context("u-1") == {"$userId": "u-1"}
    assert build_context("u-1", None) == {"$userId": "u-1"}


def test_empty_user_id_adds_no_user_id():
    assert build_context("", {"plan": "pro"}) == {"plan": "pro"}
    assert build_context("") == {}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("text", id="string"),
        pytest.param("", id="empty-string"),
        pytest.param(3, id="int"),
        pytest.param(2.5, id="float"),
        pytest.param(True, id="bool"),
        pytest.param(None, id="null"),
    ],
)
def test_accepts_json_scalars(value):
    assert build_context("u", {"k": value})["k"] == value


def test_does_not_mutate_the_attributes():
    attrs = {"plan": "pro"}
    build_context("u", attrs)
    assert attrs == {"plan": "pro"}


@pytest.mark.parametrize(
    ("attrs", "fragment"),
    [
        pytest.param({"$userId": "spoofed"}, "'$userId' is reserved", id="user-id-key"),
        pytest.param({"$anything": 1}, "'$anything' is reserved", id="dollar-key"),
        pytest.param({"tags": ["a", "b"]}, "'tags' holds a list", id="nested-list"),
        pytest.param({"address": {"city": "Paris"}}, "'address' holds a dict", id="nested-dict"),
        pytest.param({"t": ("a",)}, "'t' holds a tuple", id="tuple"),
        pytest.param({"n": math.nan}, "'n' holds nan", id="nan"),
        pytest.param({"n": math.inf}, "'n' holds inf", id="inf"),
        pytest.param({"n": -math.inf}, "'n' holds -inf", id="minus-inf"),
        pytest.param({"": "x"}, "non-empty strings", id="empty-key"),
        pytest.param({1: "x"}, "non-empty strings", id="non-string-key"),
    ],
)
def test_rejects_invalid_contexts(attrs, fragment):
    with pytest.raises(InvalidContextError) as caught:
        build_context("u", attrs)
    assert fragment in str(caught.value)


def test_invalid_context_error_is_a_value_error():
    assert issubclass(InvalidContextError, ValueError)

"""build_context: the engine's view of a user (DESIGN.md, "The model": User)."""

import enum
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.engine import InvalidContextError, build_context
from sidecar.engine.evaluator import _context_problem


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


def _reference_build_context(user_id: str, attributes: dict) -> dict:
    """build_context as it was written before it was tuned: one test per rule, in order."""
    context = dict(attributes) if attributes else {}
    for key, value in context.items():
        if type(value) not in {str, bool, int, float, type(None)} or type(key) is not str or not key:
            raise InvalidContextError(_context_problem(key, value))
        if key[0] == "$":
            raise InvalidContextError(_context_problem(key, value))
        if type(value) is float and not math.isfinite(value):
            raise InvalidContextError(f"context key {key!r} holds {value}, which is not a finite number")
    if user_id:
        context["$userId"] = user_id
    return context


class _Text(str):
    pass


class _Level(enum.IntEnum):
    LOW = 1


def _outcome(build, user_id, attributes):
    try:
        return build(user_id, attributes)
    except InvalidContextError as error:
        return f"refused: {error}"


@settings(max_examples=500)
@given(
    user_id=st.sampled_from(["", "u-1"]),
    attributes=st.dictionaries(
        st.one_of(
            st.text(max_size=4),
            st.sampled_from(["$", "$x", "#", "%", "$userId", " ", "\x00", "~"]),
            st.integers(-2, 2),
            st.builds(_Text, st.sampled_from(["plan", "$x", ""])),
        ),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=4),
            st.just(_Level.LOW),
            st.builds(_Text, st.text(max_size=2)),
            st.lists(st.integers(), max_size=1),
        ),
        max_size=4,
    ),
)
def test_same_contexts_and_messages_as_the_plain_rules(user_id, attributes):
    assert _outcome(build_context, user_id, attributes) == _outcome(
        _reference_build_context, user_id, attributes
    )

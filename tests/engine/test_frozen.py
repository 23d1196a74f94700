"""quick_init: the same dataclass to everything but its speed of building."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field

import pytest

from sidecar.engine.definitions import EMPTY_METADATA, FlagDefinition
from sidecar.engine.frozen import quick_init
from sidecar.engine.model import Evaluation, Reason, TraceStep


@dataclass(frozen=True, slots=True)
class _Plain:
    key: str
    count: int = 0
    tags: tuple[str, ...] = field(default_factory=tuple)


@quick_init
@dataclass(frozen=True, slots=True)
class _Quick:
    key: str
    count: int = 0
    tags: tuple[str, ...] = field(default_factory=tuple)


def test_the_signature_is_the_dataclasses_own() -> None:
    plain = inspect.signature(_Plain)
    quick = inspect.signature(_Quick)
    assert list(quick.parameters) == list(plain.parameters)
    assert quick.parameters["count"].default == 0
    for parameter in quick.parameters.values():
        assert parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD


def test_it_sets_every_field_as_the_dataclass_would() -> None:
    assert repr(_Quick("a")) == repr(_Plain("a")).replace("_Plain", "_Quick")
    assert _Quick("a", 2, ("x",)) == _Quick(key="a", tags=("x",), count=2)
    assert _Quick("a").tags == ()
    with pytest.raises(TypeError):
        _Quick()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Quick("a", nope=1)  # type: ignore[call-arg]


def test_it_stays_frozen_hashable_replaceable_and_picklable() -> None:
    quick = _Quick("a", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.count = 2  # type: ignore[misc]
    assert hash(quick) == hash(_Quick("a", 1))
    assert dataclasses.replace(quick, count=3) == _Quick("a", 3)
    assert pickle.loads(pickle.dumps(quick)) == quick


def test_the_models_built_in_bulk_use_it() -> None:
    answer = Evaluation("flag", True, "on", Reason.STATIC)
    assert answer.flag_version == 0
    assert answer.error_code is None
    assert answer.track_events
    assert answer.stack_trace == ()
    assert TraceStep("flag", "f", True, "why").depth == 0
    assert FlagDefinition("f", True, ()).metadata is EMPTY_METADATA
    for model in (Evaluation, TraceStep, FlagDefinition):
        assert model.__init__.__module__ == model.__module__


def test_it_refuses_what_it_cannot_build() -> None:
    @dataclass(frozen=True)
    class NoSlots:
        key: str

    @dataclass(frozen=True, slots=True, kw_only=True)
    class KeywordOnly:
        key: str

    @dataclass(frozen=True, slots=True)
    class Posted:
        key: str

        def __post_init__(self) -> None:
            pass

    for cls in (NoSlots, KeywordOnly, Posted):
        with pytest.raises(TypeError, match="quick_init"):
            quick_init(cls)

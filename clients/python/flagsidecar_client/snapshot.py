"""The compiled flag set the client evaluates against: built once per change, swapped whole.

A Snapshot is never mutated. Besides the engine's compiled set it holds, for every answer the
engine can give without computing one (a flag's off and fallthrough answers, each rule's single
and split answers), the client's Evaluation of it, so that an evaluation allocates nothing but
the context it validates.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from flagsidecar.v1 import flag_pb2
from sidecar.engine import Evaluation as EngineEvaluation
from sidecar.engine import Flag, FlagSet, compile_definitions, evaluation_plan
from sidecar.engine.evaluator import PlanStep
from sidecar.schema import flag_set_from_message

from .evaluation import Evaluation

__all__ = ["EMPTY", "Snapshot", "compile_snapshot"]


class Snapshot:
    __slots__ = ("answers", "flag_set", "flag_set_name", "flags", "revision", "steps")

    def __init__(self, flag_set: FlagSet, revision: int, flag_set_name: str) -> None:
        self.flag_set = flag_set
        self.flags: Mapping[str, Flag] = flag_set.flags
        self.revision = revision
        self.flag_set_name = flag_set_name
        # Per flag: the flag, and the engine's plan step (the function that computes its answer, or
        # None with the fixed answer of a disabled or rule-less flag), as the store evaluates.
        plan = evaluation_plan(flag_set.flags.values())
        self.steps: dict[str, tuple[Flag, PlanStep]] = {
            key: (flag, step) for (key, flag), step in zip(flag_set.flags.items(), plan, strict=True)
        }
        # id(engine answer) -> (that answer, the client's Evaluation): the answers live as long as
        # the snapshot, so an id here cannot name another object while it is in use.
        self.answers: dict[int, tuple[EngineEvaluation, Evaluation]] = {}
        for flag in flag_set.flags.values():
            metadata = flag.metadata
            for answer in _fixed_answers(flag):
                self.answers[id(answer)] = (answer, Evaluation.of(answer, metadata))


def _fixed_answers(flag: Flag) -> Iterator[EngineEvaluation]:
    yield flag.off_answer
    yield flag.fallthrough_answer
    for rule in flag.rules:
        if rule.single is not None:
            yield rule.single
        yield from rule.split_answers


def compile_snapshot(message: flag_pb2.FlagSet, revision: int, name: str, origin: str) -> Snapshot:
    """Validate and compile a whole set from the stream (sidecar.schema, then the engine): raises
    the engine's FlagSetError listing every problem, as a flag file would."""
    definitions = flag_set_from_message(message, origin)
    return Snapshot(compile_definitions(definitions, origin), revision, name)


EMPTY = Snapshot(FlagSet(flags={}, segments={}), 0, "")

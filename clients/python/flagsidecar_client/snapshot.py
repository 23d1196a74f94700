"""The compiled flag set the client evaluates against: built once per change, swapped whole.

A Snapshot is never mutated. Per flag it holds one step: a function that computes the flag's
answer as the client's own Evaluation (the engine's generated function with the answers among
its values translated once: fastpath.answering), or the fixed Evaluation of a disabled or
rule-less flag; whether the flag's events are tracked; and whether it reads a key the engine's
context adds ("$userId"), without which the client evaluates over the caller's dict uncopied.
An evaluation so allocates nothing but what a split's bucket key needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flagsidecar.v1 import flag_pb2
from sidecar.engine import Context, Flag, FlagSet, answering, compile_definitions, reads_reserved
from sidecar.engine import Evaluation as EngineEvaluation
from sidecar.engine.evaluator import evaluate_rules
from sidecar.schema import flag_set_from_message

from .evaluation import Evaluation

__all__ = ["EMPTY", "Snapshot", "Step", "compile_snapshot"]

# (computes the answer or None, the fixed answer, events tracked, reads "$userId", the flag)
Step = tuple[Callable[[Context], Evaluation] | None, Evaluation, bool, bool, Flag]


class Snapshot:
    __slots__ = ("flag_set", "flag_set_name", "flags", "revision", "steps")

    def __init__(self, flag_set: FlagSet, revision: int, flag_set_name: str) -> None:
        self.flag_set = flag_set
        self.flags: Mapping[str, Flag] = flag_set.flags
        self.revision = revision
        self.flag_set_name = flag_set_name
        self.steps: dict[str, Step] = {key: _step(flag) for key, flag in flag_set.flags.items()}


def _step(flag: Flag) -> Step:
    metadata = flag.metadata

    def translate(answer: EngineEvaluation) -> Evaluation:
        return Evaluation.of(answer, metadata)

    track = flag.track_events
    if not flag.enabled or not flag.rules:
        return (None, translate(flag.default_answer), track, False, flag)
    # The engine builds a fast path for every such flag; the loop, should one lack it.
    compute = answering(flag.fast, translate) if flag.fast is not None else _looped(flag, translate)
    return (compute, translate(flag.default_answer), track, reads_reserved(flag), flag)


def _looped(
    flag: Flag, translate: Callable[[EngineEvaluation], Evaluation]
) -> Callable[[Context], Evaluation]:
    def compute(context: Context) -> Evaluation:
        return translate(evaluate_rules(flag, context))

    return compute


def compile_snapshot(message: flag_pb2.FlagSet, revision: int, name: str, origin: str) -> Snapshot:
    """Validate and compile a whole set from the stream (sidecar.schema, then the engine): raises
    the engine's FlagSetError listing every problem, as a flag file would."""
    definitions = flag_set_from_message(message, origin)
    return Snapshot(compile_definitions(definitions, origin), revision, name)


EMPTY = Snapshot(FlagSet(flags={}, segments={}), 0, "")

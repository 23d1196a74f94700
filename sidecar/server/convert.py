"""The native API's answers: engine Evaluations as flagsidecar.v1 messages and serialized responses.

The hot path is one request in, one answer out: `EncodedEvaluations` hands out ready-serialized
responses (and metrics keys) for the engine's precomputed answers, so a steady-state call converts
and serializes nothing. Requests' contexts and Struct <-> Python are the edge's (sidecar.server.edge).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from flagsidecar.v1 import evaluation_pb2
from sidecar.engine import ErrorCode, Evaluation, TraceStep

from .edge import fill_value
from .metrics import EvalKey, evaluation_key

# ---------------------------------------------------------------- answers


def evaluation_to_message(evaluation: Evaluation) -> evaluation_pb2.Evaluation:
    """A new flagsidecar.v1.Evaluation for an engine Evaluation (Reason/ErrorCode numbers match)."""
    message = evaluation_pb2.Evaluation(
        flag_key=evaluation.flag_key,
        variant=evaluation.variant,
        reason=int(evaluation.reason),  # type: ignore[arg-type]
        flag_version=evaluation.flag_version,
    )
    if evaluation.error_code is None:
        # Only a served variant has a value; on error, or when the default needed is not set,
        # `value` stays unset (not null).
        if evaluation.has_value:
            fill_value(message.value, evaluation.value)
    else:
        message.error_code = int(evaluation.error_code)  # type: ignore[assignment]
        message.error_message = evaluation.error_message
    if evaluation.stack_trace:
        message.stack_trace.extend(trace_step_to_message(step) for step in evaluation.stack_trace)
    return message


def trace_step_to_message(step: TraceStep) -> evaluation_pb2.StackTrace:
    message = evaluation_pb2.StackTrace(
        type=step.type, id=step.id, matched=step.matched, detail=step.detail, depth=step.depth
    )
    if step.answer is not None:
        fill_value(message.answer, step.answer)
    if step.bucket is not None:
        message.bucket = step.bucket
    return message


# Both EvaluateResponse.evaluation and EvaluateAllResponse.evaluations are field 1 of type
# Evaluation, so one encoded field entry (tag, length, message) is a complete EvaluateResponse and
# also one element of an EvaluateAllResponse: responses are assembled by joining bytes.
_EVALUATION_FIELD_TAG = b"\x0a"  # field 1, wire type 2 (length-delimited)
_TOTAL_FIELD_TAG = b"\x10"  # EvaluateAllResponse.total: field 2, wire type 0 (varint)


def _varint(number: int) -> bytes:
    encoded = bytearray()
    while number > 0x7F:
        encoded.append((number & 0x7F) | 0x80)
        number >>= 7
    encoded.append(number)
    return bytes(encoded)


def encode_evaluation_field(evaluation: Evaluation) -> bytes:
    """`evaluation` as an encoded field-1 entry: a serialized EvaluateResponse as it stands."""
    body = evaluation_to_message(evaluation).SerializeToString()
    return _EVALUATION_FIELD_TAG + _varint(len(body)) + body


# An answer, its serialized EvaluateResponse and its metrics key (metrics.evaluation_key).
Entry = tuple[Evaluation, bytes, EvalKey]


class EncodedEvaluations:
    """Serialized responses and metrics keys for the engine's answers, built once per precomputed
    answer.

    Without a debug trace the engine returns the same immutable Evaluation object for the same
    (flag version, variant, reason), so its encoding is computed once and reused: a steady-state
    call converts and serializes nothing. `entries` is keyed by id() and each entry keeps its
    Evaluation alive, so an id cannot be recycled for another object while its entry exists; the
    identity check on lookup (`entry[0] is evaluation`) makes that explicit. The cache is emptied
    when the flag set changes (old answers are dead) and when it is full (a crude bound, but
    lookups stay a lock-free dict read: the servicers' fast paths read `entries` directly).
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max_entries = max_entries
        self.entries: dict[int, Entry] = {}  # emptied in place, never replaced
        # Writers only: readers rely on dict operations being atomic.
        self._write_lock = threading.Lock()

    def entry(self, evaluation: Evaluation) -> Entry:
        """`evaluation` with its serialized EvaluateResponse and its metrics key."""
        entry = self.entries.get(id(evaluation))
        if entry is not None and entry[0] is evaluation:
            return entry
        entry = (evaluation, encode_evaluation_field(evaluation), evaluation_key(evaluation))
        if self._is_reusable(evaluation):
            with self._write_lock:
                if len(self.entries) >= self._max_entries:
                    self.entries.clear()
                self.entries[id(evaluation)] = entry
        return entry

    def evaluate_response(self, evaluation: Evaluation) -> bytes:
        """A serialized flagsidecar.v1.EvaluateResponse."""
        return self.entry(evaluation)[1]

    def evaluate_all_entries(self, evaluations: Sequence[Evaluation]) -> tuple[bytes, list[EvalKey]]:
        """A serialized flagsidecar.v1.EvaluateAllResponse listing `evaluations` in order, and the
        evaluations' metrics keys (in one pass over them)."""
        get, entry_of = self.entries.get, self.entry  # entry()'s lookup, inlined
        entries = [
            entry if (entry := get(id(answer))) is not None and entry[0] is answer else entry_of(answer)
            for answer in evaluations
        ]
        parts = [entry[1] for entry in entries]
        if evaluations:  # proto3 leaves a zero total out
            parts.append(_TOTAL_FIELD_TAG + _varint(len(evaluations)))
        return b"".join(parts), [entry[2] for entry in entries]

    def clear(self) -> None:
        with self._write_lock:
            self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)

    @staticmethod
    def _is_reusable(evaluation: Evaluation) -> bool:
        # Traced answers and "flag not found" are built per request: caching them would only
        # fill the cache with objects nobody asks for again.
        return not evaluation.stack_trace and evaluation.error_code is not ErrorCode.FLAG_NOT_FOUND

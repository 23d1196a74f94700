"""What the in-process client answers: the engine's answer plus the flag's metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sidecar.engine import ErrorCode, Reason
from sidecar.engine import Evaluation as EngineEvaluation

__all__ = ["NO_METADATA", "ErrorCode", "Evaluation", "Reason"]

NO_METADATA: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One flag evaluated for one user, as the sidecar's Evaluate answers it (same fields)."""

    flag_key: str
    value: Any  # None on error and when the default needed is not set
    variant: str  # "" on error and when the default needed is not set
    reason: Reason
    flag_version: int = 0
    error_code: ErrorCode | None = None
    error_message: str = ""
    flag_metadata: Mapping[str, Any] = field(default_factory=lambda: NO_METADATA)

    @property
    def has_value(self) -> bool:
        """False on error and when no default is set: the caller's code default applies."""
        return bool(self.variant)

    @classmethod
    def of(cls, answer: EngineEvaluation, metadata: Mapping[str, Any] = NO_METADATA) -> Evaluation:
        return cls(
            answer.flag_key,
            answer.value,
            answer.variant,
            answer.reason,
            answer.flag_version,
            answer.error_code,
            answer.error_message,
            metadata,
        )


def error(flag_key: str, code: ErrorCode, message: str) -> EngineEvaluation:
    """An engine answer for an evaluation that could not happen (no set yet, bad context)."""
    return EngineEvaluation(flag_key, None, "", Reason.ERROR, 0, code, message)

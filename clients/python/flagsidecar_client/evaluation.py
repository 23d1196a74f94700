"""What the in-process client answers: the engine's answer plus the flag's metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sidecar.engine import ErrorCode, Reason
from sidecar.engine import Evaluation as EngineEvaluation

__all__ = ["NO_METADATA", "ErrorCode", "Evaluation", "Reason", "User"]

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


class User:
    """A user whose context was checked once (FlagSidecarClient.user), for evaluate_user."""

    __slots__ = ("_context", "id")

    def __init__(self, user_id: str, context: dict[str, Any]) -> None:
        self.id = user_id
        self._context = context  # the engine's context (with "$userId"); never handed out

    @property
    def context(self) -> Mapping[str, Any]:
        """The attributes, without the "$userId" the engine adds."""
        return MappingProxyType({key: value for key, value in self._context.items() if key[:1] != "$"})

    def __repr__(self) -> str:
        return f"User({self.id!r}, {dict(self.context)!r})"

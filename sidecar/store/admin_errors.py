"""Why an admin write (or read) is refused: one class per outcome, which the admin service maps
to a gRPC status at the edge (sidecar/server/admin_service.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class AdminError(Exception):
    """A refused admin call; `message` says what to do about it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(AdminError):
    """The flag, segment, variant, rule or history version does not exist."""


class AlreadyExistsError(AdminError):
    """A create names a key that is taken."""

    def __init__(self, message: str, current_version: int) -> None:
        super().__init__(message)
        self.current_version = current_version


class VersionConflict(AdminError):
    """The write's expected_version is not the current one: someone else wrote first."""

    def __init__(self, kind: str, key: str, expected: int, current: int) -> None:
        if current:
            message = (
                f"{kind} {key!r} is at version {current}, not {expected}: it changed since you read "
                f"it; read it again and retry with expected_version {current}"
            )
        else:
            message = f"{kind} {key!r} no longer exists (expected version {expected}); current version 0"
        super().__init__(message)
        self.kind = kind
        self.key = key
        self.expected = expected
        self.current = current


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem of a request: where (a field path) and what is wrong."""

    field: str
    description: str


class InvalidRequest(AdminError):
    """Every problem of a request, each located; nothing was stored."""

    def __init__(self, problems: Sequence[FieldProblem], summary: str = "") -> None:
        count = len(problems)
        super().__init__(
            summary
            or f"{count} problem{'s' if count != 1 else ''}, nothing stored: "
            + "; ".join(f"{p.field}: {p.description}" if p.field else p.description for p in problems)
        )
        self.problems = tuple(problems)


class InUseError(AdminError):
    """A segment still referenced by flags (or other segments) cannot be deleted."""

    def __init__(self, segment: str, flags: Sequence[str], segments: Sequence[str]) -> None:
        users = [f"flag {key!r}" for key in flags] + [f"segment {key!r}" for key in segments]
        super().__init__(
            f"segment {segment!r} is still used by {', '.join(users)}: remove those references first"
        )
        self.segment = segment
        self.flags = tuple(flags)
        self.segments = tuple(segments)

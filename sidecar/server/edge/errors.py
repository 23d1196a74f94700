"""The one error hierarchy of the gRPC services, and its one mapping to a gRPC status.

A service raises a SidecarError subclass where a request cannot be answered; the class says the
status code, the instance the message (it may echo client input: the edge bounds it) and, when the
request went over a limit, that limit's option, the label of flag_sidecar_limit_rejections_total.
Anything else a handler raises is a fault of ours: INTERNAL with INTERNAL_ERROR (not UNKNOWN,
which clients retry), the traceback in the log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Final, NoReturn

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2

from ...engine import ErrorCode
from ..limits import Violation, bounded

INTERNAL_ERROR: Final = "internal error in the sidecar (see its log)"
# gRPC's rich error model: a google.rpc.Status with typed details, in this trailing metadata.
STATUS_DETAILS_KEY: Final = "grpc-status-details-bin"
NOT_READY: Final = "no flag set is loaded yet"  # Unavailable, before the store has a flag set


class SidecarError(Exception):
    """Ends a call with `code` and `message` instead of a response."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, limit: str | None = None, details: Sequence[Message] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.limit = limit  # the option of the limit the request went over, for the metric
        # google.rpc detail messages (BadRequest, ErrorInfo...) for clients that read them.
        self.details = tuple(details)

    @classmethod
    def over(cls, violation: Violation) -> SidecarError:
        """The request is over a limit: the violation's message, counted under its limit."""
        return cls(violation.message, violation.limit)


class InvalidArgument(SidecarError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(SidecarError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(SidecarError):
    code = grpc.StatusCode.ALREADY_EXISTS


class Aborted(SidecarError):
    """A concurrent change won (an admin write's expected version is stale): read again, retry."""

    code = grpc.StatusCode.ABORTED


class FailedPrecondition(SidecarError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(SidecarError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(SidecarError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(SidecarError):
    code = grpc.StatusCode.UNAVAILABLE


class DataLoss(SidecarError):
    code = grpc.StatusCode.DATA_LOSS


class Unknown(SidecarError):
    code = grpc.StatusCode.UNKNOWN


# An evaluation's error as a status, as flagd's errFormat maps them (FLAG_NOT_FOUND -> NOT_FOUND,
# TYPE_MISMATCH -> INVALID_ARGUMENT, PARSE_ERROR -> DATA_LOSS, GENERAL -> UNKNOWN); ours without a
# flagd equivalent (INVALID_CONTEXT, TARGETING_KEY_MISSING) are the client's: INVALID_ARGUMENT.
EVALUATION_ERRORS: Final[Mapping[ErrorCode, type[SidecarError]]] = {
    ErrorCode.FLAG_NOT_FOUND: NotFound,
    ErrorCode.TYPE_MISMATCH: InvalidArgument,
    ErrorCode.PARSE_ERROR: DataLoss,
    ErrorCode.GENERAL: Unknown,
    ErrorCode.INVALID_CONTEXT: InvalidArgument,
    ErrorCode.TARGETING_KEY_MISSING: InvalidArgument,
}


def evaluation_error(error_code: ErrorCode | None, message: str) -> SidecarError:
    """The SidecarError that ends a call whose single evaluation failed with `error_code`."""
    return EVALUATION_ERRORS.get(error_code, Unknown)(message) if error_code else Unknown(message)


def undecodable_message(expected: str) -> str:
    """The status message for a request that does not parse as `expected` (a full message type name,
    e.g. "flagd.evaluation.v1.ResolveBooleanRequest")."""
    return f"the request is not a valid {expected} message (is the client built from this server's .proto?)"


def abort(
    context: grpc.ServicerContext,
    code: grpc.StatusCode,
    message: str,
    suffix: str = "",
    details: Sequence[Message] = (),
) -> NoReturn:
    """End the call: the one place a status leaves the sidecar's services, its message bounded
    (it may echo client input) and then `suffix` (the server's own words) added; `details` go
    with it as a google.rpc.Status (grpcio-status's rpc_status.from_call reads them)."""
    text = bounded(message) + suffix
    if details:
        status = status_pb2.Status(code=code.value[0], message=text)
        for detail in details:
            packed = any_pb2.Any()
            packed.Pack(detail)
            status.details.append(packed)
        context.set_trailing_metadata(((STATUS_DETAILS_KEY, status.SerializeToString()),))
    context.abort(code, text)
    raise AssertionError("unreachable: ServicerContext.abort raises")

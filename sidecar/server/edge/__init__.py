"""The gRPC edge every service shares (DESIGN.md, "Layers"): one error hierarchy and its mapping
to gRPC status codes (errors), guarded timing into the RPC metrics (timing), and context admission
with Struct <-> Python (context)."""

from .context import (
    FLAGD,
    NATIVE,
    admit_attributes,
    admit_user,
    check_limits,
    fill_struct,
    fill_value,
    plain_context,
    python_to_value,
    struct_to_attributes,
    user_context,
    value_to_python,
)
from .errors import (
    INTERNAL_ERROR,
    NOT_READY,
    DataLoss,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    SidecarError,
    Unavailable,
    Unknown,
    abort,
    evaluation_error,
)
from .timing import CallEdge, EdgeServicer, guarded

__all__ = [
    "FLAGD",
    "INTERNAL_ERROR",
    "NATIVE",
    "NOT_READY",
    "CallEdge",
    "DataLoss",
    "EdgeServicer",
    "InvalidArgument",
    "NotFound",
    "ResourceExhausted",
    "SidecarError",
    "Unavailable",
    "Unknown",
    "abort",
    "admit_attributes",
    "admit_user",
    "check_limits",
    "evaluation_error",
    "fill_struct",
    "fill_value",
    "guarded",
    "plain_context",
    "python_to_value",
    "struct_to_attributes",
    "user_context",
    "value_to_python",
]

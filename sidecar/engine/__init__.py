"""Pure flag evaluation: model, validation and compilation, operators, bucketing, traces. No I/O."""

from .bucketing import bucket, bucket_text
from .compiler import compile_flag_set, fingerprint
from .evaluator import InvalidContextError, build_context, evaluate, evaluate_plan, evaluation_plan
from .model import (
    Context,
    ErrorCode,
    Evaluation,
    Flag,
    FlagSet,
    FlagSetError,
    Problem,
    Reason,
    Segment,
    TraceStep,
    Variant,
    flag_not_found,
)
from .operators import OPERATIONS

__all__ = [
    "OPERATIONS",
    "Context",
    "ErrorCode",
    "Evaluation",
    "Flag",
    "FlagSet",
    "FlagSetError",
    "InvalidContextError",
    "Problem",
    "Reason",
    "Segment",
    "TraceStep",
    "Variant",
    "bucket",
    "bucket_text",
    "build_context",
    "compile_flag_set",
    "evaluate",
    "evaluate_plan",
    "evaluation_plan",
    "fingerprint",
    "flag_not_found",
]

"""FlagSidecarProvider: the in-process client as an OpenFeature provider (openfeature-sdk).

Answers as OpenFeature's flagd providers do (their in-process resolver's mapping):

- value, variant, reason (our reason names are OpenFeature's: STATIC, DEFAULT, TARGETING_MATCH,
  SPLIT, DISABLED, ERROR) and flag_metadata (the flag's metadata, scalars only, as OpenFeature's
  FlagMetadata allows);
- errors are raised as the SDK's exceptions, which it reports with the caller's default and
  reason ERROR: FLAG_NOT_FOUND, TYPE_MISMATCH (a flag of another type), INVALID_CONTEXT,
  PARSE_ERROR, GENERAL; before the first set, PROVIDER_NOT_READY;
- no default set (no value, no variant): the caller's default with the flag's reason;
- integers: a fractional number is truncated toward zero (flagd's `int64(float)`), a float flag
  read as an integer included; booleans are never numbers;
- the context: targeting_key is the user id; attributes starting with "$" are the sidecar's and
  dropped, and so are objects and lists (the SDKs send them freely; our constraints only test
  scalars), as the sidecar's flagd services read a context (README: "Using OpenFeature flagd
  providers").

Each evaluation goes through FlagSidecarClient.evaluate, so its FeatureEvent reaches the sidecar's
EventService as the plain API's do. A new set from the stream emits
PROVIDER_CONFIGURATION_CHANGED with the keys of the flags that changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import (
    FlagNotFoundError,
    GeneralError,
    InvalidContextError,
    OpenFeatureError,
    ParseError,
    ProviderNotReadyError,
    TargetingKeyMissingError,
    TypeMismatchError,
)
from openfeature.flag_evaluation import FlagResolutionDetails
from openfeature.provider import AbstractProvider, Metadata

from .client import FlagSidecarClient
from .evaluation import ErrorCode, Evaluation, Reason
from .snapshot import Snapshot

__all__ = ["FlagSidecarProvider"]

_ERRORS: Mapping[ErrorCode, Callable[[str], OpenFeatureError]] = {
    ErrorCode.FLAG_NOT_FOUND: FlagNotFoundError,
    ErrorCode.TYPE_MISMATCH: TypeMismatchError,
    ErrorCode.PARSE_ERROR: ParseError,
    ErrorCode.TARGETING_KEY_MISSING: TargetingKeyMissingError,
    ErrorCode.INVALID_CONTEXT: InvalidContextError,
    ErrorCode.GENERAL: GeneralError,
}
_SCALARS = (str, bool, int, float)
_REASON_NAMES: Mapping[Reason, str] = {reason: reason.name for reason in Reason}
# id(a compiled flag's metadata) -> (that mapping, its scalars, read-only); bounded.
_METADATA: dict[int, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}
_MAX_METADATA = 10_000
_EMPTY: Mapping[str, Any] = {}


class FlagSidecarProvider(AbstractProvider):
    """`FlagSidecarProvider(client)` or `FlagSidecarProvider(target=..., events_target=...)`;
    `initialize` starts the client and waits up to `timeout` seconds for its first set."""

    def __init__(
        self, client: FlagSidecarClient | None = None, *, timeout: float = 10.0, **options: Any
    ) -> None:
        super().__init__()
        self.client = client if client is not None else FlagSidecarClient(**options)
        self._timeout = timeout
        self._versions: dict[str, int] = {}
        self.client.on_change(self._changed)

    def get_metadata(self) -> Metadata:
        return Metadata(name="flag-sidecar in-process")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        try:
            self.client.start(wait=self._timeout)
        except TimeoutError as error:
            raise ProviderNotReadyError(str(error)) from None

    def shutdown(self) -> None:
        self.client.close()

    def _changed(self, snapshot: Snapshot) -> None:
        versions = {key: flag.version for key, flag in snapshot.flags.items()}
        first = not self._versions
        changed = sorted(
            key
            for key in versions.keys() | self._versions.keys()
            if versions.get(key) != self._versions.get(key)
        )
        self._versions = versions
        if not first and hasattr(self, "_on_emit"):
            self.emit_provider_configuration_changed(
                ProviderEventDetails(flags_changed=changed, message=f"revision {snapshot.revision}")
            )

    # ------------------------------------------------------------ resolution

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        evaluation = self._evaluate(flag_key, evaluation_context)
        value = evaluation.value
        if evaluation.has_value and type(value) is not bool:
            raise TypeMismatchError(f"flag {flag_key!r} is not a boolean ({_kind(value)})")
        return _details(evaluation, value, default_value)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        evaluation = self._evaluate(flag_key, evaluation_context)
        value = evaluation.value
        if evaluation.has_value and type(value) is not str:
            raise TypeMismatchError(f"flag {flag_key!r} is not a string ({_kind(value)})")
        return _details(evaluation, value, default_value)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        evaluation = self._evaluate(flag_key, evaluation_context)
        value = evaluation.value
        if evaluation.has_value:
            if type(value) not in (int, float):
                raise TypeMismatchError(f"flag {flag_key!r} is not a number ({_kind(value)})")
            value = int(value)  # toward zero, as flagd's int64(float)
        return _details(evaluation, value, default_value)

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        evaluation = self._evaluate(flag_key, evaluation_context)
        value = evaluation.value
        if evaluation.has_value:
            if type(value) not in (int, float):
                raise TypeMismatchError(f"flag {flag_key!r} is not a number ({_kind(value)})")
            value = float(value)
        return _details(evaluation, value, default_value)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[Any] | Mapping[str, Any],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[Any] | Mapping[str, Any]]:
        evaluation = self._evaluate(flag_key, evaluation_context)
        value = evaluation.value
        if evaluation.has_value and not isinstance(value, dict | list):
            raise TypeMismatchError(f"flag {flag_key!r} is not an object ({_kind(value)})")
        return _details(evaluation, value, default_value)

    def _evaluate(self, flag_key: str, context: EvaluationContext | None) -> Evaluation:
        client = self.client
        if not client.ready:
            raise ProviderNotReadyError(f"no flag set received yet from {client.target}")
        if context is None:
            evaluation = client.evaluate(flag_key)
        else:
            user_id, attributes = context.targeting_key or "", context.attributes
            evaluation = client.evaluate(flag_key, user_id, attributes)
            # The usual context is all scalars and goes through as it is (the client checks it
            # anyway); one the client refuses is read as the flagd services read it, and tried again.
            if evaluation.error_code is ErrorCode.INVALID_CONTEXT:
                evaluation = client.evaluate(flag_key, user_id, _scalars(attributes))
        code = evaluation.error_code
        if code is not None:
            raise _ERRORS.get(code, GeneralError)(evaluation.error_message)
        return evaluation


def _scalars(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The scalars of an OpenFeature context, without the sidecar's "$" keys (module docstring)."""
    return {
        key: value
        for key, value in attributes.items()
        if key[:1] != "$" and (value is None or isinstance(value, _SCALARS))
    }


def _details(evaluation: Evaluation, value: Any, default: Any) -> FlagResolutionDetails[Any]:
    metadata = _scalar_metadata(evaluation.flag_metadata)
    reason = _REASON_NAMES[evaluation.reason]
    if not evaluation.has_value:  # no default set: the caller's default, the flag's reason
        return FlagResolutionDetails(default, reason=reason, flag_metadata=metadata)
    return FlagResolutionDetails(value, reason=reason, variant=evaluation.variant, flag_metadata=metadata)


def _scalar_metadata(metadata: Mapping[str, Any]) -> Any:
    """A flag's metadata as OpenFeature's FlagMetadata (scalars only), read-only; made once per
    compiled flag (keyed by its metadata object, which lives as long as the flag)."""
    if not metadata:
        return {}
    known = _METADATA.get(id(metadata))
    if known is not None and known[0] is metadata:
        return known[1]
    if len(_METADATA) >= _MAX_METADATA:
        _METADATA.clear()
    scalars = MappingProxyType({key: item for key, item in metadata.items() if isinstance(item, _SCALARS)})
    _METADATA[id(metadata)] = (metadata, scalars)
    return scalars


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__

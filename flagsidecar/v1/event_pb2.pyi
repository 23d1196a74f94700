from flagsidecar.v1 import evaluation_pb2 as _evaluation_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrackRequest(_message.Message):
    __slots__ = ("name", "user", "details")
    NAME_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    name: str
    user: _evaluation_pb2.User
    details: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., user: _Optional[_Union[_evaluation_pb2.User, _Mapping]] = ..., details: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class TrackResponse(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    def __init__(self, accepted: _Optional[int] = ...) -> None: ...

class ReportEvaluationsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[FeatureEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[FeatureEvent, _Mapping]]] = ...) -> None: ...

class FeatureEvent(_message.Message):
    __slots__ = ("event_id", "flag_key", "user_key", "context_kind", "variation", "value", "sdk_default", "flag_version", "creation_date", "reason", "error_code", "error_message")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    USER_KEY_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_KIND_FIELD_NUMBER: _ClassVar[int]
    VARIATION_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SDK_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    FLAG_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATION_DATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    flag_key: str
    user_key: str
    context_kind: str
    variation: str
    value: _struct_pb2.Value
    sdk_default: bool
    flag_version: int
    creation_date: int
    reason: _evaluation_pb2.Reason
    error_code: _evaluation_pb2.ErrorCode
    error_message: str
    def __init__(self, event_id: _Optional[str] = ..., flag_key: _Optional[str] = ..., user_key: _Optional[str] = ..., context_kind: _Optional[str] = ..., variation: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., sdk_default: _Optional[bool] = ..., flag_version: _Optional[int] = ..., creation_date: _Optional[int] = ..., reason: _Optional[_Union[_evaluation_pb2.Reason, str]] = ..., error_code: _Optional[_Union[_evaluation_pb2.ErrorCode, str]] = ..., error_message: _Optional[str] = ...) -> None: ...

class ReportEvaluationsResponse(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    def __init__(self, accepted: _Optional[int] = ...) -> None: ...

class ExportedEvent(_message.Message):
    __slots__ = ("kind", "context_kind", "user_key", "creation_date", "key", "variation", "value", "default", "version", "source", "event_id", "evaluation_context", "tracking_event_details", "reason", "error_code", "error_message")
    KIND_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_KIND_FIELD_NUMBER: _ClassVar[int]
    USER_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATION_DATE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VARIATION_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TRACKING_EVENT_DETAILS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    context_kind: str
    user_key: str
    creation_date: int
    key: str
    variation: str
    value: _struct_pb2.Value
    default: bool
    version: str
    source: str
    event_id: str
    evaluation_context: _struct_pb2.Struct
    tracking_event_details: _struct_pb2.Struct
    reason: _evaluation_pb2.Reason
    error_code: _evaluation_pb2.ErrorCode
    error_message: str
    def __init__(self, kind: _Optional[str] = ..., context_kind: _Optional[str] = ..., user_key: _Optional[str] = ..., creation_date: _Optional[int] = ..., key: _Optional[str] = ..., variation: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., default: _Optional[bool] = ..., version: _Optional[str] = ..., source: _Optional[str] = ..., event_id: _Optional[str] = ..., evaluation_context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tracking_event_details: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., reason: _Optional[_Union[_evaluation_pb2.Reason, str]] = ..., error_code: _Optional[_Union[_evaluation_pb2.ErrorCode, str]] = ..., error_message: _Optional[str] = ...) -> None: ...

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_UNSPECIFIED: _ClassVar[Reason]
    STATIC: _ClassVar[Reason]
    DEFAULT: _ClassVar[Reason]
    TARGETING_MATCH: _ClassVar[Reason]
    SPLIT: _ClassVar[Reason]
    DISABLED: _ClassVar[Reason]
    ERROR: _ClassVar[Reason]

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CODE_UNSPECIFIED: _ClassVar[ErrorCode]
    FLAG_NOT_FOUND: _ClassVar[ErrorCode]
    TYPE_MISMATCH: _ClassVar[ErrorCode]
    PARSE_ERROR: _ClassVar[ErrorCode]
    TARGETING_KEY_MISSING: _ClassVar[ErrorCode]
    INVALID_CONTEXT: _ClassVar[ErrorCode]
    GENERAL: _ClassVar[ErrorCode]
REASON_UNSPECIFIED: Reason
STATIC: Reason
DEFAULT: Reason
TARGETING_MATCH: Reason
SPLIT: Reason
DISABLED: Reason
ERROR: Reason
ERROR_CODE_UNSPECIFIED: ErrorCode
FLAG_NOT_FOUND: ErrorCode
TYPE_MISMATCH: ErrorCode
PARSE_ERROR: ErrorCode
TARGETING_KEY_MISSING: ErrorCode
INVALID_CONTEXT: ErrorCode
GENERAL: ErrorCode

class User(_message.Message):
    __slots__ = ("id", "context")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    id: str
    context: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("flag_key", "user", "debug")
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    DEBUG_FIELD_NUMBER: _ClassVar[int]
    flag_key: str
    user: User
    debug: bool
    def __init__(self, flag_key: _Optional[str] = ..., user: _Optional[_Union[User, _Mapping]] = ..., debug: _Optional[bool] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("evaluation",)
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    evaluation: Evaluation
    def __init__(self, evaluation: _Optional[_Union[Evaluation, _Mapping]] = ...) -> None: ...

class EvaluateAllRequest(_message.Message):
    __slots__ = ("user", "flag_keys", "debug")
    USER_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEYS_FIELD_NUMBER: _ClassVar[int]
    DEBUG_FIELD_NUMBER: _ClassVar[int]
    user: User
    flag_keys: _containers.RepeatedScalarFieldContainer[str]
    debug: bool
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., flag_keys: _Optional[_Iterable[str]] = ..., debug: _Optional[bool] = ...) -> None: ...

class EvaluateAllResponse(_message.Message):
    __slots__ = ("evaluations", "total")
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[Evaluation]
    total: int
    def __init__(self, evaluations: _Optional[_Iterable[_Union[Evaluation, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class Evaluation(_message.Message):
    __slots__ = ("flag_key", "value", "variant", "reason", "error_code", "error_message", "flag_version", "stack_trace")
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FLAG_VERSION_FIELD_NUMBER: _ClassVar[int]
    STACK_TRACE_FIELD_NUMBER: _ClassVar[int]
    flag_key: str
    value: _struct_pb2.Value
    variant: str
    reason: Reason
    error_code: ErrorCode
    error_message: str
    flag_version: int
    stack_trace: _containers.RepeatedCompositeFieldContainer[StackTrace]
    def __init__(self, flag_key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., variant: _Optional[str] = ..., reason: _Optional[_Union[Reason, str]] = ..., error_code: _Optional[_Union[ErrorCode, str]] = ..., error_message: _Optional[str] = ..., flag_version: _Optional[int] = ..., stack_trace: _Optional[_Iterable[_Union[StackTrace, _Mapping]]] = ...) -> None: ...

class StackTrace(_message.Message):
    __slots__ = ("type", "id", "answer", "matched", "detail", "depth", "bucket")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    type: str
    id: str
    answer: _struct_pb2.Value
    matched: bool
    detail: str
    depth: int
    bucket: int
    def __init__(self, type: _Optional[str] = ..., id: _Optional[str] = ..., answer: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., matched: _Optional[bool] = ..., detail: _Optional[str] = ..., depth: _Optional[int] = ..., bucket: _Optional[int] = ...) -> None: ...

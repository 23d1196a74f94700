from flagsidecar.v1 import flag_pb2 as _flag_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FullSetReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FULL_SET_REASON_UNSPECIFIED: _ClassVar[FullSetReason]
    FULL_SET_REASON_INITIAL: _ClassVar[FullSetReason]
    FULL_SET_REASON_REVISION_TOO_OLD: _ClassVar[FullSetReason]
    FULL_SET_REASON_UNKNOWN_REVISION: _ClassVar[FullSetReason]
    FULL_SET_REASON_FELL_BEHIND: _ClassVar[FullSetReason]
FULL_SET_REASON_UNSPECIFIED: FullSetReason
FULL_SET_REASON_INITIAL: FullSetReason
FULL_SET_REASON_REVISION_TOO_OLD: FullSetReason
FULL_SET_REASON_UNKNOWN_REVISION: FullSetReason
FULL_SET_REASON_FELL_BEHIND: FullSetReason

class WatchRequest(_message.Message):
    __slots__ = ("selector", "since_revision")
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    SINCE_REVISION_FIELD_NUMBER: _ClassVar[int]
    selector: str
    since_revision: int
    def __init__(self, selector: _Optional[str] = ..., since_revision: _Optional[int] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("revision", "full_set", "delta", "heartbeat", "full_set_reason", "message", "flag_set")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    FULL_SET_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    FULL_SET_REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    revision: int
    full_set: _flag_pb2.FlagSet
    delta: FlagSetDelta
    heartbeat: Heartbeat
    full_set_reason: FullSetReason
    message: str
    flag_set: str
    def __init__(self, revision: _Optional[int] = ..., full_set: _Optional[_Union[_flag_pb2.FlagSet, _Mapping]] = ..., delta: _Optional[_Union[FlagSetDelta, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., full_set_reason: _Optional[_Union[FullSetReason, str]] = ..., message: _Optional[str] = ..., flag_set: _Optional[str] = ...) -> None: ...

class FlagSetDelta(_message.Message):
    __slots__ = ("since_revision", "flags", "segments", "removed_flags", "removed_segments")
    SINCE_REVISION_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FLAGS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    since_revision: int
    flags: _containers.RepeatedCompositeFieldContainer[_flag_pb2.Flag]
    segments: _containers.RepeatedCompositeFieldContainer[_flag_pb2.Segment]
    removed_flags: _containers.RepeatedScalarFieldContainer[str]
    removed_segments: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, since_revision: _Optional[int] = ..., flags: _Optional[_Iterable[_Union[_flag_pb2.Flag, _Mapping]]] = ..., segments: _Optional[_Iterable[_Union[_flag_pb2.Segment, _Mapping]]] = ..., removed_flags: _Optional[_Iterable[str]] = ..., removed_segments: _Optional[_Iterable[str]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FetchRequest(_message.Message):
    __slots__ = ("selector",)
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    selector: str
    def __init__(self, selector: _Optional[str] = ...) -> None: ...

class FetchResponse(_message.Message):
    __slots__ = ("flag_set", "flag_set_name")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    FLAG_SET_NAME_FIELD_NUMBER: _ClassVar[int]
    flag_set: _flag_pb2.FlagSet
    flag_set_name: str
    def __init__(self, flag_set: _Optional[_Union[_flag_pb2.FlagSet, _Mapping]] = ..., flag_set_name: _Optional[str] = ...) -> None: ...

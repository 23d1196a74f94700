from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Operation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATION_UNSPECIFIED: _ClassVar[Operation]
    ONE_OF: _ClassVar[Operation]
    NOT_ONE_OF: _ClassVar[Operation]
    GREATER: _ClassVar[Operation]
    GREATER_OR_EQUAL: _ClassVar[Operation]
    LOWER: _ClassVar[Operation]
    LOWER_OR_EQUAL: _ClassVar[Operation]
    EXISTS: _ClassVar[Operation]
    DOESNT_EXIST: _ClassVar[Operation]
    CONTAINS: _ClassVar[Operation]
    DOESNT_CONTAIN: _ClassVar[Operation]
    STARTS_WITH: _ClassVar[Operation]
    DOESNT_START_WITH: _ClassVar[Operation]
    ENDS_WITH: _ClassVar[Operation]
    DOESNT_END_WITH: _ClassVar[Operation]
    MATCHES_REGEX: _ClassVar[Operation]
    DOESNT_MATCH_REGEX: _ClassVar[Operation]
    IS_IN_SEGMENT: _ClassVar[Operation]
    ISNT_IN_SEGMENT: _ClassVar[Operation]
    IS_IN_NETWORK: _ClassVar[Operation]
    SEMVER_EQUAL: _ClassVar[Operation]
    SEMVER_NOT_EQUAL: _ClassVar[Operation]
    SEMVER_LOWER: _ClassVar[Operation]
    SEMVER_LOWER_OR_EQUAL: _ClassVar[Operation]
    SEMVER_GREATER: _ClassVar[Operation]
    SEMVER_GREATER_OR_EQUAL: _ClassVar[Operation]
    SEMVER_SAME_MAJOR: _ClassVar[Operation]
    SEMVER_SAME_MINOR: _ClassVar[Operation]
OPERATION_UNSPECIFIED: Operation
ONE_OF: Operation
NOT_ONE_OF: Operation
GREATER: Operation
GREATER_OR_EQUAL: Operation
LOWER: Operation
LOWER_OR_EQUAL: Operation
EXISTS: Operation
DOESNT_EXIST: Operation
CONTAINS: Operation
DOESNT_CONTAIN: Operation
STARTS_WITH: Operation
DOESNT_START_WITH: Operation
ENDS_WITH: Operation
DOESNT_END_WITH: Operation
MATCHES_REGEX: Operation
DOESNT_MATCH_REGEX: Operation
IS_IN_SEGMENT: Operation
ISNT_IN_SEGMENT: Operation
IS_IN_NETWORK: Operation
SEMVER_EQUAL: Operation
SEMVER_NOT_EQUAL: Operation
SEMVER_LOWER: Operation
SEMVER_LOWER_OR_EQUAL: Operation
SEMVER_GREATER: Operation
SEMVER_GREATER_OR_EQUAL: Operation
SEMVER_SAME_MAJOR: Operation
SEMVER_SAME_MINOR: Operation

class Flag(_message.Message):
    __slots__ = ("key", "name", "description", "enabled", "version", "variants", "rules", "default_variant_when_on", "default_variant_when_off", "track_events", "metadata")
    KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VARIANT_WHEN_ON_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VARIANT_WHEN_OFF_FIELD_NUMBER: _ClassVar[int]
    TRACK_EVENTS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    key: str
    name: str
    description: str
    enabled: bool
    version: int
    variants: _containers.RepeatedCompositeFieldContainer[Variant]
    rules: _containers.RepeatedCompositeFieldContainer[FlagRule]
    default_variant_when_on: str
    default_variant_when_off: str
    track_events: bool
    metadata: _struct_pb2.Struct
    def __init__(self, key: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., enabled: _Optional[bool] = ..., version: _Optional[int] = ..., variants: _Optional[_Iterable[_Union[Variant, _Mapping]]] = ..., rules: _Optional[_Iterable[_Union[FlagRule, _Mapping]]] = ..., default_variant_when_on: _Optional[str] = ..., default_variant_when_off: _Optional[str] = ..., track_events: _Optional[bool] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Variant(_message.Message):
    __slots__ = ("key", "description", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    description: str
    value: _struct_pb2.Value
    def __init__(self, key: _Optional[str] = ..., description: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class FlagRule(_message.Message):
    __slots__ = ("id", "constraints", "distributions", "bucket_by")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    BUCKET_BY_FIELD_NUMBER: _ClassVar[int]
    id: str
    constraints: _containers.RepeatedCompositeFieldContainer[Constraint]
    distributions: _containers.RepeatedCompositeFieldContainer[Distribution]
    bucket_by: str
    def __init__(self, id: _Optional[str] = ..., constraints: _Optional[_Iterable[_Union[Constraint, _Mapping]]] = ..., distributions: _Optional[_Iterable[_Union[Distribution, _Mapping]]] = ..., bucket_by: _Optional[str] = ...) -> None: ...

class Constraint(_message.Message):
    __slots__ = ("property", "operation", "values")
    PROPERTY_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    property: str
    operation: Operation
    values: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    def __init__(self, property: _Optional[str] = ..., operation: _Optional[_Union[Operation, str]] = ..., values: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ...) -> None: ...

class Distribution(_message.Message):
    __slots__ = ("variant", "percentage")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    variant: str
    percentage: float
    def __init__(self, variant: _Optional[str] = ..., percentage: _Optional[float] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("key", "name", "description", "rules")
    KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    key: str
    name: str
    description: str
    rules: _containers.RepeatedCompositeFieldContainer[SegmentRule]
    def __init__(self, key: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., rules: _Optional[_Iterable[_Union[SegmentRule, _Mapping]]] = ...) -> None: ...

class SegmentRule(_message.Message):
    __slots__ = ("id", "constraints")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    constraints: _containers.RepeatedCompositeFieldContainer[Constraint]
    def __init__(self, id: _Optional[str] = ..., constraints: _Optional[_Iterable[_Union[Constraint, _Mapping]]] = ...) -> None: ...

class FlagSet(_message.Message):
    __slots__ = ("flags", "segments", "revision")
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    flags: _containers.RepeatedCompositeFieldContainer[Flag]
    segments: _containers.RepeatedCompositeFieldContainer[Segment]
    revision: int
    def __init__(self, flags: _Optional[_Iterable[_Union[Flag, _Mapping]]] = ..., segments: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

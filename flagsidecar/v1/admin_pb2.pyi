import datetime

from flagsidecar.v1 import evaluation_pb2 as _evaluation_pb2
from flagsidecar.v1 import flag_pb2 as _flag_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NewFlag(_message.Message):
    __slots__ = ("key", "name", "description", "enabled", "variants", "rules", "default_variant_when_on", "default_variant_when_off", "track_events", "metadata")
    KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
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
    variants: _containers.RepeatedCompositeFieldContainer[NewVariant]
    rules: _containers.RepeatedCompositeFieldContainer[NewFlagRule]
    default_variant_when_on: str
    default_variant_when_off: str
    track_events: bool
    metadata: _struct_pb2.Struct
    def __init__(self, key: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., enabled: _Optional[bool] = ..., variants: _Optional[_Iterable[_Union[NewVariant, _Mapping]]] = ..., rules: _Optional[_Iterable[_Union[NewFlagRule, _Mapping]]] = ..., default_variant_when_on: _Optional[str] = ..., default_variant_when_off: _Optional[str] = ..., track_events: _Optional[bool] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class UpdateFlag(_message.Message):
    __slots__ = ("name", "description", "enabled", "default_variant_when_on", "default_variant_when_off", "track_events", "metadata")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VARIANT_WHEN_ON_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VARIANT_WHEN_OFF_FIELD_NUMBER: _ClassVar[int]
    TRACK_EVENTS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    enabled: bool
    default_variant_when_on: str
    default_variant_when_off: str
    track_events: bool
    metadata: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., enabled: _Optional[bool] = ..., default_variant_when_on: _Optional[str] = ..., default_variant_when_off: _Optional[str] = ..., track_events: _Optional[bool] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class NewVariant(_message.Message):
    __slots__ = ("key", "description", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    description: str
    value: _struct_pb2.Value
    def __init__(self, key: _Optional[str] = ..., description: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class UpdateVariant(_message.Message):
    __slots__ = ("description", "value")
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    description: str
    value: _struct_pb2.Value
    def __init__(self, description: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class NewConstraint(_message.Message):
    __slots__ = ("property", "operation", "values")
    PROPERTY_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    property: str
    operation: _flag_pb2.Operation
    values: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    def __init__(self, property: _Optional[str] = ..., operation: _Optional[_Union[_flag_pb2.Operation, str]] = ..., values: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ...) -> None: ...

class NewDistribution(_message.Message):
    __slots__ = ("variant", "percentage")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    variant: str
    percentage: float
    def __init__(self, variant: _Optional[str] = ..., percentage: _Optional[float] = ...) -> None: ...

class NewFlagRule(_message.Message):
    __slots__ = ("id", "constraints", "distributions", "bucket_by")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    BUCKET_BY_FIELD_NUMBER: _ClassVar[int]
    id: str
    constraints: _containers.RepeatedCompositeFieldContainer[NewConstraint]
    distributions: _containers.RepeatedCompositeFieldContainer[NewDistribution]
    bucket_by: str
    def __init__(self, id: _Optional[str] = ..., constraints: _Optional[_Iterable[_Union[NewConstraint, _Mapping]]] = ..., distributions: _Optional[_Iterable[_Union[NewDistribution, _Mapping]]] = ..., bucket_by: _Optional[str] = ...) -> None: ...

class UpdateFlagRule(_message.Message):
    __slots__ = ("id", "constraints", "distributions", "bucket_by")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    BUCKET_BY_FIELD_NUMBER: _ClassVar[int]
    id: str
    constraints: _containers.RepeatedCompositeFieldContainer[NewConstraint]
    distributions: _containers.RepeatedCompositeFieldContainer[NewDistribution]
    bucket_by: str
    def __init__(self, id: _Optional[str] = ..., constraints: _Optional[_Iterable[_Union[NewConstraint, _Mapping]]] = ..., distributions: _Optional[_Iterable[_Union[NewDistribution, _Mapping]]] = ..., bucket_by: _Optional[str] = ...) -> None: ...

class NewSegment(_message.Message):
    __slots__ = ("key", "name", "description", "rules")
    KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    key: str
    name: str
    description: str
    rules: _containers.RepeatedCompositeFieldContainer[NewSegmentRule]
    def __init__(self, key: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., rules: _Optional[_Iterable[_Union[NewSegmentRule, _Mapping]]] = ...) -> None: ...

class UpdateSegment(_message.Message):
    __slots__ = ("name", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class NewSegmentRule(_message.Message):
    __slots__ = ("id", "constraints")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    constraints: _containers.RepeatedCompositeFieldContainer[NewConstraint]
    def __init__(self, id: _Optional[str] = ..., constraints: _Optional[_Iterable[_Union[NewConstraint, _Mapping]]] = ...) -> None: ...

class UpdateSegmentRule(_message.Message):
    __slots__ = ("id", "constraints")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    constraints: _containers.RepeatedCompositeFieldContainer[NewConstraint]
    def __init__(self, id: _Optional[str] = ..., constraints: _Optional[_Iterable[_Union[NewConstraint, _Mapping]]] = ...) -> None: ...

class StoredFlag(_message.Message):
    __slots__ = ("flag", "updated_at", "updated_by")
    FLAG_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    flag: _flag_pb2.Flag
    updated_at: _timestamp_pb2.Timestamp
    updated_by: str
    def __init__(self, flag: _Optional[_Union[_flag_pb2.Flag, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_by: _Optional[str] = ...) -> None: ...

class StoredSegment(_message.Message):
    __slots__ = ("segment", "version", "updated_at", "updated_by")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    segment: _flag_pb2.Segment
    version: int
    updated_at: _timestamp_pb2.Timestamp
    updated_by: str
    def __init__(self, segment: _Optional[_Union[_flag_pb2.Segment, _Mapping]] = ..., version: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_by: _Optional[str] = ...) -> None: ...

class FlagHistoryEntry(_message.Message):
    __slots__ = ("version", "action", "actor", "time", "before", "after", "changed_fields")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    version: int
    action: str
    actor: str
    time: _timestamp_pb2.Timestamp
    before: _flag_pb2.Flag
    after: _flag_pb2.Flag
    changed_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[int] = ..., action: _Optional[str] = ..., actor: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., before: _Optional[_Union[_flag_pb2.Flag, _Mapping]] = ..., after: _Optional[_Union[_flag_pb2.Flag, _Mapping]] = ..., changed_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateFlagRequest(_message.Message):
    __slots__ = ("flag_set", "flag")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    flag: NewFlag
    def __init__(self, flag_set: _Optional[str] = ..., flag: _Optional[_Union[NewFlag, _Mapping]] = ...) -> None: ...

class CreateFlagResponse(_message.Message):
    __slots__ = ("flag",)
    FLAG_FIELD_NUMBER: _ClassVar[int]
    flag: StoredFlag
    def __init__(self, flag: _Optional[_Union[StoredFlag, _Mapping]] = ...) -> None: ...

class UpdateFlagRequest(_message.Message):
    __slots__ = ("flag_set", "key", "expected_version", "flag")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    key: str
    expected_version: int
    flag: UpdateFlag
    def __init__(self, flag_set: _Optional[str] = ..., key: _Optional[str] = ..., expected_version: _Optional[int] = ..., flag: _Optional[_Union[UpdateFlag, _Mapping]] = ...) -> None: ...

class UpdateFlagResponse(_message.Message):
    __slots__ = ("flag",)
    FLAG_FIELD_NUMBER: _ClassVar[int]
    flag: StoredFlag
    def __init__(self, flag: _Optional[_Union[StoredFlag, _Mapping]] = ...) -> None: ...

class DeleteFlagRequest(_message.Message):
    __slots__ = ("flag_set", "key", "expected_version")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    key: str
    expected_version: int
    def __init__(self, flag_set: _Optional[str] = ..., key: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class DeleteFlagResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class GetFlagRequest(_message.Message):
    __slots__ = ("flag_set", "key")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    key: str
    def __init__(self, flag_set: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class GetFlagResponse(_message.Message):
    __slots__ = ("flag",)
    FLAG_FIELD_NUMBER: _ClassVar[int]
    flag: StoredFlag
    def __init__(self, flag: _Optional[_Union[StoredFlag, _Mapping]] = ...) -> None: ...

class ListFlagsRequest(_message.Message):
    __slots__ = ("flag_set", "page_size", "page_token")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    page_size: int
    page_token: str
    def __init__(self, flag_set: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFlagsResponse(_message.Message):
    __slots__ = ("flags", "next_page_token")
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    flags: _containers.RepeatedCompositeFieldContainer[StoredFlag]
    next_page_token: str
    def __init__(self, flags: _Optional[_Iterable[_Union[StoredFlag, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateVariantRequest(_message.Message):
    __slots__ = ("flag_set", "flag_key", "expected_version", "variant")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    flag_key: str
    expected_version: int
    variant: NewVariant
    def __init__(self, flag_set: _Optional[str] = ..., flag_key: _Optional[str] = ..., expected_version: _Optional[int] = ..., variant: _Optional[_Union[NewVariant, _Mapping]] = ...) -> None: ...

class CreateVariantResponse(_message.Message):
    __slots__ = ("flag",)
    FLAG_FIELD_NUMBER: _ClassVar[int]
    flag: StoredFlag
    def __init__(self, flag: _Optional[_Union[StoredFlag, _Mapping]] = ...) -> None: ...

class UpdateVariantRequest(_message.Message):
    __slots__ = ("flag_set", "flag_key", "variant_key", "expected_version", "variant")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    VARIANT_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    flag_key: str
    variant_key: str
    expected_version: int
    variant: UpdateVariant
    def __init__(self, flag_set: _Optional[str] = ..., flag_key: _Optional[str] = ..., variant_key: _Optional[str] = ..., expected_version: _Optional[int] = ..., variant: _Optional[_Union[UpdateVariant, _Mapping]] = ...) -> None: ...

class UpdateVariantResponse(_message.Message):
    __slots__ = ("flag",)
    FLAG_FIELD_NUMBER: _ClassVar[int]
    flag: StoredFlag
    def __init__(self, flag: _Optional[_Union[StoredFlag, _Mapping]] = ...) -> None: ...

class DeleteVariantRequest(_message.Message):
    __slots__ = ("flag_set", "flag_key", "variant_key", "expected_version")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    VARIANT_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    flag_key: str
    variant_key: str
    expected_version: int
    def __init__(self, flag_set: _Optional[str] = ..., flag_key: _Optional[str] = ..., variant_key: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class DeleteVariantResponse(_message.Message):
    __slots__ = ("flag",)
    FLAG_FIELD_NUMBER: _ClassVar[int]
    flag: StoredFlag
    def __init__(self, flag: _Optional[_Union[StoredFlag, _Mapping]] = ...) -> None: ...

class CreateFlagRuleRequest(_message.Message):
    __slots__ = ("flag_set", "flag_key", "expected_version", "rule", "index")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    flag_key: str
    expected_version: int
    rule: NewFlagRule
    index: int
    def __init__(self, flag_set: _Optional[str] = ..., flag_key: _Optional[str] = ..., expected_version: _Optional[int] = ..., rule: _Optional[_Union[NewFlagRule, _Mapping]] = ..., index: _Optional[int] = ...) -> None: ...

class CreateFlagRuleResponse(_message.Message):
    __slots__ = ("flag",)
    FLAG_FIELD_NUMBER: _ClassVar[int]
    flag: StoredFlag
    def __init__(self, flag: _Optional[_Union[StoredFlag, _Mapping]] = ...) -> None: ...

class UpdateFlagRuleRequest(_message.Message):
    __slots__ = ("flag_set", "flag_key", "rule_id", "expected_version", "rule")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    flag_key: str
    rule_id: str
    expected_version: int
    rule: UpdateFlagRule
    def __init__(self, flag_set: _Optional[str] = ..., flag_key: _Optional[str] = ..., rule_id: _Optional[str] = ..., expected_version: _Optional[int] = ..., rule: _Optional[_Union[UpdateFlagRule, _Mapping]] = ...) -> None: ...

class UpdateFlagRuleResponse(_message.Message):
    __slots__ = ("flag",)
    FLAG_FIELD_NUMBER: _ClassVar[int]
    flag: StoredFlag
    def __init__(self, flag: _Optional[_Union[StoredFlag, _Mapping]] = ...) -> None: ...

class DeleteFlagRuleRequest(_message.Message):
    __slots__ = ("flag_set", "flag_key", "rule_id", "expected_version")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    flag_key: str
    rule_id: str
    expected_version: int
    def __init__(self, flag_set: _Optional[str] = ..., flag_key: _Optional[str] = ..., rule_id: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class DeleteFlagRuleResponse(_message.Message):
    __slots__ = ("flag",)
    FLAG_FIELD_NUMBER: _ClassVar[int]
    flag: StoredFlag
    def __init__(self, flag: _Optional[_Union[StoredFlag, _Mapping]] = ...) -> None: ...

class CreateSegmentRequest(_message.Message):
    __slots__ = ("flag_set", "segment")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    segment: NewSegment
    def __init__(self, flag_set: _Optional[str] = ..., segment: _Optional[_Union[NewSegment, _Mapping]] = ...) -> None: ...

class CreateSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: StoredSegment
    def __init__(self, segment: _Optional[_Union[StoredSegment, _Mapping]] = ...) -> None: ...

class UpdateSegmentRequest(_message.Message):
    __slots__ = ("flag_set", "key", "expected_version", "segment")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    key: str
    expected_version: int
    segment: UpdateSegment
    def __init__(self, flag_set: _Optional[str] = ..., key: _Optional[str] = ..., expected_version: _Optional[int] = ..., segment: _Optional[_Union[UpdateSegment, _Mapping]] = ...) -> None: ...

class UpdateSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: StoredSegment
    def __init__(self, segment: _Optional[_Union[StoredSegment, _Mapping]] = ...) -> None: ...

class DeleteSegmentRequest(_message.Message):
    __slots__ = ("flag_set", "key", "expected_version")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    key: str
    expected_version: int
    def __init__(self, flag_set: _Optional[str] = ..., key: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class DeleteSegmentResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class GetSegmentRequest(_message.Message):
    __slots__ = ("flag_set", "key")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    key: str
    def __init__(self, flag_set: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class GetSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: StoredSegment
    def __init__(self, segment: _Optional[_Union[StoredSegment, _Mapping]] = ...) -> None: ...

class ListSegmentsRequest(_message.Message):
    __slots__ = ("flag_set", "page_size", "page_token")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    page_size: int
    page_token: str
    def __init__(self, flag_set: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSegmentsResponse(_message.Message):
    __slots__ = ("segments", "next_page_token")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[StoredSegment]
    next_page_token: str
    def __init__(self, segments: _Optional[_Iterable[_Union[StoredSegment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateSegmentRuleRequest(_message.Message):
    __slots__ = ("flag_set", "segment_key", "expected_version", "rule")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    segment_key: str
    expected_version: int
    rule: NewSegmentRule
    def __init__(self, flag_set: _Optional[str] = ..., segment_key: _Optional[str] = ..., expected_version: _Optional[int] = ..., rule: _Optional[_Union[NewSegmentRule, _Mapping]] = ...) -> None: ...

class CreateSegmentRuleResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: StoredSegment
    def __init__(self, segment: _Optional[_Union[StoredSegment, _Mapping]] = ...) -> None: ...

class UpdateSegmentRuleRequest(_message.Message):
    __slots__ = ("flag_set", "segment_key", "rule_id", "expected_version", "rule")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_KEY_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    segment_key: str
    rule_id: str
    expected_version: int
    rule: UpdateSegmentRule
    def __init__(self, flag_set: _Optional[str] = ..., segment_key: _Optional[str] = ..., rule_id: _Optional[str] = ..., expected_version: _Optional[int] = ..., rule: _Optional[_Union[UpdateSegmentRule, _Mapping]] = ...) -> None: ...

class UpdateSegmentRuleResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: StoredSegment
    def __init__(self, segment: _Optional[_Union[StoredSegment, _Mapping]] = ...) -> None: ...

class DeleteSegmentRuleRequest(_message.Message):
    __slots__ = ("flag_set", "segment_key", "rule_id", "expected_version")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_KEY_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    segment_key: str
    rule_id: str
    expected_version: int
    def __init__(self, flag_set: _Optional[str] = ..., segment_key: _Optional[str] = ..., rule_id: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class DeleteSegmentRuleResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: StoredSegment
    def __init__(self, segment: _Optional[_Union[StoredSegment, _Mapping]] = ...) -> None: ...

class ListFlagHistoryRequest(_message.Message):
    __slots__ = ("flag_set", "key", "page_size", "page_token")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    key: str
    page_size: int
    page_token: str
    def __init__(self, flag_set: _Optional[str] = ..., key: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFlagHistoryResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[FlagHistoryEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[FlagHistoryEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RollbackFlagRequest(_message.Message):
    __slots__ = ("flag_set", "key", "expected_version", "to_version")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    key: str
    expected_version: int
    to_version: int
    def __init__(self, flag_set: _Optional[str] = ..., key: _Optional[str] = ..., expected_version: _Optional[int] = ..., to_version: _Optional[int] = ...) -> None: ...

class RollbackFlagResponse(_message.Message):
    __slots__ = ("flag",)
    FLAG_FIELD_NUMBER: _ClassVar[int]
    flag: StoredFlag
    def __init__(self, flag: _Optional[_Union[StoredFlag, _Mapping]] = ...) -> None: ...

class StoredUser(_message.Message):
    __slots__ = ("id", "context_kind", "first_seen", "last_seen", "context")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_KIND_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    id: str
    context_kind: str
    first_seen: _timestamp_pb2.Timestamp
    last_seen: _timestamp_pb2.Timestamp
    context: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., context_kind: _Optional[str] = ..., first_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class UserEvaluation(_message.Message):
    __slots__ = ("flag_key", "flag_version", "variant", "value", "reason", "error_code", "time")
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    FLAG_VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    flag_key: str
    flag_version: int
    variant: str
    value: _struct_pb2.Value
    reason: _evaluation_pb2.Reason
    error_code: _evaluation_pb2.ErrorCode
    time: _timestamp_pb2.Timestamp
    def __init__(self, flag_key: _Optional[str] = ..., flag_version: _Optional[int] = ..., variant: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., reason: _Optional[_Union[_evaluation_pb2.Reason, str]] = ..., error_code: _Optional[_Union[_evaluation_pb2.ErrorCode, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListUsersRequest(_message.Message):
    __slots__ = ("flag_set", "page_size", "page_token")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    page_size: int
    page_token: str
    def __init__(self, flag_set: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListUsersResponse(_message.Message):
    __slots__ = ("users", "next_page_token")
    USERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[StoredUser]
    next_page_token: str
    def __init__(self, users: _Optional[_Iterable[_Union[StoredUser, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetUserRequest(_message.Message):
    __slots__ = ("flag_set", "id")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    id: str
    def __init__(self, flag_set: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class GetUserResponse(_message.Message):
    __slots__ = ("user", "evaluations")
    USER_FIELD_NUMBER: _ClassVar[int]
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    user: StoredUser
    evaluations: _containers.RepeatedCompositeFieldContainer[UserEvaluation]
    def __init__(self, user: _Optional[_Union[StoredUser, _Mapping]] = ..., evaluations: _Optional[_Iterable[_Union[UserEvaluation, _Mapping]]] = ...) -> None: ...

class DeleteUserRequest(_message.Message):
    __slots__ = ("flag_set", "id")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    id: str
    def __init__(self, flag_set: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class DeleteUserResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeleteEvaluationRequest(_message.Message):
    __slots__ = ("flag_set", "user_id", "flag_key")
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    flag_set: str
    user_id: str
    flag_key: str
    def __init__(self, flag_set: _Optional[str] = ..., user_id: _Optional[str] = ..., flag_key: _Optional[str] = ...) -> None: ...

class DeleteEvaluationResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

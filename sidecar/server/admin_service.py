"""flagsidecar.v1.FlagAdminService: translation between the admin messages and the store's
FlagAdmin, which holds the logic (validation, versions, history). Each call is authenticated
(admin_access.py) and its outcome mapped to a status at the edge:

- a stale expected_version: ABORTED, the current version in the message and in an ErrorInfo
  (reason VERSION_CONFLICT, metadata current_version);
- a bad write: INVALID_ARGUMENT with a BadRequest listing every problem; nothing stored;
- a segment still in use: FAILED_PRECONDITION naming the flags, with a PreconditionFailure;
- an unknown flag, segment, variant, rule or version: NOT_FOUND; a create of a taken key:
  ALREADY_EXISTS; the database unreachable: UNAVAILABLE.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, TypeVar

import grpc
from google.rpc import error_details_pb2

from flagsidecar.v1 import admin_pb2, admin_pb2_grpc
from sidecar.sources.settings import parse_flag_set
from sidecar.store import admin_edits as edits
from sidecar.store.admin import FlagAdmin
from sidecar.store.admin_errors import (
    AdminError,
    AlreadyExistsError,
    FieldProblem,
    InUseError,
    InvalidRequest,
    NotFoundError,
    VersionConflict,
)

from . import admin_convert as convert
from .admin_access import AdminAccess
from .edge import (
    Aborted,
    AlreadyExists,
    CallEdge,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    SidecarError,
    Unavailable,
    guarded,
)
from .metrics import NULL_METRICS, NullMetrics, SidecarMetrics

logger = logging.getLogger(__name__)

SERVICE_NAME: Final[str] = admin_pb2.DESCRIPTOR.services_by_name["FlagAdminService"].full_name
ERROR_DOMAIN: Final = "flagsidecar.v1"
T = TypeVar("T")


def status_of(error: AdminError) -> SidecarError:
    """The status an admin refusal ends the call with (the module docstring)."""
    if isinstance(error, VersionConflict):
        info = error_details_pb2.ErrorInfo(
            reason="VERSION_CONFLICT",
            domain=ERROR_DOMAIN,
            metadata={"current_version": str(error.current), "expected_version": str(error.expected)},
        )
        return Aborted(error.message, details=[info])
    if isinstance(error, InvalidRequest):
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=p.field, description=p.description)
                for p in error.problems
            ]
        )
        return InvalidArgument(error.message, details=[bad])
    if isinstance(error, InUseError):
        failure = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type="SEGMENT_IN_USE",
                    subject=f"{kind}/{key}",
                    description=f"references segment {error.segment!r}",
                )
                for kind, keys in (("flags", error.flags), ("segments", error.segments))
                for key in keys
            ]
        )
        return FailedPrecondition(error.message, details=[failure])
    if isinstance(error, AlreadyExistsError):
        info = error_details_pb2.ErrorInfo(
            reason="ALREADY_EXISTS",
            domain=ERROR_DOMAIN,
            metadata={"current_version": str(error.current_version)},
        )
        return AlreadyExists(error.message, details=[info])
    if isinstance(error, NotFoundError):
        return NotFound(error.message)
    return InvalidArgument(error.message)


def _flag_set(name: str) -> str:
    try:
        return parse_flag_set(name or "default")
    except ValueError as error:
        raise InvalidRequest([FieldProblem("flag_set", str(error))]) from None


class FlagAdminService(admin_pb2_grpc.FlagAdminServiceServicer):
    rpc_prefix = SERVICE_NAME

    def __init__(
        self, admin: FlagAdmin, access: AdminAccess, metrics: SidecarMetrics | NullMetrics = NULL_METRICS
    ) -> None:
        self._admin = admin
        self._access = access
        self.edge = CallEdge(metrics)

    @contextmanager
    def _call(self, context: grpc.ServicerContext) -> Iterator[str]:
        """Authenticate (the identity is yielded) and map the store's refusals to statuses."""
        actor = self._access.identify(context)
        try:
            yield actor
        except AdminError as error:
            raise status_of(error) from None
        except OSError as error:
            logger.warning("admin call failed: the flag database is unavailable: %s", error)
            raise Unavailable(f"the flag database is unavailable: {error}") from None

    def _flag_edit(
        self, context: grpc.ServicerContext, request: Any, key: str, edit: Callable[[], edits.Edit]
    ) -> Any:
        with self._call(context) as actor:
            record = self._admin.edit_flag(
                _flag_set(request.flag_set), key, request.expected_version, edit(), actor
            )
        return convert.stored_flag(record)

    def _segment_edit(
        self, context: grpc.ServicerContext, request: Any, key: str, edit: Callable[[], edits.Edit]
    ) -> Any:
        with self._call(context) as actor:
            record = self._admin.edit_segment(
                _flag_set(request.flag_set), key, request.expected_version, edit(), actor
            )
        return convert.stored_segment(record)

    # ------------------------------------------------------------ flags

    @guarded
    def CreateFlag(
        self, request: admin_pb2.CreateFlagRequest, context: grpc.ServicerContext
    ) -> admin_pb2.CreateFlagResponse:
        with self._call(context) as actor:
            record = self._admin.create_flag(
                _flag_set(request.flag_set), convert.new_flag_document(request.flag), actor
            )
        return admin_pb2.CreateFlagResponse(flag=convert.stored_flag(record))

    @guarded
    def UpdateFlag(
        self, request: admin_pb2.UpdateFlagRequest, context: grpc.ServicerContext
    ) -> admin_pb2.UpdateFlagResponse:
        changes = convert.flag_changes(request.flag)
        flag = self._flag_edit(
            context, request, request.key, lambda: edits.set_fields(changes, edits.FLAG_FIELDS)
        )
        return admin_pb2.UpdateFlagResponse(flag=flag)

    @guarded
    def DeleteFlag(
        self, request: admin_pb2.DeleteFlagRequest, context: grpc.ServicerContext
    ) -> admin_pb2.DeleteFlagResponse:
        with self._call(context) as actor:
            version = self._admin.delete_flag(
                _flag_set(request.flag_set), request.key, request.expected_version, actor
            )
        return admin_pb2.DeleteFlagResponse(version=version)

    @guarded
    def GetFlag(
        self, request: admin_pb2.GetFlagRequest, context: grpc.ServicerContext
    ) -> admin_pb2.GetFlagResponse:
        with self._call(context):
            record = self._admin.get_flag(_flag_set(request.flag_set), request.key)
        return admin_pb2.GetFlagResponse(flag=convert.stored_flag(record))

    @guarded
    def ListFlags(
        self, request: admin_pb2.ListFlagsRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ListFlagsResponse:
        with self._call(context):
            page = self._admin.list_flags(_flag_set(request.flag_set), request.page_size, request.page_token)
        return admin_pb2.ListFlagsResponse(
            flags=[convert.stored_flag(record) for record in page.items], next_page_token=page.next_page_token
        )

    # ------------------------------------------------------------ variants

    @guarded
    def CreateVariant(
        self, request: admin_pb2.CreateVariantRequest, context: grpc.ServicerContext
    ) -> admin_pb2.CreateVariantResponse:
        variant = convert.variant_document(request.variant)
        flag = self._flag_edit(context, request, request.flag_key, lambda: edits.add_variant(variant))
        return admin_pb2.CreateVariantResponse(flag=flag)

    @guarded
    def UpdateVariant(
        self, request: admin_pb2.UpdateVariantRequest, context: grpc.ServicerContext
    ) -> admin_pb2.UpdateVariantResponse:
        changes = convert.variant_changes(request.variant)
        flag = self._flag_edit(
            context, request, request.flag_key, lambda: edits.update_variant(request.variant_key, changes)
        )
        return admin_pb2.UpdateVariantResponse(flag=flag)

    @guarded
    def DeleteVariant(
        self, request: admin_pb2.DeleteVariantRequest, context: grpc.ServicerContext
    ) -> admin_pb2.DeleteVariantResponse:
        flag = self._flag_edit(
            context, request, request.flag_key, lambda: edits.delete_variant(request.variant_key)
        )
        return admin_pb2.DeleteVariantResponse(flag=flag)

    # ------------------------------------------------------------ flag rules

    @guarded
    def CreateFlagRule(
        self, request: admin_pb2.CreateFlagRuleRequest, context: grpc.ServicerContext
    ) -> admin_pb2.CreateFlagRuleResponse:
        rule = convert.flag_rule_document(request.rule)
        index = request.index if request.HasField("index") else None
        flag = self._flag_edit(context, request, request.flag_key, lambda: edits.add_rule(rule, index))
        return admin_pb2.CreateFlagRuleResponse(flag=flag)

    @guarded
    def UpdateFlagRule(
        self, request: admin_pb2.UpdateFlagRuleRequest, context: grpc.ServicerContext
    ) -> admin_pb2.UpdateFlagRuleResponse:
        rule = convert.flag_rule_document(request.rule)
        owner = f"flag {request.flag_key!r}"
        flag = self._flag_edit(
            context, request, request.flag_key, lambda: edits.replace_rule(request.rule_id, rule, owner)
        )
        return admin_pb2.UpdateFlagRuleResponse(flag=flag)

    @guarded
    def DeleteFlagRule(
        self, request: admin_pb2.DeleteFlagRuleRequest, context: grpc.ServicerContext
    ) -> admin_pb2.DeleteFlagRuleResponse:
        owner = f"flag {request.flag_key!r}"
        flag = self._flag_edit(
            context, request, request.flag_key, lambda: edits.delete_rule(request.rule_id, owner)
        )
        return admin_pb2.DeleteFlagRuleResponse(flag=flag)

    # ------------------------------------------------------------ segments

    @guarded
    def CreateSegment(
        self, request: admin_pb2.CreateSegmentRequest, context: grpc.ServicerContext
    ) -> admin_pb2.CreateSegmentResponse:
        with self._call(context) as actor:
            record = self._admin.create_segment(
                _flag_set(request.flag_set), convert.new_segment_document(request.segment), actor
            )
        return admin_pb2.CreateSegmentResponse(segment=convert.stored_segment(record))

    @guarded
    def UpdateSegment(
        self, request: admin_pb2.UpdateSegmentRequest, context: grpc.ServicerContext
    ) -> admin_pb2.UpdateSegmentResponse:
        changes = convert.segment_changes(request.segment)
        segment = self._segment_edit(
            context, request, request.key, lambda: edits.set_fields(changes, edits.SEGMENT_FIELDS)
        )
        return admin_pb2.UpdateSegmentResponse(segment=segment)

    @guarded
    def DeleteSegment(
        self, request: admin_pb2.DeleteSegmentRequest, context: grpc.ServicerContext
    ) -> admin_pb2.DeleteSegmentResponse:
        with self._call(context) as actor:
            version = self._admin.delete_segment(
                _flag_set(request.flag_set), request.key, request.expected_version, actor
            )
        return admin_pb2.DeleteSegmentResponse(version=version)

    @guarded
    def GetSegment(
        self, request: admin_pb2.GetSegmentRequest, context: grpc.ServicerContext
    ) -> admin_pb2.GetSegmentResponse:
        with self._call(context):
            record = self._admin.get_segment(_flag_set(request.flag_set), request.key)
        return admin_pb2.GetSegmentResponse(segment=convert.stored_segment(record))

    @guarded
    def ListSegments(
        self, request: admin_pb2.ListSegmentsRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ListSegmentsResponse:
        with self._call(context):
            page = self._admin.list_segments(
                _flag_set(request.flag_set), request.page_size, request.page_token
            )
        return admin_pb2.ListSegmentsResponse(
            segments=[convert.stored_segment(record) for record in page.items],
            next_page_token=page.next_page_token,
        )

    # ------------------------------------------------------------ segment rules

    @guarded
    def CreateSegmentRule(
        self, request: admin_pb2.CreateSegmentRuleRequest, context: grpc.ServicerContext
    ) -> admin_pb2.CreateSegmentRuleResponse:
        rule = convert.segment_rule_document(request.rule)
        segment = self._segment_edit(context, request, request.segment_key, lambda: edits.add_rule(rule))
        return admin_pb2.CreateSegmentRuleResponse(segment=segment)

    @guarded
    def UpdateSegmentRule(
        self, request: admin_pb2.UpdateSegmentRuleRequest, context: grpc.ServicerContext
    ) -> admin_pb2.UpdateSegmentRuleResponse:
        rule = convert.segment_rule_document(request.rule)
        owner = f"segment {request.segment_key!r}"
        segment = self._segment_edit(
            context, request, request.segment_key, lambda: edits.replace_rule(request.rule_id, rule, owner)
        )
        return admin_pb2.UpdateSegmentRuleResponse(segment=segment)

    @guarded
    def DeleteSegmentRule(
        self, request: admin_pb2.DeleteSegmentRuleRequest, context: grpc.ServicerContext
    ) -> admin_pb2.DeleteSegmentRuleResponse:
        owner = f"segment {request.segment_key!r}"
        segment = self._segment_edit(
            context, request, request.segment_key, lambda: edits.delete_rule(request.rule_id, owner)
        )
        return admin_pb2.DeleteSegmentRuleResponse(segment=segment)

    # ------------------------------------------------------------ history

    @guarded
    def ListFlagHistory(
        self, request: admin_pb2.ListFlagHistoryRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ListFlagHistoryResponse:
        with self._call(context):
            page = self._admin.flag_history(
                _flag_set(request.flag_set), request.key, request.page_size, request.page_token
            )
        return admin_pb2.ListFlagHistoryResponse(
            entries=[convert.history_entry(record) for record in page.items],
            next_page_token=page.next_page_token,
        )

    @guarded
    def RollbackFlag(
        self, request: admin_pb2.RollbackFlagRequest, context: grpc.ServicerContext
    ) -> admin_pb2.RollbackFlagResponse:
        with self._call(context) as actor:
            record = self._admin.rollback_flag(
                _flag_set(request.flag_set), request.key, request.expected_version, request.to_version, actor
            )
        return admin_pb2.RollbackFlagResponse(flag=convert.stored_flag(record))

    # ------------------------------------------------------------ users

    @guarded
    def ListUsers(
        self, request: admin_pb2.ListUsersRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ListUsersResponse:
        with self._call(context):
            page = self._admin.list_users(_flag_set(request.flag_set), request.page_size, request.page_token)
        return admin_pb2.ListUsersResponse(
            users=[convert.stored_user(user) for user in page.items], next_page_token=page.next_page_token
        )

    @guarded
    def GetUser(
        self, request: admin_pb2.GetUserRequest, context: grpc.ServicerContext
    ) -> admin_pb2.GetUserResponse:
        with self._call(context):
            user, evaluations = self._admin.get_user(_flag_set(request.flag_set), request.id)
        return admin_pb2.GetUserResponse(
            user=convert.stored_user(user), evaluations=[convert.user_evaluation(e) for e in evaluations]
        )

    @guarded
    def DeleteUser(
        self, request: admin_pb2.DeleteUserRequest, context: grpc.ServicerContext
    ) -> admin_pb2.DeleteUserResponse:
        with self._call(context):
            self._admin.delete_user(_flag_set(request.flag_set), request.id)
        return admin_pb2.DeleteUserResponse()

    @guarded
    def DeleteEvaluation(
        self, request: admin_pb2.DeleteEvaluationRequest, context: grpc.ServicerContext
    ) -> admin_pb2.DeleteEvaluationResponse:
        with self._call(context):
            self._admin.delete_evaluation(_flag_set(request.flag_set), request.user_id, request.flag_key)
        return admin_pb2.DeleteEvaluationResponse()

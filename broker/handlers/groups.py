"""Classic consumer groups: FindCoordinator 0-6, JoinGroup 0-9, SyncGroup 0-5, Heartbeat 0-4,
LeaveGroup 0-5, ListGroups 0-5, DescribeGroups 0-6, DeleteGroups 0-2.

The state machine is `broker.groups.coordinator`; these handlers translate requests and
responses per version, as Kafka 4.x's `KafkaApis` does:
- FindCoordinator: one broker coordinates every group (creating `__consumer_offsets` on first
  need). v4+ batches keys. Transaction keys (key type 1) name this broker too, creating
  `__transaction_state` on first need (`broker.transactions`). Any other key type is
  INVALID_REQUEST.
- JoinGroup: v0 has no rebalance timeout (the session timeout stands in); v4+ requires a
  known member id (KIP-394: MEMBER_ID_REQUIRED hands one out); v5+ static membership;
  v9 lets a rejoining static leader skip the assignment (KIP-814).
- SyncGroup v5+ must carry the protocol type and name (INCONSISTENT_GROUP_PROTOCOL otherwise).
- LeaveGroup v0-2 leave one member (its error is the top-level error); v3+ a batch.
- DescribeGroups answers Dead for unknown groups; v6 with GROUP_ID_NOT_FOUND (KIP-1043); the
  same for a KIP-848 consumer group ("Group X is not a classic group.").
- ListGroups v4+ filters by state, v5+ by type (case-insensitive): classic groups and the
  KIP-848 consumer groups of `broker.groups.consumer` (type "consumer", protocol "consumer").
A JoinGroup or SyncGroup that must wait parks its connection until the rebalance moves on,
as Kafka's purgatory does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from broker.context import RequestContext
from broker.handlers import handles
from broker.handlers.topics import broker_endpoint
from protocol.errors import ErrorCode
from protocol.messages.delete_groups_request import DeleteGroupsRequest
from protocol.messages.delete_groups_response import DeletableGroupResult, DeleteGroupsResponse
from protocol.messages.describe_groups_request import DescribeGroupsRequest
from protocol.messages.describe_groups_response import (
    DescribedGroup,
    DescribedGroupMember,
    DescribeGroupsResponse,
)
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.find_coordinator_response import Coordinator, FindCoordinatorResponse
from protocol.messages.heartbeat_request import HeartbeatRequest
from protocol.messages.heartbeat_response import HeartbeatResponse
from protocol.messages.join_group_request import JoinGroupRequest
from protocol.messages.join_group_response import JoinGroupResponse, JoinGroupResponseMember
from protocol.messages.leave_group_request import LeaveGroupRequest
from protocol.messages.leave_group_response import LeaveGroupResponse, MemberResponse
from protocol.messages.list_groups_request import ListGroupsRequest
from protocol.messages.list_groups_response import ListedGroup, ListGroupsResponse
from protocol.messages.sync_group_request import SyncGroupRequest
from protocol.messages.sync_group_response import SyncGroupResponse

if TYPE_CHECKING:
    from broker.groups.service import GroupService

FIND_COORDINATOR, JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 10, 11, 12, 13, 14
DESCRIBE_GROUPS, LIST_GROUPS, DELETE_GROUPS = 15, 16, 42
KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION = 0, 1

COORDINATOR_NOT_AVAILABLE_MESSAGE = "The coordinator is not available."
INVALID_REQUEST_MESSAGE = (
    "This most likely occurs because of a request being malformed by the client library or "
    "the message was sent to an incompatible broker. See the broker logs for more details.")


def service(ctx: RequestContext) -> GroupService:
    return ctx.broker.groups


def client_host(ctx: RequestContext) -> str:
    """Kafka's `InetAddress.toString()` of the client: "/127.0.0.1"."""
    host = ctx.peer.rsplit(":", 1)[0] if ":" in ctx.peer else ctx.peer
    return "/" + host.strip("[]")


# -- FindCoordinator -----------------------------------------------------------------------------


def _find(ctx: RequestContext, key_type: int) -> tuple[ErrorCode, str, int, int]:
    """(error, host, port, node id) for one key."""
    if key_type == KEY_TYPE_GROUP:
        service(ctx).ensure_offsets_topic()
        host, port = broker_endpoint(ctx)
        return ErrorCode.NONE, host, port, ctx.broker.node_id
    if key_type == KEY_TYPE_TRANSACTION:
        ctx.broker.transactions.ensure_state_topic()
        host, port = broker_endpoint(ctx)
        return ErrorCode.NONE, host, port, ctx.broker.node_id
    return ErrorCode.INVALID_REQUEST, "", -1, -1


@handles(FIND_COORDINATOR, 0, 6)
def handle_find_coordinator(ctx: RequestContext, request: FindCoordinatorRequest
                            ) -> FindCoordinatorResponse:
    key_type = request.key_type if ctx.api_version >= 1 else KEY_TYPE_GROUP
    if ctx.api_version >= 4:
        coordinators = []
        for key in request.coordinator_keys:
            error, host, port, node = _find(ctx, key_type)
            message = INVALID_REQUEST_MESSAGE if error is ErrorCode.INVALID_REQUEST else ""
            coordinators.append(Coordinator(key=key, node_id=node, host=host, port=port,
                                            error_code=error, error_message=message))
        return FindCoordinatorResponse(coordinators=coordinators)
    error, host, port, node = _find(ctx, key_type)
    if error is ErrorCode.NONE:
        message = "NONE"
    elif error is ErrorCode.INVALID_REQUEST:
        message = INVALID_REQUEST_MESSAGE
    else:
        message = COORDINATOR_NOT_AVAILABLE_MESSAGE
    return FindCoordinatorResponse(error_code=error, error_message=message, node_id=node,
                                   host=host, port=port)


# -- JoinGroup / SyncGroup / Heartbeat / LeaveGroup ----------------------------------------------


@handles(JOIN_GROUP, 0, 9)
async def handle_join_group(ctx: RequestContext, request: JoinGroupRequest) -> JoinGroupResponse:
    version = ctx.api_version
    rebalance_timeout = request.session_timeout_ms if version == 0 \
        else request.rebalance_timeout_ms
    result = await service(ctx).join(
        group_id=request.group_id, member_id=request.member_id,
        group_instance_id=request.group_instance_id if version >= 5 else None,
        client_id=ctx.client_id or "", client_host=client_host(ctx),
        session_timeout_ms=request.session_timeout_ms, rebalance_timeout_ms=rebalance_timeout,
        protocol_type=request.protocol_type,
        protocols=[(p.name, bytes(p.metadata)) for p in request.protocols],
        require_known_member_id=version >= 4 and request.group_instance_id is None,
        supports_skip_assignment=version >= 9)
    protocol_name = result.protocol_name
    if protocol_name is None and version < 7:
        protocol_name = ""
    return JoinGroupResponse(
        error_code=result.error, generation_id=result.generation_id,
        protocol_type=result.protocol_type if version >= 7 else None,
        protocol_name=protocol_name, leader=result.leader,
        skip_assignment=result.skip_assignment if version >= 9 else False,
        member_id=result.member_id,
        members=[JoinGroupResponseMember(member_id=mid,
                                         group_instance_id=iid if version >= 5 else None,
                                         metadata=metadata)
                 for mid, iid, metadata in result.members])


@handles(SYNC_GROUP, 0, 5)
async def handle_sync_group(ctx: RequestContext, request: SyncGroupRequest) -> SyncGroupResponse:
    version = ctx.api_version
    if version >= 5 and (request.protocol_type is None or request.protocol_name is None):
        return SyncGroupResponse(error_code=ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
    result = await service(ctx).sync(
        group_id=request.group_id, generation_id=request.generation_id,
        member_id=request.member_id,
        group_instance_id=request.group_instance_id if version >= 3 else None,
        protocol_type=request.protocol_type if version >= 5 else None,
        protocol_name=request.protocol_name if version >= 5 else None,
        assignments={a.member_id: bytes(a.assignment) for a in request.assignments})
    ok = result.error is ErrorCode.NONE and version >= 5
    return SyncGroupResponse(error_code=result.error,
                             protocol_type=result.protocol_type if ok else None,
                             protocol_name=result.protocol_name if ok else None,
                             assignment=result.assignment)


@handles(HEARTBEAT, 0, 4)
def handle_heartbeat(ctx: RequestContext, request: HeartbeatRequest) -> HeartbeatResponse:
    error = service(ctx).coordinator.heartbeat(
        group_id=request.group_id, generation_id=request.generation_id,
        member_id=request.member_id,
        group_instance_id=request.group_instance_id if ctx.api_version >= 3 else None)
    return HeartbeatResponse(error_code=error)


@handles(LEAVE_GROUP, 0, 5)
def handle_leave_group(ctx: RequestContext, request: LeaveGroupRequest) -> LeaveGroupResponse:
    if ctx.api_version < 3:
        leaving: list[tuple[str, str | None]] = [(request.member_id, None)]
    else:
        leaving = [(m.member_id, m.group_instance_id) for m in request.members]
    error, errors = service(ctx).coordinator.leave_group(request.group_id, leaving)
    if ctx.api_version < 3:
        if error is ErrorCode.NONE and errors:
            error = errors[0]
        return LeaveGroupResponse(error_code=error)
    return LeaveGroupResponse(
        error_code=error,
        members=[MemberResponse(member_id=mid, group_instance_id=iid, error_code=e)
                 for (mid, iid), e in zip(leaving, errors, strict=False)])


# -- ListGroups / DescribeGroups / DeleteGroups ----------------------------------------------


@handles(LIST_GROUPS, 0, 5)
def handle_list_groups(ctx: RequestContext, request: ListGroupsRequest) -> ListGroupsResponse:
    version = ctx.api_version
    states = request.states_filter if version >= 4 else ()
    types = request.types_filter if version >= 5 else ()
    groups = [(gid, ptype, state, "classic")
              for gid, ptype, state in service(ctx).coordinator.list_groups(states, types)]
    groups += service(ctx).consumer.list_groups(states, types)
    return ListGroupsResponse(groups=[
        ListedGroup(group_id=gid, protocol_type=ptype,
                    group_state=state if version >= 4 else "",
                    group_type=gtype if version >= 5 else "")
        for gid, ptype, state, gtype in groups])


@handles(DESCRIBE_GROUPS, 0, 6)
def handle_describe_groups(ctx: RequestContext, request: DescribeGroupsRequest
                           ) -> DescribeGroupsResponse:
    version = ctx.api_version
    coordinator = service(ctx).coordinator
    described = []
    for group_id in request.groups:
        summary = coordinator.describe_group(group_id)
        if summary is None:
            if version >= 6:
                kind = "is not a classic group" \
                    if service(ctx).consumer.is_consumer_group(group_id) else "not found"
                described.append(DescribedGroup(
                    error_code=ErrorCode.GROUP_ID_NOT_FOUND,
                    error_message=f"Group {group_id} {kind}.", group_id=group_id,
                    group_state="Dead"))
            else:
                described.append(DescribedGroup(group_id=group_id, group_state="Dead"))
            continue
        described.append(DescribedGroup(
            group_id=summary.group_id, group_state=summary.state,
            protocol_type=summary.protocol_type, protocol_data=summary.protocol_data,
            members=[DescribedGroupMember(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id if version >= 4 else None,
                client_id=m.client_id, client_host=m.client_host,
                member_metadata=m.metadata, member_assignment=m.assignment)
                for m in summary.members]))
    return DescribeGroupsResponse(groups=described)


@handles(DELETE_GROUPS, 0, 2)
def handle_delete_groups(ctx: RequestContext, request: DeleteGroupsRequest
                         ) -> DeleteGroupsResponse:
    results = service(ctx).coordinator.delete_groups(dict.fromkeys(request.groups_names))
    return DeleteGroupsResponse(results=[
        DeletableGroupResult(group_id=gid, error_code=code) for gid, code in results.items()])

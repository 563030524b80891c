"""ElectLeaders (43) v0-2, AlterPartitionReassignments (45) v0-1,
ListPartitionReassignments (46) v0: leaders and replica placement on one node.

Every partition has one replica, this broker, which is its leader and preferred replica,
so there is never an election to hold nor a reassignment to run. The answers are those of
Kafka 4.4's controller (`ReplicationControlManager`) for a single-node cluster:

* ElectLeaders (`electLeaders`): PREFERRED (0) and UNCLEAN (1) elections answer each
  partition ELECTION_NOT_NEEDED, "Leader election not needed for topic partition.";
  an unknown topic (or an invalid name) UNKNOWN_TOPIC_OR_PARTITION "No such topic as
  <topic>", an unknown partition "No such partition as <topic>-<partition>". Results
  follow the request, duplicates included. A null list means every partition of every
  topic (internal ones too), where partitions that need no election are left out: each
  topic answers with an empty list. An empty list answers nothing, whatever the type.
  Any other election type fails the request (v1+) with INVALID_REQUEST, "Unknown election
  type N", repeated on each requested partition.
* AlterPartitionReassignments (`alterPartitionReassignments`): a target of exactly
  `[node.id]` is the current assignment, so it completes at once (NONE); any other list
  is INVALID_REPLICA_ASSIGNMENT with Kafka's `validateManualPartitionAssignment` message
  (empty list; a broker id that is not registered, the lowest first; a duplicate). A null
  list (cancel) is NO_REASSIGNMENT_IN_PROGRESS. An unknown topic is
  UNKNOWN_TOPIC_OR_PARTITION "Unable to find a topic named <topic>.", an unknown
  partition "Unable to find partition <topic>:<partition>.". v1's
  `allow_replication_factor_change` is echoed; false changes nothing here, as the only
  valid target keeps the replication factor at 1. An empty request answers with an empty
  (not null) error message, as Kafka's controller short-circuits it.
* ListPartitionReassignments: nothing is ever in progress: an empty list, for all
  partitions (null) and for any given ones, known or not.
"""

from __future__ import annotations

from broker.context import RequestContext
from broker.handlers import handles
from protocol.errors import ErrorCode
from protocol.messages.alter_partition_reassignments_request import (
    AlterPartitionReassignmentsRequest,
)
from protocol.messages.alter_partition_reassignments_response import (
    AlterPartitionReassignmentsResponse,
    ReassignablePartitionResponse,
    ReassignableTopicResponse,
)
from protocol.messages.elect_leaders_request import ElectLeadersRequest
from protocol.messages.elect_leaders_response import (
    ElectLeadersResponse,
    PartitionResult,
    ReplicaElectionResult,
)
from protocol.messages.list_partition_reassignments_request import (
    ListPartitionReassignmentsRequest,
)
from protocol.messages.list_partition_reassignments_response import (
    ListPartitionReassignmentsResponse,
)

PREFERRED, UNCLEAN = 0, 1
#: `Errors.ELECTION_NOT_NEEDED.message()`.
ELECTION_NOT_NEEDED_MESSAGE = "Leader election not needed for topic partition."


# -- ElectLeaders ---------------------------------------------------------------------------


def _election_error(ctx: RequestContext, topic: str, partition: int
                    ) -> tuple[ErrorCode, str]:
    """Kafka's `electLeader` for one partition of a single-node cluster."""
    found = ctx.broker.topics.get(topic)
    if found is None:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such topic as {topic}"
    if not 0 <= partition < found.partitions:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such partition as {topic}-{partition}"
    return ErrorCode.ELECTION_NOT_NEEDED, ELECTION_NOT_NEEDED_MESSAGE


@handles(43, 0, 2)
def handle_elect_leaders(ctx: RequestContext, request: ElectLeadersRequest
                         ) -> ElectLeadersResponse:
    requested = request.topic_partitions
    if requested is not None and not requested:
        return ElectLeadersResponse(error_code=ErrorCode.NONE)
    if request.election_type not in (PREFERRED, UNCLEAN):
        message = f"Unknown election type {request.election_type}"
        return ElectLeadersResponse(
            error_code=ErrorCode.INVALID_REQUEST,
            replica_election_results=[
                ReplicaElectionResult(topic=t.topic, partition_result=[
                    PartitionResult(partition_id=p, error_code=ErrorCode.INVALID_REQUEST,
                                    error_message=message)
                    for p in t.partitions])
                for t in requested or []])
    if requested is None:
        # Every partition has its preferred leader: each topic answers an empty list.
        return ElectLeadersResponse(error_code=ErrorCode.NONE, replica_election_results=[
            ReplicaElectionResult(topic=topic.name, partition_result=[])
            for topic in sorted(ctx.broker.topics, key=lambda t: t.name)])
    results = []
    for t in requested:
        partitions = []
        for p in t.partitions:
            code, message = _election_error(ctx, t.topic, p)
            partitions.append(PartitionResult(partition_id=p, error_code=code,
                                              error_message=message))
        results.append(ReplicaElectionResult(topic=t.topic, partition_result=partitions))
    return ElectLeadersResponse(error_code=ErrorCode.NONE, replica_election_results=results)


# -- AlterPartitionReassignments / ListPartitionReassignments ------------------------------


def _check_assignment(node_id: int, replicas: list[int]) -> str | None:
    """Kafka's `validateManualPartitionAssignment` with this broker as the only one
    registered: the message of INVALID_REPLICA_ASSIGNMENT, or None if valid."""
    if not replicas:
        return "The manual partition assignment includes an empty replica list."
    previous: int | None = None
    for broker_id in sorted(replicas):
        if broker_id != node_id:
            return (f"The manual partition assignment includes broker {broker_id}, but no "
                    "such broker is registered.")
        if broker_id == previous:
            return (f"The manual partition assignment includes the broker {previous} more "
                    "than once.")
        previous = broker_id
    return None


def _reassign(ctx: RequestContext, topic: str, partition: int, replicas: list[int] | None
              ) -> tuple[ErrorCode, str | None]:
    found = ctx.broker.topics.get(topic)
    if found is None:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find a topic named {topic}."
    if not 0 <= partition < found.partitions:
        return (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                f"Unable to find partition {topic}:{partition}.")
    if replicas is None:
        return ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, None
    invalid = _check_assignment(ctx.broker.node_id, replicas)
    if invalid is not None:
        return ErrorCode.INVALID_REPLICA_ASSIGNMENT, invalid
    return ErrorCode.NONE, None


@handles(45, 0, 1)
def handle_alter_partition_reassignments(ctx: RequestContext,
                                         request: AlterPartitionReassignmentsRequest
                                         ) -> AlterPartitionReassignmentsResponse:
    response = AlterPartitionReassignmentsResponse(error_code=ErrorCode.NONE)
    if ctx.api_version >= 1:
        response.allow_replication_factor_change = request.allow_replication_factor_change
    if not request.topics:
        return response
    response.error_message = None
    for t in request.topics:
        partitions = []
        for p in t.partitions:
            code, message = _reassign(ctx, t.name, p.partition_index, p.replicas)
            partitions.append(ReassignablePartitionResponse(
                partition_index=p.partition_index, error_code=code, error_message=message))
        response.responses.append(ReassignableTopicResponse(name=t.name, partitions=partitions))
    return response


@handles(46, 0, 0)
def handle_list_partition_reassignments(ctx: RequestContext,
                                        request: ListPartitionReassignmentsRequest
                                        ) -> ListPartitionReassignmentsResponse:
    return ListPartitionReassignmentsResponse(error_code=ErrorCode.NONE, error_message=None,
                                              topics=[])

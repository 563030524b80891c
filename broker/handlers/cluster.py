"""DescribeCluster (60) v0-2 and DescribeTopicPartitions (75) v0.

DescribeCluster (KIP-700; `KafkaApis.handleDescribeCluster`): this broker, as the only
broker and the controller id. Brokers answer `endpoint_type` 1 (brokers, v1+); asking a
broker for controllers (2) is MISMATCHED_ENDPOINT_TYPE and any other type
UNSUPPORTED_ENDPOINT_TYPE, with Kafka's messages. No broker is ever fenced, so
`include_fenced_brokers` (v2) changes nothing.

DescribeTopicPartitions (KIP-966; `DescribeTopicPartitionsRequestHandler`, used by the Java
admin client's describeTopics since 3.8): topics sorted by name, all topics for an empty
list, at most `response_partition_limit` partitions per response (clamped to 1..2000, the
broker's `max.request.partition.size.limit`) with a `next_cursor` to resume from. A cursor
must name one of the requested topics and a partition >= 0, else every requested topic
answers INVALID_REQUEST. Unknown topics answer UNKNOWN_TOPIC_OR_PARTITION, invalid names
INVALID_TOPIC_EXCEPTION; authorized operations are always filled in (no authorizer).
"""

from __future__ import annotations

from broker.context import RequestContext
from broker.handlers import handles
from broker.handlers.topics import (
    AUTHORIZED_OPERATIONS_OMITTED,
    CLUSTER_AUTHORIZED_OPERATIONS,
    TOPIC_AUTHORIZED_OPERATIONS,
    ZERO_UUID,
    broker_endpoint,
)
from broker.metadata import is_valid_topic_name
from protocol.errors import ErrorCode
from protocol.messages.describe_cluster_request import DescribeClusterRequest
from protocol.messages.describe_cluster_response import (
    DescribeClusterBroker,
    DescribeClusterResponse,
)
from protocol.messages.describe_topic_partitions_request import DescribeTopicPartitionsRequest
from protocol.messages.describe_topic_partitions_response import (
    Cursor,
    DescribeTopicPartitionsResponse,
    DescribeTopicPartitionsResponsePartition,
    DescribeTopicPartitionsResponseTopic,
)

ENDPOINT_TYPE_BROKER = 1
ENDPOINT_TYPE_CONTROLLER = 2
#: Kafka's `max.request.partition.size.limit` default.
MAX_REQUEST_PARTITION_SIZE_LIMIT = 2000


@handles(60, 0, 2)
def handle_describe_cluster(ctx: RequestContext, request: DescribeClusterRequest
                            ) -> DescribeClusterResponse:
    if ctx.api_version >= 1 and request.endpoint_type != ENDPOINT_TYPE_BROKER:
        if request.endpoint_type == ENDPOINT_TYPE_CONTROLLER:
            return DescribeClusterResponse(
                error_code=ErrorCode.MISMATCHED_ENDPOINT_TYPE,
                error_message="The request was sent to an endpoint of type BROKER, but we "
                              "wanted an endpoint of type CONTROLLER")
        return DescribeClusterResponse(
            error_code=ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
            error_message=f"Unsupported endpoint type {request.endpoint_type}")
    host, port = broker_endpoint(ctx)
    return DescribeClusterResponse(
        error_code=ErrorCode.NONE,
        error_message=None,
        endpoint_type=ENDPOINT_TYPE_BROKER,
        cluster_id=ctx.broker.cluster_id,
        controller_id=ctx.broker.node_id,
        brokers=[DescribeClusterBroker(broker_id=ctx.broker.node_id, host=host, port=port,
                                       rack=None, is_fenced=False)],
        cluster_authorized_operations=(CLUSTER_AUTHORIZED_OPERATIONS
                                       if request.include_cluster_authorized_operations
                                       else AUTHORIZED_OPERATIONS_OMITTED),
    )


@handles(75, 0, 0)
def handle_describe_topic_partitions(ctx: RequestContext,
                                     request: DescribeTopicPartitionsRequest
                                     ) -> DescribeTopicPartitionsResponse:
    registry = ctx.broker.topics
    cursor = request.cursor
    requested = sorted({t.name for t in request.topics})
    if cursor is not None and (cursor.partition_index < 0
                               or (requested and cursor.topic_name not in requested)):
        return DescribeTopicPartitionsResponse(topics=[
            DescribeTopicPartitionsResponseTopic(error_code=ErrorCode.INVALID_REQUEST,
                                                 name=t.name, topic_id=ZERO_UUID)
            for t in request.topics])
    names = requested if request.topics else [t.name for t in registry]
    start_name = cursor.topic_name if cursor is not None else ""
    remaining = max(1, min(request.response_partition_limit, MAX_REQUEST_PARTITION_SIZE_LIMIT))
    node = ctx.broker.node_id
    response = DescribeTopicPartitionsResponse(next_cursor=None)
    for name in names:
        if name < start_name:
            continue
        if remaining == 0:
            response.next_cursor = Cursor(topic_name=name, partition_index=0)
            break
        topic = registry.get(name)
        if topic is None:
            code = (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if is_valid_topic_name(name)
                    else ErrorCode.INVALID_TOPIC_EXCEPTION)
            response.topics.append(DescribeTopicPartitionsResponseTopic(
                error_code=code, name=name, topic_id=ZERO_UUID, is_internal=False,
                topic_authorized_operations=TOPIC_AUTHORIZED_OPERATIONS))
            continue
        first = cursor.partition_index if cursor is not None and name == start_name else 0
        end = min(topic.partitions, first + remaining)
        partitions = [
            DescribeTopicPartitionsResponsePartition(
                error_code=ErrorCode.NONE, partition_index=p, leader_id=node, leader_epoch=0,
                replica_nodes=[node], isr_nodes=[node], eligible_leader_replicas=[],
                last_known_elr=[], offline_replicas=[])
            for p in range(first, end)
        ]
        remaining -= len(partitions)
        response.topics.append(DescribeTopicPartitionsResponseTopic(
            error_code=ErrorCode.NONE, name=name, topic_id=topic.topic_id,
            is_internal=topic.internal, partitions=partitions,
            topic_authorized_operations=TOPIC_AUTHORIZED_OPERATIONS))
        if end < topic.partitions:
            response.next_cursor = Cursor(topic_name=name, partition_index=end)
            break
    return response

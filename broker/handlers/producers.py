"""DescribeProducers (key 61), version 0 (all there is; Kafka 4.4 serves 0 too).

The active producers of each requested partition, from its producer state
(`storage/producer_state.py`), as Kafka's `KafkaApis.handleDescribeProducersRequest` and
`UnifiedLog.activeProducers` give them: per producer id its epoch, last sequence (-1
when no batch of it is retained, e.g. only a marker), the timestamp of its last batch or
marker, the epoch of the coordinator that wrote its last marker (-1: none) and the first
offset of its open transaction in the partition (-1: none). Producers are listed by id.

Errors, per topic then per partition, in Kafka's order: an invalid topic name ->
INVALID_TOPIC_EXCEPTION with `Topic.validate`'s message; an unknown topic, or a partition
the topic does not have -> UNKNOWN_TOPIC_OR_PARTITION (no message). Every partition of
the request is answered, in the request's order, duplicates included.
"""

from __future__ import annotations

from broker.context import RequestContext
from broker.handlers import handles
from broker.metadata import TopicError, validate_topic_name
from protocol.errors import ErrorCode
from protocol.messages.describe_producers_request import DescribeProducersRequest
from protocol.messages.describe_producers_response import (
    DescribeProducersResponse,
    PartitionResponse,
    ProducerState,
    TopicResponse,
)

API_KEY = 61


@handles(API_KEY, 0, 0)
def handle_describe_producers(ctx: RequestContext, request: DescribeProducersRequest
                              ) -> DescribeProducersResponse:
    topics = ctx.broker.topics
    out: list[TopicResponse] = []
    for topic in request.topics:
        error, message = ErrorCode.NONE, None
        try:
            validate_topic_name(topic.name)
        except TopicError as exc:
            error, message = exc.code, exc.message
        if error == ErrorCode.NONE and topics.get(topic.name) is None:
            error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        partitions = []
        for index in topic.partition_indexes:
            if error != ErrorCode.NONE:
                partitions.append(PartitionResponse(
                    partition_index=index, error_code=error, error_message=message))
                continue
            plog = topics.log(topic.name, index)
            if plog is None:
                partitions.append(PartitionResponse(
                    partition_index=index, error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
                continue
            with plog.lock:
                producers = sorted(plog.producer_state.producers.items())
                states = [
                    ProducerState(
                        producer_id=pid, producer_epoch=entry.producer_epoch,
                        last_sequence=entry.last_seq, last_timestamp=entry.last_timestamp,
                        coordinator_epoch=entry.coordinator_epoch,
                        current_txn_start_offset=(
                            -1 if entry.current_txn_first_offset is None
                            else entry.current_txn_first_offset))
                    for pid, entry in producers]
            partitions.append(PartitionResponse(partition_index=index, active_producers=states))
        out.append(TopicResponse(name=topic.name, partitions=partitions))
    return DescribeProducersResponse(topics=out)

"""DescribeQuorum (55) v0-2: the KRaft quorum of a single-node cluster.

Kafka 4.x brokers answer DescribeQuorum (the admin client's `describeMetadataQuorum`,
`kafka-metadata-quorum`) from the `__cluster_metadata` partition 0 that the controllers
replicate. Odradek has no controllers and no metadata log (its metadata is the topic
registry of `broker.metadata`, kept in `odradek-metadata.json`), but it stands for a
combined broker and controller that is its quorum's only voter, as a single-node KRaft
Kafka is. What we model:

* the leader is this node (`node.id`), at leader epoch 1 (the epoch in which a lone voter
  elects itself at its first start, as Kafka 4.4 answers after formatting);
* the metadata log holds the records of a metadata snapshot of the current state: one
  `FeatureLevelRecord` (metadata.version), one `RegisterBrokerRecord`, and per topic one
  `TopicRecord`, one `PartitionRecord` per partition and one `ConfigRecord` per config
  override. Its high watermark and the voter's log end offset are that count, so they
  move when metadata changes (and may go down when a topic is deleted, unlike Kafka's,
  whose log only grows);
* the one voter is always caught up: its last fetch and caught-up timestamps (v1+) are
  the current time, as Kafka reports its leader; its directory id (v2) is the zero UUID,
  as Kafka answers for a static quorum (`controller.quorum.voters`); no observers;
* `nodes` (v2) lists this node with its advertised listeners (Kafka lists the voters'
  controller listeners; our listeners serve both roles).

A request must name exactly one topic, `__cluster_metadata`, with exactly partition 0,
else (Kafka's `KafkaRaftClient.handleDescribeQuorumRequest`) every requested partition
answers UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition."
(the message from v2), and the top-level error is NONE. An empty topic list answers an
empty list.
"""

from __future__ import annotations

from broker.context import RequestContext
from broker.handlers import handles
from protocol.errors import ErrorCode
from protocol.messages.describe_quorum_request import DescribeQuorumRequest
from protocol.messages.describe_quorum_response import (
    DescribeQuorumResponse,
    Listener,
    Node,
    PartitionData,
    ReplicaState,
    TopicData,
)

METADATA_TOPIC = "__cluster_metadata"
METADATA_PARTITION = 0
LEADER_EPOCH = 1
#: `Errors.UNKNOWN_TOPIC_OR_PARTITION.message()`.
NOT_HOSTED_MESSAGE = "This server does not host this topic-partition."


def metadata_log_end_offset(ctx: RequestContext) -> int:
    """The number of records of a metadata snapshot of the current state (see above)."""
    records = 2  # FeatureLevelRecord, RegisterBrokerRecord
    for topic in ctx.broker.topics:
        records += 1 + topic.partitions + len(topic.configs)
    return records


def _is_metadata_partition(request: DescribeQuorumRequest) -> bool:
    if len(request.topics) != 1:
        return False
    topic = request.topics[0]
    return (topic.topic_name == METADATA_TOPIC and len(topic.partitions) == 1
            and topic.partitions[0].partition_index == METADATA_PARTITION)


@handles(55, 0, 2)
def handle_describe_quorum(ctx: RequestContext, request: DescribeQuorumRequest
                           ) -> DescribeQuorumResponse:
    version = ctx.api_version
    if not _is_metadata_partition(request):
        topics = []
        for t in request.topics:
            partitions = []
            for p in t.partitions:
                failed = PartitionData(partition_index=p.partition_index,
                                       error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
                if version >= 2:
                    failed.error_message = NOT_HOSTED_MESSAGE
                partitions.append(failed)
            topics.append(TopicData(topic_name=t.topic_name, partitions=partitions))
        return DescribeQuorumResponse(error_code=ErrorCode.NONE, topics=topics)
    node = ctx.broker.node_id
    end = metadata_log_end_offset(ctx)
    voter = ReplicaState(replica_id=node, log_end_offset=end)
    if version >= 1:
        now = ctx.broker.clock()
        voter.last_fetch_timestamp = voter.last_caught_up_timestamp = now
    partition = PartitionData(partition_index=METADATA_PARTITION, error_code=ErrorCode.NONE,
                              leader_id=node, leader_epoch=LEADER_EPOCH, high_watermark=end,
                              current_voters=[voter], observers=[])
    response = DescribeQuorumResponse(
        error_code=ErrorCode.NONE,
        topics=[TopicData(topic_name=METADATA_TOPIC, partitions=[partition])])
    if version >= 2:
        response.nodes = [Node(node_id=node, listeners=[
            Listener(name=name, host=host, port=port)
            for name, host, port in ctx.broker.advertised()])]
    return response

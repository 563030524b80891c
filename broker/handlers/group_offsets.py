"""Committed offsets: OffsetCommit 2-10, OffsetFetch 1-10, OffsetDelete 0.

Per Kafka 4.x (`KafkaApis` and `OffsetMetadataManager`):
- OffsetCommit: unknown topics or partitions get UNKNOWN_TOPIC_OR_PARTITION (v10 names topics
  by id: unknown ids get UNKNOWN_TOPIC_ID); metadata longer than `offset.metadata.max.bytes`
  gets OFFSET_METADATA_TOO_LARGE, the other partitions are still committed. A commit with a
  generation for a group that does not exist is ILLEGAL_GENERATION before v9 and
  GROUP_ID_NOT_FOUND from v9; generation -1 on an empty or missing group stores offsets for
  a "simple" group. v2-4's `retention_time_ms` (when not -1) sets the offsets' expiry.
  The response comes only after the records are appended to `__consumer_offsets`.
- OffsetFetch: a null topic list (v2+) fetches every committed offset of the group; an
  unknown group or partition is offset -1 without error. v8+ fetch several groups; v10
  names topics by id. With `require_stable` (v7+), a partition with a transactional offset
  commit awaiting its transaction's marker answers UNSTABLE_OFFSET_COMMIT with offset -1
  (Kafka's `OffsetMetadataManager.fetchOffsets`); without it, the last committed offset.
- KIP-848 consumer groups (`broker.groups.consumer`): OffsetCommit carries the member epoch
  in the generation field; an unknown member is UNKNOWN_MEMBER_ID, another epoch
  STALE_MEMBER_EPOCH, a member committing below v9 UNSUPPORTED_VERSION; epoch -1 commits
  only while the group is empty. OffsetFetch v9+ with a member id validates it the same way
  (group-level error).
- OffsetDelete: GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP (a non-consumer group with members) and
  GROUP_SUBSCRIBED_TO_TOPIC (a topic the consumer group's members subscribe to).
"""

from __future__ import annotations

import uuid

from broker.context import RequestContext
from broker.groups.coordinator import OffsetAndMetadata
from broker.handlers import handles
from broker.handlers.groups import service
from protocol.errors import ErrorCode
from protocol.messages.offset_commit_request import OffsetCommitRequest
from protocol.messages.offset_commit_response import (
    OffsetCommitResponse,
    OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
)
from protocol.messages.offset_delete_request import OffsetDeleteRequest
from protocol.messages.offset_delete_response import (
    OffsetDeleteResponse,
    OffsetDeleteResponsePartition,
    OffsetDeleteResponseTopic,
)
from protocol.messages.offset_fetch_request import OffsetFetchRequest
from protocol.messages.offset_fetch_response import (
    OffsetFetchResponse,
    OffsetFetchResponseGroup,
    OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
)

OFFSET_COMMIT, OFFSET_FETCH, OFFSET_DELETE = 8, 9, 47
ZERO_UUID = uuid.UUID(int=0)


def _partition_exists(ctx: RequestContext, topic: str, partition: int) -> bool:
    found = ctx.broker.topics.get(topic)
    return found is not None and 0 <= partition < found.partitions


# -- OffsetCommit ----------------------------------------------------------------------------


@handles(OFFSET_COMMIT, 2, 10)
def handle_offset_commit(ctx: RequestContext, request: OffsetCommitRequest
                         ) -> OffsetCommitResponse:
    version = ctx.api_version
    now = ctx.broker.clock()
    expire = None
    if version <= 4 and request.retention_time_ms != -1:
        expire = now + request.retention_time_ms
    errors: dict[tuple[str, int], ErrorCode] = {}
    to_commit: dict[tuple[str, int], OffsetAndMetadata] = {}
    names: list[str | None] = []
    for topic in request.topics:
        if version >= 10:
            found = ctx.broker.topics.by_id(topic.topic_id)
            name = found.name if found is not None else None
        else:
            name = topic.name
        names.append(name)
        for p in topic.partitions:
            if name is None:
                continue
            tp = (name, p.partition_index)
            if not _partition_exists(ctx, name, p.partition_index):
                errors[tp] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            to_commit[tp] = OffsetAndMetadata(
                p.committed_offset, p.committed_leader_epoch if version >= 6 else -1,
                p.committed_metadata or "", now, expire)
    if to_commit:
        errors.update(service(ctx).coordinator.commit_offsets(
            group_id=request.group_id, generation_id=request.generation_id_or_member_epoch,
            member_id=request.member_id,
            group_instance_id=request.group_instance_id if version >= 7 else None,
            api_version=version, offsets=to_commit))
    topics = []
    for topic, name in zip(request.topics, names, strict=True):
        partitions = []
        for p in topic.partitions:
            if name is None:
                code = ErrorCode.UNKNOWN_TOPIC_ID
            else:
                code = errors.get((name, p.partition_index), ErrorCode.NONE)
            partitions.append(OffsetCommitResponsePartition(partition_index=p.partition_index,
                                                            error_code=code))
        topics.append(OffsetCommitResponseTopic(
            name=topic.name if version < 10 else "",
            topic_id=topic.topic_id if version >= 10 else ZERO_UUID, partitions=partitions))
    return OffsetCommitResponse(topics=topics)


# -- OffsetFetch -------------------------------------------------------------------------------


def _fetch_group(ctx: RequestContext, group_id: str,
                 topics: list[tuple[str | None, uuid.UUID, list[int]]] | None, by_id: bool,
                 require_stable: bool = False
                 ) -> list[tuple[str, uuid.UUID, list[tuple[int, int, int, str, ErrorCode]]]]:
    """[(name, topic_id, [(partition, offset, leader_epoch, metadata, error)])]."""
    coordinator = service(ctx).coordinator
    unstable = coordinator.pending_partitions(group_id) if require_stable else set()
    out: list[tuple[str, uuid.UUID, list[tuple[int, int, int, str, ErrorCode]]]] = []
    if topics is None:
        grouped: dict[str, list[tuple[int, int, int, str, ErrorCode]]] = {}
        for (name, partition), om in coordinator.fetch_offsets(group_id, None).items():
            assert om is not None
            if (name, partition) in unstable:
                grouped.setdefault(name, []).append(
                    (partition, -1, -1, "", ErrorCode.UNSTABLE_OFFSET_COMMIT))
                continue
            grouped.setdefault(name, []).append(
                (partition, om.offset, om.leader_epoch, om.metadata, ErrorCode.NONE))
        for name, rows in grouped.items():
            topic = ctx.broker.topics.get(name)
            if by_id and topic is None:
                continue
            out.append((name, topic.topic_id if topic is not None else ZERO_UUID, rows))
        return out
    for maybe_name, topic_id, partitions in topics:
        if maybe_name is None:
            out.append(("", topic_id, [(p, -1, -1, "", ErrorCode.UNKNOWN_TOPIC_ID)
                                       for p in partitions]))
            continue
        name = maybe_name
        fetched = coordinator.fetch_offsets(group_id, [(name, p) for p in partitions])
        rows = []
        for p in partitions:
            om = fetched[(name, p)]
            if (name, p) in unstable:
                rows.append((p, -1, -1, "", ErrorCode.UNSTABLE_OFFSET_COMMIT))
            elif om is None:
                rows.append((p, -1, -1, "", ErrorCode.NONE))
            else:
                rows.append((p, om.offset, om.leader_epoch, om.metadata, ErrorCode.NONE))
        out.append((name, topic_id, rows))
    return out


@handles(OFFSET_FETCH, 1, 10)
def handle_offset_fetch(ctx: RequestContext, request: OffsetFetchRequest) -> OffsetFetchResponse:
    version = ctx.api_version
    if version < 8:
        wanted = None if request.topics is None else [
            (t.name, ZERO_UUID, list(t.partition_indexes)) for t in request.topics]
        result = _fetch_group(ctx, request.group_id, wanted, False,  # type: ignore[arg-type]
                              version >= 7 and request.require_stable)
        return OffsetFetchResponse(topics=[
            OffsetFetchResponseTopic(name=name, partitions=[
                OffsetFetchResponsePartition(
                    partition_index=p, committed_offset=offset,
                    committed_leader_epoch=epoch if version >= 5 else -1,
                    metadata=metadata, error_code=error)
                for p, offset, epoch, metadata, error in rows])
            for name, _, rows in result])
    groups = []
    for group in request.groups:
        group_wanted: list[tuple[str | None, uuid.UUID, list[int]]] | None = None
        if group.topics is not None:
            group_wanted = []
            for t in group.topics:
                if version >= 10:
                    found = ctx.broker.topics.by_id(t.topic_id)
                    group_wanted.append((found.name if found is not None else None,
                                         t.topic_id, list(t.partition_indexes)))
                else:
                    group_wanted.append((t.name, ZERO_UUID, list(t.partition_indexes)))
        if version >= 9:
            # A member of a KIP-848 group names itself and its epoch (Kafka's
            # `ConsumerGroup.validateOffsetFetch`); admin clients send null / -1.
            error = service(ctx).consumer.validate_fetch(group.group_id, group.member_id,
                                                         group.member_epoch)
            if error is not ErrorCode.NONE:
                groups.append(OffsetFetchResponseGroup(group_id=group.group_id,
                                                       error_code=error))
                continue
        result = _fetch_group(ctx, group.group_id, group_wanted, version >= 10,
                              request.require_stable)
        groups.append(OffsetFetchResponseGroup(group_id=group.group_id, topics=[
            OffsetFetchResponseTopics(
                name=name if version < 10 else "",
                topic_id=topic_id if version >= 10 else ZERO_UUID,
                partitions=[OffsetFetchResponsePartitions(
                    partition_index=p, committed_offset=offset, committed_leader_epoch=epoch,
                    metadata=metadata, error_code=error)
                    for p, offset, epoch, metadata, error in rows])
            for name, topic_id, rows in result]))
    return OffsetFetchResponse(groups=groups)


# -- OffsetDelete ------------------------------------------------------------------------------


@handles(OFFSET_DELETE, 0, 0)
def handle_offset_delete(ctx: RequestContext, request: OffsetDeleteRequest
                         ) -> OffsetDeleteResponse:
    known = []
    for topic in request.topics:
        for p in topic.partitions:
            if _partition_exists(ctx, topic.name, p.partition_index):
                known.append((topic.name, p.partition_index))
    error, results = service(ctx).coordinator.delete_offsets(request.group_id, known)
    if error is not ErrorCode.NONE:
        return OffsetDeleteResponse(error_code=error)
    return OffsetDeleteResponse(topics=[
        OffsetDeleteResponseTopic(name=topic.name, partitions=[
            OffsetDeleteResponsePartition(
                partition_index=p.partition_index,
                error_code=results.get((topic.name, p.partition_index),
                                       ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
            for p in topic.partitions])
        for topic in request.topics])
